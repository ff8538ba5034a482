"""permessage-deflate on an open connection (RFC 7692 §6, §7.2): RSV1 rules, compressed and fragmented
messages, context takeover, and decompression bombs refused while inflating."""

import json
import zlib

import pytest

from websocket_helpers import MASK, close_code_and_reason, decode_frames, sent_frames
from madace_status.websocket import deflate, frames
from madace_status.websocket.connection import CLIENT, SERVER, BinaryMessage, Connection, Ping, TextMessage
from madace_status.websocket.prepared import PreparedMessage

TAIL = b"\x00\x00\xff\xff"


def params(**kwargs):
    return deflate.DeflateParams(**kwargs)


def raw_deflate(data, window_bits=15):
    compressor = zlib.compressobj(6, zlib.DEFLATED, -window_bits)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def client_frame(opcode, payload, fin=True, rsv1=False):
    return frames.serialize_frame(opcode, payload, fin, MASK, rsv1)


def server_conn(**kwargs):
    return Connection(SERVER, 64 * 1024, params(receive_no_context_takeover=True, **kwargs))


def failure(conn, data):
    conn.receive_data(data)
    events = list(conn.events())
    closes = [payload for opcode, fin, payload in sent_frames(conn) if opcode == frames.OP_CLOSE]
    assert closes, "no close frame was sent"
    return events, close_code_and_reason(closes[-1])


def first_byte(frame):
    return frame[0]


# -- sending -----------------------------------------------------------------------------------------------------

def test_messages_at_least_the_threshold_go_compressed_with_rsv1_and_smaller_ones_plain():
    conn = Connection(SERVER, deflate=params())
    big = json.dumps({"stories": ["story %d" % i for i in range(200)]})
    small = "x" * min(deflate.MIN_COMPRESS_BYTES - 1, 125)  # under the threshold, and a 7-bit length
    big_frame, small_frame = conn.send_text(big), conn.send_text(small)
    assert big_frame[0] == 0x80 | frames.RSV1 | frames.OP_TEXT
    assert small_frame[0] == 0x80 | frames.OP_TEXT and small_frame[2:] == small.encode()
    receiver = Connection(CLIENT, deflate=params())
    receiver.receive_data(big_frame + small_frame)
    assert [event.data for event in receiver.events()] == [big, small]
    assert len(big_frame) < len(big) / 3


def test_control_frames_are_never_compressed():
    conn = Connection(CLIENT, deflate=params())
    for frame in (conn.send_ping(b"p" * 125), conn.send_pong(b"q" * 125), conn.send_close(1000, "r" * 100)):
        assert not frame[0] & 0x70


def test_a_client_with_a_limited_window_compresses_within_it():
    conn = Connection(CLIENT, deflate=params(send_window_bits=9))
    text = "".join("%04d-" % (i % 300) for i in range(3000))
    [(opcode, fin, payload)] = decode_frames(conn.send_text(text), masked=True)
    assert zlib.decompressobj(-9).decompress(payload + TAIL).decode() == text  # a 512-byte window inflates it


def test_shared_message_compresses_once_per_window_size():
    shared = PreparedMessage(json.dumps({"data": list(range(500))}).encode())
    a, b, c = params(send_window_bits=15), params(send_window_bits=15), params(send_window_bits=10)
    assert shared.frame_for(a) is shared.frame_for(b)
    assert shared.frame_for(c) is not shared.frame_for(a)
    assert shared.frame_for(None) is shared.frame
    for frame in (shared.frame_for(a), shared.frame_for(c)):
        receiver = Connection(CLIENT, deflate=params())
        receiver.receive_data(frame)
        [event] = receiver.events()
        assert event.data.encode() == shared.payload


def test_chunks_compressed_apart_join_into_one_message():
    shared_part = json.dumps({"project": ["story %d" % i for i in range(1000)]}).encode()
    head, tail = b'{"type":"snapshot","data":', b'"reason":"connected"}}'
    for window_bits in (9, 15):
        payload = deflate.join_chunks((deflate.stored_chunk(head), deflate.compress_chunk(shared_part, window_bits),
                                       deflate.stored_chunk(tail)))
        receiver = Connection(CLIENT, deflate=params(receive_window_bits=window_bits))
        receiver.receive_data(frames.serialize_frame(frames.OP_TEXT, payload, rsv1=True))
        [event] = receiver.events()
        assert event.data.encode() == head + shared_part + tail
    assert deflate.stored_chunk(b"y" * 70000).count(b"\x00\xff\xff") >= 1  # split in 64 KiB stored blocks


# -- receiving ---------------------------------------------------------------------------------------------------

def test_a_fragmented_compressed_message_has_rsv1_on_its_first_frame_only_and_may_carry_pings():
    text = "Faust " * 3000
    compressed = raw_deflate(text.encode())
    third = len(compressed) // 3
    conn = server_conn()
    conn.receive_data(client_frame(frames.OP_TEXT, compressed[:third], fin=False, rsv1=True)
                      + client_frame(frames.OP_PING, b"mid")
                      + client_frame(frames.OP_CONTINUATION, compressed[third:2 * third], fin=False)
                      + client_frame(frames.OP_CONTINUATION, compressed[2 * third:]))
    events = list(conn.events())
    assert isinstance(events[0], Ping) and isinstance(events[1], TextMessage) and events[1].data == text


def test_compressed_binary_and_empty_messages():
    conn = server_conn()
    data = bytes(range(256)) * 50
    conn.receive_data(client_frame(frames.OP_BINARY, raw_deflate(data), rsv1=True)
                      + client_frame(frames.OP_TEXT, raw_deflate(b""), rsv1=True)
                      + client_frame(frames.OP_TEXT, b"", rsv1=True))  # an empty payload inflates to nothing
    events = list(conn.events())
    assert isinstance(events[0], BinaryMessage) and events[0].data == data
    assert [event.data for event in events[1:]] == ["", ""]


@pytest.mark.parametrize("name, data", [
    ("rsv1 without deflate", None),
    ("rsv1 on a continuation", client_frame(frames.OP_TEXT, b"", fin=False, rsv1=True)
     + client_frame(frames.OP_CONTINUATION, b"", rsv1=True)),
    ("rsv1 on a ping", client_frame(frames.OP_PING, b"", rsv1=True)),
    ("rsv1 on a close", client_frame(frames.OP_CLOSE, b"\x03\xe8", rsv1=True)),
    ("rsv2", bytes([0x80 | 0x20 | 1, 0x80]) + MASK),
    ("rsv3", bytes([0x80 | 0x10 | 1, 0x80]) + MASK),
])
def test_reserved_bit_violations_fail_with_1002(name, data):
    if data is None:
        conn = Connection(SERVER)
        data = client_frame(frames.OP_TEXT, raw_deflate(b"hello" * 40), rsv1=True)
    else:
        conn = server_conn()
    events, (code, reason) = failure(conn, data)
    assert code == 1002 and not [e for e in events if isinstance(e, TextMessage)]


def test_invalid_deflate_data_fails_with_1007():
    events, (code, reason) = failure(server_conn(), client_frame(frames.OP_TEXT, b"\xff\xff\xff\xff", rsv1=True))
    assert code == 1007 and "deflate" in reason


def test_compressed_text_that_inflates_to_invalid_utf8_fails_with_1007():
    events, (code, _) = failure(server_conn(), client_frame(frames.OP_TEXT, raw_deflate(b"ok \xc3\x28 " * 50),
                                                            rsv1=True))
    assert code == 1007


def test_a_peer_that_takes_over_context_is_followed_across_messages():
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    messages = [("line %d " % (i % 3)) * 60 for i in range(3)]
    conn = Connection(CLIENT, deflate=params(receive_no_context_takeover=False))
    for message in messages:
        payload = compressor.compress(message.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
        conn.receive_data(frames.serialize_frame(frames.OP_TEXT, payload[:-4], rsv1=True))
    assert [event.data for event in conn.events()] == messages
    assert conn._inflater.holds_context  # kept: the next message may refer back


def test_without_context_takeover_the_inflater_is_released_after_each_message():
    conn = server_conn()
    assert conn._inflater is None  # nothing until a compressed message arrives
    conn.receive_data(client_frame(frames.OP_TEXT, raw_deflate(b"abc" * 100), rsv1=True))
    assert list(conn.events())[0].data == "abc" * 100
    assert not conn._inflater.holds_context


# -- decompression bombs ---------------------------------------------------------------------------------------

def test_a_bomb_holds_only_its_compressed_bytes_and_is_refused_with_1009_once_complete():
    bomb = raw_deflate(b"\x00" * (50 * 1024 * 1024))  # 50 MiB of zeros in about 50 KiB
    assert len(bomb) < 64 * 1024
    conn = server_conn()
    frame = client_frame(frames.OP_BINARY, bomb, rsv1=True)
    conn.receive_data(frame[:8 + 2000])  # only 2,000 bytes of it arrive: kept as they came, nothing inflated
    assert list(conn.events()) == [] and conn.assembling and conn._inflater is None
    assert len(conn._fragments) == 2000
    events, (code, reason) = failure(conn, frame[8 + 2000:])
    assert code == 1009 and not events


def test_a_fragmented_bomb_is_refused_at_its_last_fragment_holding_what_was_sent():
    bomb = raw_deflate(b"a" * (200 * 1024))
    conn = server_conn()
    conn.receive_data(client_frame(frames.OP_TEXT, bomb, fin=False, rsv1=True))
    assert list(conn.events()) == [] and len(conn._fragments) == len(bomb)
    _, (code, _) = failure(conn, client_frame(frames.OP_CONTINUATION, b""))
    assert code == 1009


def test_bytes_after_a_final_block_are_invalid_payload_1007():
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    final = compressor.compress(b"hello " * 100) + compressor.flush(zlib.Z_FINISH)  # BFINAL: the stream ends
    conn = server_conn()
    conn.receive_data(client_frame(frames.OP_TEXT, final, rsv1=True))
    assert [event.data for event in conn.events()] == ["hello " * 100]  # the tail we append is not "after"
    _, (code, _) = failure(server_conn(), client_frame(frames.OP_TEXT, final + b"junk", rsv1=True))
    assert code == 1007


def test_a_message_exactly_at_the_limit_inflates_and_one_byte_more_does_not():
    limit = 64 * 1024
    conn = server_conn()
    conn.receive_data(client_frame(frames.OP_BINARY, raw_deflate(b"z" * limit), rsv1=True))
    assert len(list(conn.events())[0].data) == limit
    _, (code, _) = failure(server_conn(), client_frame(frames.OP_BINARY, raw_deflate(b"z" * (limit + 1)),
                                                       rsv1=True))
    assert code == 1009


def test_the_inflater_never_produces_much_more_than_the_budget():
    inflater = deflate.Inflater(params())
    with pytest.raises(deflate.MessageTooBig):
        inflater.inflate(raw_deflate(b"\x00" * 10 ** 7), 1000)
    assert not inflater.holds_context
    assert inflater.inflate(raw_deflate(b"x" * 1000), 1000) == b"x" * 1000
