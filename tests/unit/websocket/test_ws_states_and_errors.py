"""The connection's one state (CONNECTING → OPEN → LOCAL_CLOSING → CLOSED), what misuse raises (InvalidState) as
against a close (ConnectionClosed), the figures the limit errors carry, and how the wire numbers print."""

import pytest

from websocket_helpers import client_frame, feed
from madace_status.websocket import frames
from madace_status.websocket.codes import CloseCode, Opcode
from madace_status.websocket.connection import CLOSED, CONNECTING, OPEN, SERVER, Connection
from madace_status.websocket.deflate import DeflateParams
from madace_status.websocket.errors import ConnectionClosed, InvalidState, MessageTooBig, PolicyViolation


def test_a_connection_made_before_the_handshake_is_connecting_until_opened():
    conn = Connection(SERVER, connecting=True)
    assert conn.state is CONNECTING and not conn.is_open
    with pytest.raises(InvalidState):
        conn.send_text("too early")
    with pytest.raises(InvalidState):
        conn.receive_data(client_frame(frames.OP_TEXT, b"too early"))
    conn.open(DeflateParams())
    assert conn.state is OPEN and conn.deflate is not None
    assert [event.data for event in feed(conn, client_frame(frames.OP_TEXT, b"hi"))] == ["hi"]
    with pytest.raises(InvalidState):  # no transition from OPEN on a second handshake
        conn.open()


def test_the_tcp_connection_ending_before_the_handshake_closes_it_with_1006():
    conn = Connection(SERVER, connecting=True)
    conn.receive_data(b"")
    assert conn.state is CLOSED and conn.close_code == 1006


def test_sending_on_a_closing_connection_is_connection_closed_not_a_misuse():
    conn = Connection(SERVER)
    conn.send_close(4000, "bye")
    with pytest.raises(ConnectionClosed) as closed:
        conn.send_text("late")
    assert not isinstance(closed.value, InvalidState) and closed.value.code == 4000


def test_limit_errors_carry_their_figures_and_keep_their_text():
    conn = Connection(SERVER, max_message_bytes=10)
    feed(conn, client_frame(frames.OP_TEXT, b"x" * 11))
    assert isinstance(conn.failure, MessageTooBig)
    assert (conn.failure.size, conn.failure.limit, conn.failure.reason) == (11, 10, "message is larger than 10 bytes")
    assert MessageTooBig(11, 10, inflated=True).reason == "message inflates to more than 10 bytes"

    conn = Connection(SERVER, max_frames_per_message=2)
    feed(conn, *[client_frame(opcode, b"a", fin=False) for opcode in (frames.OP_TEXT, frames.OP_CONTINUATION,
                                                                       frames.OP_CONTINUATION)])
    failure = conn.failure
    assert isinstance(failure, PolicyViolation) and failure.close_code == 1008
    assert (failure.what, failure.value, failure.limit) == ("frames per message", 3, 2)


def test_wire_numbers_equal_their_values_and_print_as_numbers():
    assert frames.OP_TEXT == Opcode.TEXT == 1 and type(frames.OP_TEXT) is int  # the parser's fast int compare
    assert frames.CLOSE_ABNORMAL is CloseCode.ABNORMAL == 1006
    assert "%s %d {:d} {}".format(CloseCode.NORMAL, CloseCode.NORMAL) % (CloseCode.ABNORMAL, CloseCode.ABNORMAL) \
        == "1006 1006 1000 1000"
    assert str(Opcode.PONG) == "10"
