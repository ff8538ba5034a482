"""Connection: messages, ping/pong, fragmentation, incremental UTF-8 validation, and the lazy event order
that delivers messages received before a protocol error."""

import pytest

from websocket_helpers import (
    client, client_frame, close_code_and_reason, decode_frames, feed, sent_frames, server, server_frame, summary)
from madace_status.websocket import frames
from madace_status.websocket.connection import OPEN, BinaryMessage, Ping, Pong, TextMessage
from madace_status.websocket.errors import InvalidPayload, ProtocolError

TEXT, BINARY, CONT = frames.OP_TEXT, frames.OP_BINARY, frames.OP_CONTINUATION
PING, PONG, CLOSE = frames.OP_PING, frames.OP_PONG, frames.OP_CLOSE


def failed_with(conn, code):
    """Assert the connection failed with `code` and sent exactly one close frame carrying it."""
    assert conn.failure is not None and conn.failure.close_code == code
    sent = sent_frames(conn)
    assert [opcode for opcode, _, _ in sent] == [CLOSE]
    assert close_code_and_reason(sent[0][2])[0] == code
    return close_code_and_reason(sent[0][2])[1]


# -- messages ------------------------------------------------------------------------------------------------

def test_text_frame_is_delivered_as_a_text_message():
    events = feed(server(), client_frame(TEXT, "héllo ✓".encode("utf-8")))
    assert [summary(e) for e in events] == [("text", "héllo ✓")]


def test_binary_frame_is_delivered_as_a_binary_message():
    events = feed(server(), client_frame(BINARY, b"\x00\xff\xfe"))
    assert [summary(e) for e in events] == [("binary", b"\x00\xff\xfe")]


def test_empty_text_and_binary_messages_are_delivered():
    events = feed(server(), client_frame(TEXT, b"") + client_frame(BINARY, b""))
    assert [summary(e) for e in events] == [("text", ""), ("binary", b"")]


def test_client_role_reads_unmasked_server_frames():
    events = feed(client(), server_frame(TEXT, b"from server"))
    assert [summary(e) for e in events] == [("text", "from server")]


def test_server_role_fails_on_an_unmasked_client_frame_with_1002():
    conn = server()
    assert feed(conn, server_frame(TEXT, b"hi")) == []
    failed_with(conn, 1002)


def test_client_role_fails_on_a_masked_server_frame_with_1002():
    conn = client()
    assert feed(conn, client_frame(TEXT, b"hi")) == []
    failed_with(conn, 1002)


def test_frame_split_into_one_byte_feeds_gives_one_message():
    data = client_frame(TEXT, "κόσμε, world".encode("utf-8") * 20)
    events = feed(server(), *[data[i:i + 1] for i in range(len(data))])
    assert [summary(e) for e in events] == [("text", "κόσμε, world" * 20)]


def test_send_methods_of_a_client_make_masked_frames_a_server_reads():
    sender, receiver = client(), server()
    data = sender.send_text("t") + sender.send_binary(b"b") + sender.send_ping(b"p") + sender.send_pong(b"q")
    assert [summary(e) for e in feed(receiver, data)] == [("text", "t"), ("binary", b"b"), ("ping", b"p"),
                                                          ("pong", b"q")]


def test_send_methods_of_a_server_make_unmasked_frames_a_client_reads():
    sender, receiver = server(), client()
    data = sender.send_text("t") + sender.send_binary(b"b") + sender.send_ping(b"p") + sender.send_pong(b"q")
    assert data[1] & 0x80 == 0
    assert [summary(e) for e in feed(receiver, data)] == [("text", "t"), ("binary", b"b"), ("ping", b"p"),
                                                          ("pong", b"q")]


def test_control_payload_over_125_bytes_cannot_be_sent():
    with pytest.raises(ValueError):
        client().send_ping(b"x" * 126)
    with pytest.raises(ValueError):
        client().send_pong(b"x" * 126)


# -- ping / pong ---------------------------------------------------------------------------------------------

def test_ping_is_answered_by_a_pong_with_the_same_payload():
    conn = server()
    events = feed(conn, client_frame(PING, b"are you there?"))
    assert [summary(e) for e in events] == [("ping", b"are you there?")]
    assert sent_frames(conn) == [(PONG, True, b"are you there?")]


def test_client_answers_a_ping_with_a_masked_pong_with_the_same_payload():
    conn = client()
    feed(conn, server_frame(PING, b"\x00\x01binary"))
    data = conn.data_to_send()
    assert data[1] & 0x80  # masked
    assert decode_frames(data, masked=True) == [(PONG, True, b"\x00\x01binary")]


def test_empty_ping_is_answered_by_an_empty_pong():
    conn = server()
    feed(conn, client_frame(PING, b""))
    assert sent_frames(conn) == [(PONG, True, b"")]


def test_ping_of_125_bytes_is_answered_with_all_125_bytes():
    conn = server()
    feed(conn, client_frame(PING, bytes(range(125))))
    assert sent_frames(conn) == [(PONG, True, bytes(range(125)))]


def test_each_ping_gets_its_own_pong_in_order():
    conn = server()
    feed(conn, client_frame(PING, b"1") + client_frame(PING, b"2"))
    assert sent_frames(conn) == [(PONG, True, b"1"), (PONG, True, b"2")]


def test_pong_is_delivered_and_not_answered():
    conn = server()
    events = feed(conn, client_frame(PONG, b"unsolicited"))
    assert [summary(e) for e in events] == [("pong", b"unsolicited")]
    assert conn.data_to_send() == b""


def test_data_to_send_is_empty_once_drained():
    conn = server()
    feed(conn, client_frame(PING, b"x"))
    assert conn.data_to_send() != b""
    assert conn.data_to_send() == b""


# -- fragmentation -------------------------------------------------------------------------------------------

def test_fragmented_text_message_is_reassembled():
    data = client_frame(TEXT, b"Hel", fin=False) + client_frame(CONT, b"lo, ", fin=False) + client_frame(CONT, b"you")
    assert [summary(e) for e in feed(server(), data)] == [("text", "Hello, you")]


def test_fragmented_binary_message_is_reassembled():
    data = client_frame(BINARY, b"\x00", fin=False) + client_frame(CONT, b"\x01")
    assert [summary(e) for e in feed(server(), data)] == [("binary", b"\x00\x01")]


def test_fragmented_message_with_empty_fragments_is_reassembled():
    data = (client_frame(TEXT, b"", fin=False) + client_frame(CONT, b"", fin=False)
            + client_frame(CONT, b"x", fin=False) + client_frame(CONT, b""))
    assert [summary(e) for e in feed(server(), data)] == [("text", "x")]


def test_fragmented_message_is_delivered_only_when_its_last_fragment_arrives():
    conn = server()
    assert feed(conn, client_frame(TEXT, b"part", fin=False)) == []
    assert [summary(e) for e in feed(conn, client_frame(CONT, b"s"))] == [("text", "parts")]


def test_continuation_without_a_started_message_fails_with_1002():
    conn = server()
    assert feed(conn, client_frame(CONT, b"orphan")) == []
    reason = failed_with(conn, 1002)
    assert "continuation" in reason


def test_continuation_after_a_finished_message_fails_with_1002():
    conn = server()
    events = feed(conn, client_frame(TEXT, b"done") + client_frame(CONT, b"late"))
    assert [summary(e) for e in events] == [("text", "done")]
    failed_with(conn, 1002)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_new_data_frame_inside_a_fragmented_message_fails_with_1002(opcode):
    conn = server()
    assert feed(conn, client_frame(TEXT, b"start", fin=False) + client_frame(opcode, b"intruder")) == []
    failed_with(conn, 1002)


def test_ping_interleaved_inside_a_fragmented_message_is_answered_and_the_message_completes():
    conn = server()
    data = (client_frame(TEXT, b"one ", fin=False) + client_frame(PING, b"ping!")
            + client_frame(CONT, b"two ", fin=False) + client_frame(PONG, b"pong!") + client_frame(CONT, b"three"))
    events = feed(conn, data)
    assert [summary(e) for e in events] == [("ping", b"ping!"), ("pong", b"pong!"), ("text", "one two three")]
    assert sent_frames(conn) == [(PONG, True, b"ping!")]
    assert conn.failure is None and conn.state == OPEN


def test_messages_after_a_fragmented_message_are_independent():
    data = (client_frame(BINARY, b"a", fin=False) + client_frame(CONT, b"b")
            + client_frame(TEXT, b"c") + client_frame(TEXT, b"d", fin=False) + client_frame(CONT, b"e"))
    assert [summary(e) for e in feed(server(), data)] == [("binary", b"ab"), ("text", "c"), ("text", "de")]


# -- UTF-8 ---------------------------------------------------------------------------------------------------

KOSME = "κόσμε".encode("utf-8")


@pytest.mark.parametrize("payload", [b"\xff", b"\xc0\xaf", b"abc\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ab\xe2\x82"])
def test_text_message_that_is_not_utf8_fails_with_1007(payload):
    conn = server()
    assert feed(conn, client_frame(TEXT, payload)) == []
    assert isinstance(conn.failure, InvalidPayload)
    failed_with(conn, 1007)


def test_binary_message_is_not_checked_for_utf8():
    assert [summary(e) for e in feed(server(), client_frame(BINARY, b"\xff\xed\xa0\x80"))] == [
        ("binary", b"\xff\xed\xa0\x80")]


def test_largest_code_point_and_multibyte_characters_are_accepted():
    text = "\U0010ffff \u20ac \u00e9 \U0001f600"
    assert [summary(e) for e in feed(server(), client_frame(TEXT, text.encode("utf-8")))] == [("text", text)]


def test_invalid_utf8_fails_with_1007_before_the_rest_of_the_frame_arrives():
    # Autobahn 6.4.3: the frame is announced whole but sent in chunks; the bad byte is in the first chunk.
    payload = KOSME + b"\xf4\x90\x80\x80" + b"edited" * 100
    data = client_frame(TEXT, payload)
    conn = server()
    head = 4 + 4 + len(KOSME) + 2  # 16-bit length header, mask, then up to the invalid F4 90
    assert feed(conn, data[:head]) == []
    assert conn.failure is not None and conn.failure.close_code == 1007
    failed_with(conn, 1007)


def test_encoded_surrogate_split_as_ed_then_a0_fails_with_1007_before_the_rest_of_the_frame_arrives():
    payload = b"abc\xed\xa0\x80" + b"x" * 200
    data = client_frame(TEXT, payload)
    conn = server()
    header = 4 + 4
    assert feed(conn, data[:header + 4]) == []  # ...abc ED: still a possible valid character
    assert conn.failure is None
    assert feed(conn, data[header + 4:header + 5]) == []  # A0: ED A0 can only be a surrogate
    failed_with(conn, 1007)


def test_invalid_utf8_in_the_first_fragment_fails_with_1007_before_the_next_fragment_arrives():
    # Autobahn 6.4.1: the invalid sequence ends the first fragment; the rest of the message never comes.
    conn = server()
    assert feed(conn, client_frame(TEXT, KOSME + b"\xf4\x90\x80\x80", fin=False)) == []
    failed_with(conn, 1007)


def test_invalid_byte_at_the_end_of_a_fragment_fails_with_1007_before_the_next_fragment_arrives():
    # Autobahn 6.4.2: the first fragment ends in F4, the second is the single byte 90.
    conn = server()
    assert feed(conn, client_frame(TEXT, KOSME + b"\xf4", fin=False)) == []
    assert conn.failure is None
    assert feed(conn, client_frame(CONT, b"\x90", fin=False)) == []
    failed_with(conn, 1007)


def test_encoded_surrogate_split_across_fragments_fails_with_1007():
    conn = server()
    assert feed(conn, client_frame(TEXT, b"abc\xed", fin=False)) == []
    assert feed(conn, client_frame(CONT, b"\xa0", fin=False)) == []
    failed_with(conn, 1007)


def test_character_split_across_fragments_is_accepted():
    encoded = "a€b".encode("utf-8")  # € is E2 82 AC
    data = (client_frame(TEXT, encoded[:2], fin=False) + client_frame(CONT, encoded[2:3], fin=False)
            + client_frame(CONT, encoded[3:]))
    assert [summary(e) for e in feed(server(), data)] == [("text", "a€b")]


def test_character_split_across_feeds_of_one_frame_is_accepted():
    data = client_frame(TEXT, "\U0001f600".encode("utf-8"))
    assert [summary(e) for e in feed(server(), *[data[i:i + 1] for i in range(len(data))])] == [
        ("text", "\U0001f600")]


def test_message_ending_in_the_middle_of_a_character_fails_with_1007():
    conn = server()
    assert feed(conn, client_frame(TEXT, b"ab\xe2", fin=False) + client_frame(CONT, b"\x82")) == []
    failed_with(conn, 1007)


# -- messages before a protocol error ------------------------------------------------------------------------

def bad_rsv_frame():
    data = bytearray(client_frame(TEXT, b"x"))
    data[0] |= 0x40
    return bytes(data)


def test_message_before_a_protocol_error_is_yielded_before_the_failure():
    conn = server()
    conn.receive_data(client_frame(TEXT, b"first") + bad_rsv_frame())
    events = conn.events()
    first = next(events)
    assert isinstance(first, TextMessage) and first.data == "first"
    assert conn.failure is None and conn.state == OPEN
    assert conn.data_to_send() == b""  # the close is not queued yet
    assert list(events) == []
    failed_with(conn, 1002)


def test_reply_to_a_message_before_a_protocol_error_is_sent_before_the_failing_close():
    conn = server()
    conn.receive_data(client_frame(TEXT, b"echo me") + client_frame(CONT, b"orphan"))
    wire = []
    for event in conn.events():
        wire.append(conn.send_text(event.data))  # the application answers while the connection is open
        wire.append(conn.data_to_send())
    wire.append(conn.data_to_send())
    sent = decode_frames(b"".join(wire), masked=False)
    assert [opcode for opcode, _, _ in sent] == [TEXT, CLOSE]
    assert sent[0][2] == b"echo me"
    assert close_code_and_reason(sent[1][2])[0] == 1002


def test_pong_for_a_ping_before_a_protocol_error_precedes_the_close():
    conn = server()
    events = feed(conn, client_frame(PING, b"p") + client_frame(BINARY, b"b") + client_frame(0x3, b""))
    assert [summary(e) for e in events] == [("ping", b"p"), ("binary", b"b")]
    sent = sent_frames(conn)
    assert [opcode for opcode, _, _ in sent] == [PONG, CLOSE]
    assert close_code_and_reason(sent[1][2])[0] == 1002


def test_text_message_before_invalid_utf8_is_delivered_before_the_1007():
    conn = server()
    events = feed(conn, client_frame(TEXT, b"good") + client_frame(TEXT, b"\xff"))
    assert [summary(e) for e in events] == [("text", "good")]
    failed_with(conn, 1007)


def test_protocol_error_close_carries_1002_and_the_reason():
    conn = server()
    feed(conn, client_frame(0x5, b""))
    reason = failed_with(conn, 1002)
    assert "opcode" in reason
    assert conn.sent_close_code == 1002 and conn.sent_close_reason == reason
    assert isinstance(conn.failure, ProtocolError)
    assert conn.state != OPEN


def test_events_never_raise_protocol_errors_to_the_caller():
    conn = server()
    conn.receive_data(bad_rsv_frame())
    assert list(conn.events()) == []  # the error became a failure, not an exception
    assert conn.failure is not None


def test_event_types_are_the_documented_ones():
    events = feed(server(), client_frame(TEXT, b"t") + client_frame(BINARY, b"b") + client_frame(PING, b"")
                  + client_frame(PONG, b""))
    assert [type(e) for e in events] == [TextMessage, BinaryMessage, Ping, Pong]
