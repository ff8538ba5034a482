"""Connection: the close frame rules, the state machine (OPEN → LOCAL_CLOSING → CLOSED, OPEN → CLOSED),
EOF, and what happens after the connection has failed."""

import pytest

from websocket_helpers import (
    client, client_frame, close_body, close_code_and_reason, decode_frames, feed, sent_frames, server,
    server_frame, summary)
from madace_status.websocket import frames
from madace_status.websocket.connection import CLOSED, LOCAL_CLOSING, OPEN, Connection
from madace_status.websocket.errors import ConnectionClosed

TEXT, BINARY, CONT = frames.OP_TEXT, frames.OP_BINARY, frames.OP_CONTINUATION
PING, PONG, CLOSE = frames.OP_PING, frames.OP_PONG, frames.OP_CLOSE

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3500, 3999, 4000,
               4999]
INVALID_CODES = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def only_close_sent(conn):
    """(code, reason) of the single close frame `conn` has queued."""
    sent = sent_frames(conn)
    assert [opcode for opcode, _, _ in sent] == [CLOSE]
    return close_code_and_reason(sent[0][2])


def fail_with_intact_framing(conn):
    """Fail a server connection with an error that leaves the frame boundaries known."""
    feed(conn, client_frame(CONT, b"orphan"))
    assert conn.failure is not None and conn.failure.close_code == 1002
    assert only_close_sent(conn)[0] == 1002


# -- close frame payload -------------------------------------------------------------------------------------

def test_close_frame_with_one_byte_payload_fails_with_1002():
    conn = server()
    assert feed(conn, client_frame(CLOSE, b"\x03")) == []
    assert conn.failure.close_code == 1002
    assert only_close_sent(conn)[0] == 1002


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_close_code_is_accepted_and_echoed(code):
    conn = server()
    events = feed(conn, client_frame(CLOSE, close_body(code, b"bye")))
    assert [summary(e) for e in events] == [("close", code, "bye")]
    assert conn.failure is None
    assert only_close_sent(conn)[0] == code
    assert conn.close_code == code and conn.sent_close_code == code


@pytest.mark.parametrize("code", INVALID_CODES)
def test_invalid_close_code_fails_with_1002(code):
    conn = server()
    assert feed(conn, client_frame(CLOSE, close_body(code))) == []
    assert conn.failure.close_code == 1002
    assert only_close_sent(conn)[0] == 1002


def test_close_reason_that_is_not_utf8_fails_with_1007():
    conn = server()
    assert feed(conn, client_frame(CLOSE, close_body(1000, b"bad \xff reason"))) == []
    assert conn.failure.close_code == 1007
    assert only_close_sent(conn)[0] == 1007


def test_close_reason_with_an_encoded_surrogate_fails_with_1007():
    conn = server()
    feed(conn, client_frame(CLOSE, close_body(1000, b"\xed\xa0\x80")))
    assert only_close_sent(conn)[0] == 1007


def test_close_code_and_reason_are_reported():
    conn = server()
    events = feed(conn, client_frame(CLOSE, close_body(4001, "going ✓".encode("utf-8"))))
    assert [summary(e) for e in events] == [("close", 4001, "going ✓")]
    assert (conn.close_code, conn.close_reason) == (4001, "going ✓")


def test_empty_close_is_answered_with_an_empty_close():
    conn = server()
    events = feed(conn, client_frame(CLOSE, b""))
    assert [summary(e) for e in events] == [("close", 1005, "")]
    assert sent_frames(conn) == [(CLOSE, True, b"")]
    assert conn.close_code == 1005


def test_close_in_the_middle_of_a_fragmented_message_echoes_its_code():
    conn = server()
    events = feed(conn, client_frame(TEXT, b"never ", fin=False) + client_frame(CLOSE, close_body(1001)))
    assert [summary(e) for e in events] == [("close", 1001, "")]
    assert conn.failure is None
    assert only_close_sent(conn) == (1001, "")


def test_client_echo_of_a_close_is_masked():
    conn = client()
    feed(conn, server_frame(CLOSE, close_body(1000)))
    data = conn.data_to_send()
    assert data[1] & 0x80
    assert decode_frames(data, masked=True) == [(CLOSE, True, close_body(1000))]


def test_bytes_after_the_close_in_the_same_buffer_produce_no_events():
    conn = server()
    events = feed(conn, client_frame(CLOSE, close_body(1000)) + client_frame(PING, b"late")
                  + client_frame(TEXT, b"late") + b"\xff\xff garbage")
    assert [summary(e) for e in events] == [("close", 1000, "")]
    assert only_close_sent(conn)[0] == 1000  # no pong for the late ping
    assert conn.failure is None


def test_bytes_fed_after_the_close_produce_no_events():
    conn = server()
    feed(conn, client_frame(CLOSE, close_body(1000)))
    conn.data_to_send()
    assert feed(conn, client_frame(TEXT, b"late"), client_frame(PING, b"late"), b"\x00garbage") == []
    assert conn.data_to_send() == b""
    assert conn.failure is None and conn.state == CLOSED


# -- state machine -------------------------------------------------------------------------------------------

def test_new_connection_is_open_with_no_close_yet():
    conn = server()
    assert conn.state == OPEN and conn.is_open
    assert conn.close_initiator is None and conn.close_code is None and conn.failure is None


def test_role_must_be_server_or_client():
    with pytest.raises(ValueError):
        Connection("peer")


def test_sending_close_moves_open_to_local_closing_with_local_initiator():
    conn = client()
    data = conn.send_close(1000, "done")
    assert conn.state == LOCAL_CLOSING and not conn.is_open
    assert conn.close_initiator == "local"
    assert decode_frames(data, masked=True) == [(CLOSE, True, close_body(1000, b"done"))]
    assert (conn.sent_close_code, conn.sent_close_reason) == (1000, "done")


def test_peer_close_after_a_local_close_moves_to_closed_without_a_second_close():
    conn = server()
    conn.send_close(1001)
    events = feed(conn, client_frame(CLOSE, close_body(1001)))
    assert [summary(e) for e in events] == [("close", 1001, "")]
    assert conn.state == CLOSED and conn.close_initiator == "local"
    assert conn.data_to_send() == b""


def test_received_close_moves_open_to_closed_with_remote_initiator():
    conn = server()
    feed(conn, client_frame(CLOSE, close_body(1000)))
    assert conn.state == CLOSED
    assert conn.close_initiator == "remote"


def test_closing_handshake_started_by_the_client_closes_both_ends():
    a_client, a_server = client(), server()
    feed(a_server, a_client.send_close(1000, "bye"))
    assert a_server.state == CLOSED and a_server.close_initiator == "remote"
    events = feed(a_client, a_server.data_to_send())
    assert [summary(e) for e in events] == [("close", 1000, "")]
    assert a_client.state == CLOSED and a_client.close_initiator == "local"
    assert a_client.data_to_send() == b""


def test_closing_handshake_started_by_the_server_closes_both_ends():
    a_client, a_server = client(), server()
    feed(a_client, a_server.send_close(4000, "maintenance"))
    assert a_client.state == CLOSED and (a_client.close_code, a_client.close_reason) == (4000, "maintenance")
    feed(a_server, a_client.data_to_send())
    assert a_server.state == CLOSED and a_server.close_code == 4000


def test_messages_arriving_while_local_closing_are_still_delivered():
    conn = server()
    conn.send_close(1000)
    events = feed(conn, client_frame(TEXT, b"in flight") + client_frame(CLOSE, close_body(1000)))
    assert [summary(e) for e in events] == [("text", "in flight"), ("close", 1000, "")]
    assert conn.state == CLOSED


def test_send_close_without_a_code_sends_an_empty_close():
    conn = server()
    assert decode_frames(conn.send_close(None), masked=False) == [(CLOSE, True, b"")]
    assert conn.sent_close_code == 1005


@pytest.mark.parametrize("code", [999, 1004, 1006, 1015, 2000, 5000])
def test_send_close_with_a_code_that_may_not_be_sent_raises_value_error(code):
    conn = server()
    with pytest.raises(ValueError):
        conn.send_close(code)
    assert conn.state == OPEN


SENDS = {
    "send_text": lambda conn: conn.send_text("x"),
    "send_binary": lambda conn: conn.send_binary(b"x"),
    "send_ping": lambda conn: conn.send_ping(b"x"),
    "send_pong": lambda conn: conn.send_pong(b"x"),
    "send_fragment": lambda conn: conn.send_fragment(TEXT, b"x", False),
    "send_close": lambda conn: conn.send_close(1000),
}


@pytest.mark.parametrize("send", sorted(SENDS))
def test_sending_after_a_local_close_raises_connection_closed(send):
    conn = client()
    conn.send_close(1000)
    with pytest.raises(ConnectionClosed):
        SENDS[send](conn)


@pytest.mark.parametrize("send", sorted(SENDS))
def test_sending_after_a_received_close_raises_connection_closed_with_its_code(send):
    conn = server()
    feed(conn, client_frame(CLOSE, close_body(4002, b"later")))
    with pytest.raises(ConnectionClosed) as info:
        SENDS[send](conn)
    assert info.value.code == 4002


@pytest.mark.parametrize("send", sorted(SENDS))
def test_sending_after_a_failure_raises_connection_closed(send):
    conn = server()
    fail_with_intact_framing(conn)
    with pytest.raises(ConnectionClosed):
        SENDS[send](conn)


def test_eof_without_a_close_frame_gives_close_code_1006():
    conn = server()
    conn.receive_data(b"")
    assert conn.state == CLOSED
    assert conn.close_code == 1006
    assert list(conn.events()) == []


def test_sending_after_eof_raises_connection_closed_with_1006():
    conn = server()
    conn.receive_data(b"")
    with pytest.raises(ConnectionClosed) as info:
        conn.send_text("x")
    assert info.value.code == 1006


def test_eof_while_local_closing_closes_with_1006():
    conn = server()
    conn.send_close(1000)
    conn.receive_data(b"")
    assert conn.state == CLOSED and conn.close_code == 1006


def test_eof_after_the_closing_handshake_keeps_the_peers_code():
    conn = server()
    feed(conn, client_frame(CLOSE, close_body(1000)))
    conn.receive_data(b"")
    assert conn.state == CLOSED and conn.close_code == 1000


def test_eof_in_the_middle_of_a_frame_gives_1006():
    conn = server()
    data = client_frame(TEXT, b"truncated message")
    feed(conn, data[:8])
    conn.receive_data(b"")
    assert conn.state == CLOSED and conn.close_code == 1006


# -- after a failure -----------------------------------------------------------------------------------------

def test_failure_moves_open_to_local_closing_with_local_initiator():
    conn = server()
    fail_with_intact_framing(conn)
    assert conn.state == LOCAL_CLOSING
    assert conn.close_initiator == "local"
    assert conn.sent_close_code == 1002


def test_peer_close_after_a_failure_is_read_and_completes_the_closing_handshake():
    conn = server()
    fail_with_intact_framing(conn)
    events = feed(conn, client_frame(CLOSE, close_body(1002)))
    assert [summary(e) for e in events] == [("close", 1002, "")]
    assert conn.state == CLOSED
    assert conn.close_code == 1002 and conn.close_initiator == "local"
    assert conn.data_to_send() == b""  # our close already went out: no second one


def test_frames_after_a_failure_are_ignored_until_the_peers_close():
    conn = server()
    fail_with_intact_framing(conn)
    events = feed(conn, client_frame(TEXT, b"ignored") + client_frame(PING, b"ignored")
                  + client_frame(BINARY, b"x", fin=False) + client_frame(CLOSE, close_body(1000)))
    assert [summary(e) for e in events] == [("close", 1000, "")]
    assert conn.data_to_send() == b""  # no pong either
    assert conn.state == CLOSED


def test_rest_of_a_frame_after_a_utf8_failure_is_skipped_and_the_peers_close_read():
    conn = server()
    data = client_frame(TEXT, b"\xff" + b"x" * 300)
    assert feed(conn, data[:10]) == []
    assert conn.failure.close_code == 1007 and conn.state == LOCAL_CLOSING
    assert only_close_sent(conn)[0] == 1007
    events = feed(conn, data[10:], client_frame(CLOSE, close_body(1007)))
    assert [summary(e) for e in events] == [("close", 1007, "")]
    assert conn.state == CLOSED


def test_frame_header_error_after_a_failure_ends_the_connection():
    conn = server()
    fail_with_intact_framing(conn)
    feed(conn, server_frame(TEXT, b"unmasked"))
    assert conn.state == CLOSED
    assert conn.data_to_send() == b""


def test_invalid_peer_close_after_a_failure_ends_the_connection_without_a_second_close():
    conn = server()
    fail_with_intact_framing(conn)
    feed(conn, client_frame(CLOSE, b"\x03"))
    assert conn.state == CLOSED
    assert conn.data_to_send() == b""
    assert conn.failure.close_code == 1002


def test_garbage_after_a_local_close_ends_the_connection():
    conn = server()
    conn.send_close(1000)
    feed(conn, client_frame(CONT, b"orphan"))
    assert conn.state == CLOSED
    assert conn.data_to_send() == b""  # our close was already sent by send_close


def test_states_roles_and_triggers_are_enums_so_a_misspelt_one_fails_where_it_is_written():
    from madace_status.websocket.connection import Role, State, Trigger
    assert server().state is State.OPEN and server().role is Role.SERVER
    with pytest.raises(AttributeError):
        Trigger.SEND_CLOSED  # noqa: B018 (the misspelling is the point)
    with pytest.raises(ValueError):
        Connection("server")  # a string is not a role
