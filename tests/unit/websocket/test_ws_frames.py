"""RFC 6455 §5 framing: length forms, header validation, masking, and the incremental parser."""

import os

import pytest

from websocket_helpers import MASK, decode_frames
from madace_status.websocket import frames
from madace_status.websocket.errors import ProtocolError
from madace_status.websocket.frames import FrameParser, apply_mask, serialize_frame

TRANSLATE_THRESHOLD = 256 * 1024


def naive_mask(data, mask):
    return bytes(byte ^ mask[index % 4] for index, byte in enumerate(data))


def parse_header_error(data, expect_masked=False):
    parser = FrameParser(expect_masked=expect_masked)
    parser.feed(data)
    with pytest.raises(ProtocolError) as info:
        parser.next_piece()
    return info.value


def whole_frame(data, expect_masked):
    """(opcode, fin, payload) of the single frame in `data`."""
    decoded = decode_frames(data, expect_masked)
    assert len(decoded) == 1
    return decoded[0]


# -- length forms --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [0, 1, 125])
def test_lengths_up_to_125_use_the_7_bit_form(length):
    data = serialize_frame(frames.OP_BINARY, b"x" * length)
    assert data[1] == length
    assert len(data) == 2 + length


@pytest.mark.parametrize("length", [126, 127, 65535])
def test_lengths_126_to_65535_use_the_16_bit_form(length):
    data = serialize_frame(frames.OP_BINARY, b"x" * length)
    assert data[1] == 126
    assert int.from_bytes(data[2:4], "big") == length
    assert len(data) == 4 + length


@pytest.mark.parametrize("length", [65536, 65537, 200000])
def test_lengths_from_65536_use_the_64_bit_form(length):
    data = serialize_frame(frames.OP_BINARY, b"x" * length)
    assert data[1] == 127
    assert int.from_bytes(data[2:10], "big") == length
    assert len(data) == 10 + length


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70001])
def test_parser_reads_every_length_form_at_its_boundaries(length, masked):
    payload = os.urandom(length)
    data = serialize_frame(frames.OP_BINARY, payload, True, MASK if masked else None)
    assert whole_frame(data, masked) == (frames.OP_BINARY, True, payload)


def test_parser_accepts_a_non_minimal_16_bit_length():
    # RFC 6455 asks senders for the minimal form; a receiver loses nothing by accepting the longer one.
    data = b"\x82\x7e\x00\x05hello"
    assert whole_frame(data, False) == (frames.OP_BINARY, True, b"hello")


def test_64_bit_length_with_the_top_bit_set_is_refused():
    data = b"\x82\x7f" + (1 << 63).to_bytes(8, "big")
    error = parse_header_error(data)
    assert error.close_code == 1002
    assert "64-bit" in error.reason


def test_64_bit_length_with_the_top_bit_set_is_refused_before_any_payload_arrives():
    data = b"\x82\xff" + ((1 << 63) | 5).to_bytes(8, "big") + MASK  # header only, from a client
    assert parse_header_error(data, expect_masked=True).close_code == 1002


# -- header validation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70], ids=["rsv1", "rsv2", "rsv3", "all"])
def test_rsv_bits_are_refused_without_a_negotiated_extension(rsv):
    data = bytearray(serialize_frame(frames.OP_TEXT, b"hi"))
    data[0] |= rsv
    error = parse_header_error(bytes(data))
    assert error.close_code == 1002
    assert "RSV" in error.reason or "reserved" in error.reason


@pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcodes_are_refused(opcode):
    error = parse_header_error(bytes((0x80 | opcode, 0)))
    assert error.close_code == 1002
    assert "opcode" in error.reason


@pytest.mark.parametrize("opcode", [frames.OP_CLOSE, frames.OP_PING, frames.OP_PONG])
def test_control_frame_without_fin_is_refused(opcode):
    error = parse_header_error(serialize_frame(opcode, b"", fin=False))
    assert error.close_code == 1002


@pytest.mark.parametrize("opcode", [frames.OP_CLOSE, frames.OP_PING, frames.OP_PONG])
def test_control_frame_over_125_bytes_is_refused(opcode):
    error = parse_header_error(serialize_frame(opcode, b"\x03\xe8" + b"x" * 124))
    assert error.close_code == 1002
    assert "125" in error.reason


def test_control_frame_over_125_bytes_is_refused_before_its_payload_arrives():
    assert parse_header_error(b"\x89\x7e\x01\x00").close_code == 1002  # ping announcing 256 bytes


@pytest.mark.parametrize("opcode", [frames.OP_PING, frames.OP_PONG])
def test_control_frame_of_exactly_125_bytes_is_accepted(opcode):
    payload = bytes(range(125))
    assert whole_frame(serialize_frame(opcode, payload), False) == (opcode, True, payload)


def test_server_side_parser_refuses_unmasked_client_frames():
    error = parse_header_error(serialize_frame(frames.OP_TEXT, b"hi"), expect_masked=True)
    assert error.close_code == 1002
    assert "masked" in error.reason


def test_client_side_parser_refuses_masked_server_frames():
    error = parse_header_error(serialize_frame(frames.OP_TEXT, b"hi", True, MASK), expect_masked=False)
    assert error.close_code == 1002
    assert "masked" in error.reason


def test_length_check_is_called_with_the_frame_length_before_the_payload_arrives():
    calls = []
    parser = FrameParser(expect_masked=False, length_check=lambda *args: calls.append(args))
    parser.feed(serialize_frame(frames.OP_BINARY, b"x" * 70000, fin=False)[:10])  # header only
    piece = parser.next_piece()
    assert calls == [(frames.OP_BINARY, False, 70000, False)]  # (opcode, FIN, length, RSV1)
    assert piece is None


# -- incremental parsing -------------------------------------------------------------------------------------

def test_incomplete_header_asks_for_more_bytes():
    data = serialize_frame(frames.OP_BINARY, b"x" * 300, True, MASK)
    parser = FrameParser(expect_masked=True)
    for index in range(8):  # 2 + 2 (16-bit length) + 4 (mask) header bytes
        parser.feed(data[index:index + 1])
        assert parser.next_piece() is None


def test_data_frame_payload_is_delivered_as_it_arrives_with_first_and_last_flags():
    payload = b"abcdefghij"
    data = serialize_frame(frames.OP_TEXT, payload, True, MASK)
    parser = FrameParser(expect_masked=True)
    parser.feed(data[:6 + 3])
    first = parser.next_piece()
    assert (first.opcode, first.payload, first.first, first.last, first.frame_length) == (
        frames.OP_TEXT, b"abc", True, False, 10)
    assert parser.next_piece() is None
    parser.feed(data[9:])
    rest = parser.next_piece()
    assert (rest.payload, rest.first, rest.last) == (b"defghij", False, True)


def test_control_frame_is_delivered_only_when_whole():
    data = serialize_frame(frames.OP_PING, b"0123456789", True, MASK)
    parser = FrameParser(expect_masked=True)
    parser.feed(data[:-1])
    assert parser.next_piece() is None
    parser.feed(data[-1:])
    piece = parser.next_piece()
    assert (piece.opcode, piece.payload, piece.first, piece.last) == (frames.OP_PING, b"0123456789", True, True)


def test_masked_payload_fed_one_byte_at_a_time_is_unmasked_with_the_right_mask_lane():
    payload = bytes(range(256)) * 3
    data = serialize_frame(frames.OP_BINARY, payload, True, MASK)
    parser = FrameParser(expect_masked=True)
    received = b""
    for index in range(len(data)):
        parser.feed(data[index:index + 1])
        piece = parser.next_piece()
        if piece is not None:
            received += piece.payload
    assert received == payload


def test_empty_data_frame_is_one_piece_that_is_first_and_last():
    parser = FrameParser(expect_masked=False)
    parser.feed(serialize_frame(frames.OP_TEXT, b"", fin=False))
    piece = parser.next_piece()
    assert (piece.payload, piece.first, piece.last, piece.fin) == (b"", True, True, False)
    assert parser.next_piece() is None


def test_several_frames_in_one_feed_are_parsed_in_order():
    data = (serialize_frame(frames.OP_TEXT, b"a", fin=False) + serialize_frame(frames.OP_PING, b"p")
            + serialize_frame(frames.OP_CONTINUATION, b"b"))
    assert decode_frames(data, False) == [
        (frames.OP_TEXT, False, b"a"), (frames.OP_PING, True, b"p"), (frames.OP_CONTINUATION, True, b"b")]


# -- masking -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 125, 126, 1023, 65536])
def test_apply_mask_matches_a_naive_xor_for_small_sizes(size):
    data = os.urandom(size)
    assert apply_mask(data, MASK) == naive_mask(data, MASK)


@pytest.mark.parametrize("size", [TRANSLATE_THRESHOLD - 5, TRANSLATE_THRESHOLD - 1, TRANSLATE_THRESHOLD,
                                  TRANSLATE_THRESHOLD + 1, TRANSLATE_THRESHOLD + 2, TRANSLATE_THRESHOLD + 3,
                                  TRANSLATE_THRESHOLD + 4])
def test_apply_mask_matches_a_naive_xor_around_the_256_kib_threshold(size):
    data = os.urandom(size)
    assert apply_mask(data, MASK) == naive_mask(data, MASK)


@pytest.mark.parametrize("size", [10, TRANSLATE_THRESHOLD + 7])
def test_apply_mask_accepts_bytearray_and_memoryview(size):
    data = os.urandom(size)
    expected = naive_mask(data, MASK)
    assert apply_mask(bytearray(data), MASK) == expected
    assert apply_mask(memoryview(data), MASK) == expected


@pytest.mark.parametrize("size", [13, TRANSLATE_THRESHOLD + 13])
def test_apply_mask_twice_gives_back_the_data(size):
    data = os.urandom(size)
    mask = os.urandom(4)
    assert apply_mask(apply_mask(data, mask), mask) == data


def test_apply_mask_with_a_zero_mask_is_the_identity():
    data = os.urandom(1000)
    assert apply_mask(data, b"\x00\x00\x00\x00") == data


def test_serialized_masked_frame_carries_the_mask_and_the_masked_payload():
    data = serialize_frame(frames.OP_TEXT, b"Hello", True, MASK)
    assert data[:2] == b"\x81\x85"
    assert data[2:6] == MASK
    assert data[6:] == naive_mask(b"Hello", MASK)


def test_rfc_6455_masked_hello_example_is_parsed():
    # RFC 6455 §5.7: a single-frame masked text message containing "Hello".
    data = bytes.fromhex("818537fa213d7f9f4d5158")
    assert whole_frame(data, True) == (frames.OP_TEXT, True, b"Hello")


# -- close codes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                                  3000, 3999, 4000, 4999])
def test_registered_and_private_close_codes_are_valid(code):
    assert frames.is_valid_close_code(code)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_reserved_and_unassigned_close_codes_are_invalid(code):
    assert not frames.is_valid_close_code(code)


def test_close_payload_is_the_code_then_the_utf8_reason():
    assert frames.close_payload(1000, "bye ✓") == b"\x03\xe8" + "bye ✓".encode("utf-8")


def test_close_payload_without_a_code_is_empty():
    assert frames.close_payload() == b"" and frames.close_payload(1005) == b""


def test_close_reason_over_123_bytes_is_refused():
    with pytest.raises(ValueError):
        frames.close_payload(1000, "é" * 62)
