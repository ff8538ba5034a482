"""Connection: the message size limit (close 1009), decided at the frame header and counted in bytes."""

from websocket_helpers import client_frame, close_body, close_code_and_reason, feed, sent_frames, summary
from madace_status.websocket import frames
from madace_status.websocket.connection import CLOSED, DEFAULT_MAX_MESSAGE_BYTES, LOCAL_CLOSING, Connection, SERVER
from madace_status.websocket.errors import MessageTooBig

TEXT, BINARY, CONT = frames.OP_TEXT, frames.OP_BINARY, frames.OP_CONTINUATION
PING, CLOSE = frames.OP_PING, frames.OP_CLOSE
LIMIT = 64 * 1024


def limited(limit=LIMIT):
    return Connection(SERVER, max_message_bytes=limit)


def failed_with_1009(conn):
    assert isinstance(conn.failure, MessageTooBig) and conn.failure.close_code == 1009
    sent = sent_frames(conn)
    assert [opcode for opcode, _, _ in sent] == [CLOSE]
    assert close_code_and_reason(sent[0][2])[0] == 1009


def one_byte_fragments(count, opcode=BINARY):
    """A message of `count` one-byte fragments."""
    if count == 1:
        return client_frame(opcode, b"a")
    return (client_frame(opcode, b"a", fin=False) + client_frame(CONT, b"b", fin=False) * (count - 2)
            + client_frame(CONT, b"c"))


def test_single_frame_of_exactly_the_limit_is_accepted():
    events = feed(limited(), client_frame(BINARY, b"x" * LIMIT))
    assert [summary(e) for e in events] == [("binary", b"x" * LIMIT)]


def test_message_over_the_limit_fails_with_1009_at_the_frame_header_before_the_payload_arrives():
    conn = limited()
    header = client_frame(BINARY, b"x" * (LIMIT + 1))[:2 + 8 + 4]
    assert feed(conn, header) == []
    failed_with_1009(conn)
    assert conn.state == LOCAL_CLOSING


def test_huge_announced_length_fails_with_1009_without_waiting_for_the_payload():
    conn = limited()
    assert feed(conn, b"\x82\xff" + (2 ** 40).to_bytes(8, "big") + b"\x00\x00\x00\x00") == []
    failed_with_1009(conn)


def test_default_limit_refuses_a_frame_over_64_mib_at_its_header():
    assert DEFAULT_MAX_MESSAGE_BYTES == 64 * 1024 * 1024
    conn = Connection(SERVER)
    feed(conn, b"\x82\xff" + (DEFAULT_MAX_MESSAGE_BYTES + 1).to_bytes(8, "big") + b"\x01\x02\x03\x04")
    failed_with_1009(conn)


def test_default_limit_accepts_the_header_of_a_64_mib_frame():
    conn = Connection(SERVER)
    feed(conn, b"\x82\xff" + DEFAULT_MAX_MESSAGE_BYTES.to_bytes(8, "big") + b"\x01\x02\x03\x04" + b"\x00" * 100)
    assert conn.failure is None


def test_text_message_over_the_limit_fails_with_1009():
    conn = limited(10)
    feed(conn, client_frame(TEXT, b"x" * 11))
    failed_with_1009(conn)


def test_fragment_that_pushes_a_message_over_the_limit_fails_with_1009_at_its_header():
    conn = limited(100)
    assert feed(conn, client_frame(BINARY, b"x" * 60, fin=False)) == []
    assert conn.failure is None
    second = client_frame(CONT, b"y" * 41)
    assert feed(conn, second[:6]) == []  # header and mask only
    failed_with_1009(conn)


def test_65536_one_byte_fragments_of_a_64_kib_message_under_a_64_kib_limit_are_accepted():
    conn = limited(LIMIT)
    events = feed(conn, one_byte_fragments(LIMIT))
    assert len(events) == 1
    assert events[0].data == b"a" + b"b" * (LIMIT - 2) + b"c"
    assert conn.failure is None


def test_one_byte_fragment_more_than_the_limit_fails_with_1009():
    conn = limited(LIMIT)
    assert feed(conn, one_byte_fragments(LIMIT + 1)) == []
    failed_with_1009(conn)


def test_65536_one_byte_text_fragments_under_a_64_kib_limit_are_accepted():
    conn = limited(LIMIT)
    events = feed(conn, one_byte_fragments(LIMIT, TEXT))
    assert [type(e).__name__ for e in events] == ["TextMessage"] and len(events[0].data) == LIMIT


def test_limit_applies_to_each_message_separately():
    conn = limited(100)
    data = (client_frame(BINARY, b"a" * 50, fin=False) + client_frame(CONT, b"b" * 50)
            + client_frame(BINARY, b"c" * 100))
    events = feed(conn, data)
    assert [summary(e) for e in events] == [("binary", b"a" * 50 + b"b" * 50), ("binary", b"c" * 100)]
    assert conn.failure is None


def test_control_frames_inside_a_message_do_not_count_toward_the_limit():
    conn = limited(100)
    data = (client_frame(TEXT, b"a" * 60, fin=False) + client_frame(PING, b"p" * 125)
            + client_frame(CONT, b"b" * 40))
    events = feed(conn, data)
    assert [summary(e) for e in events] == [("ping", b"p" * 125), ("text", "a" * 60 + "b" * 40)]
    assert conn.failure is None


def test_rest_of_an_oversized_frame_is_skipped_and_the_peers_close_read():
    conn = limited(100)
    data = client_frame(BINARY, b"z" * 1000)
    feed(conn, data[:50])
    failed_with_1009(conn)
    events = feed(conn, data[50:] + client_frame(CLOSE, close_body(1009)))
    assert [summary(e) for e in events] == [("close", 1009, "")]
    assert conn.state == CLOSED
