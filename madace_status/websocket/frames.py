"""RFC 6455 §5 framing: masking, frame serialisation and an incremental frame parser; the opcodes and close
codes (codes.py) under the names the rest of websocket/ compares against (README, "The WebSocket
implementation").

No I/O here. The parser takes bytes as they arrive and hands back frame pieces, so a data frame's payload
is delivered as soon as it is on the wire (the connection validates UTF-8 before the frame is complete).
A piece's opcode is the plain int read from the wire: no enum is built per frame (see codes.py).
"""

from __future__ import annotations

import struct
from typing import Callable, Union

from madace_status.websocket.codes import CloseCode, Opcode, WireInt, is_valid_close_code
from madace_status.websocket.errors import ProtocolError

__all__ = [
    "CLOSE_ABNORMAL", "CLOSE_GOING_AWAY", "CLOSE_INTERNAL_ERROR", "CLOSE_INVALID_PAYLOAD", "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_NORMAL", "CLOSE_NO_STATUS", "CLOSE_POLICY_VIOLATION", "CLOSE_PROTOCOL_ERROR", "CLOSE_UNSUPPORTED_DATA",
    "CONTROL_OPCODES", "CloseCode", "DATA_OPCODES", "FrameParser", "FramePiece", "KNOWN_OPCODES", "LengthCheck",
    "MAX_CONTROL_PAYLOAD_BYTES", "OP_BINARY", "OP_CLOSE", "OP_CONTINUATION", "OP_PING", "OP_PONG", "OP_TEXT",
    "Opcode", "RSV1", "WireInt", "apply_mask", "close_payload", "frame_length", "is_valid_close_code",
    "serialize_frame",
]

# The opcodes as plain ints equal to the members: the parser and the connection compare every frame's opcode
# against these, and CPython's fast path for comparing ints wants two exact ints (IntEnum operands cost about 3%
# of parsing a small frame). A global read, too: `Opcode.CLOSE` is an attribute lookup (see codes.py).
OP_CONTINUATION, OP_TEXT, OP_BINARY = int(Opcode.CONTINUATION), int(Opcode.TEXT), int(Opcode.BINARY)
OP_CLOSE, OP_PING, OP_PONG = int(Opcode.CLOSE), int(Opcode.PING), int(Opcode.PONG)
DATA_OPCODES = frozenset((OP_CONTINUATION, OP_TEXT, OP_BINARY))
CONTROL_OPCODES = frozenset((OP_CLOSE, OP_PING, OP_PONG))
KNOWN_OPCODES = DATA_OPCODES | CONTROL_OPCODES

MAX_CONTROL_PAYLOAD_BYTES = 125
MAX_7BIT_LENGTH = 125
MAX_16BIT_LENGTH = 0xFFFF
LENGTH_16BIT = 126
LENGTH_64BIT = 127

# The close codes are members (a close is once per connection, not per frame): they print as their number.
CLOSE_NORMAL, CLOSE_GOING_AWAY = CloseCode.NORMAL, CloseCode.GOING_AWAY
CLOSE_PROTOCOL_ERROR, CLOSE_UNSUPPORTED_DATA = CloseCode.PROTOCOL_ERROR, CloseCode.UNSUPPORTED_DATA
CLOSE_NO_STATUS, CLOSE_ABNORMAL = CloseCode.NO_STATUS, CloseCode.ABNORMAL
CLOSE_INVALID_PAYLOAD, CLOSE_POLICY_VIOLATION = CloseCode.INVALID_PAYLOAD, CloseCode.POLICY_VIOLATION
CLOSE_MESSAGE_TOO_BIG, CLOSE_INTERNAL_ERROR = CloseCode.MESSAGE_TOO_BIG, CloseCode.INTERNAL_ERROR

Bytes = Union[bytes, bytearray, memoryview]
_NO_FRAME = -1  # FrameParser._opcode between frames: a plain int keeps the hot path free of None checks
# Called with a frame's opcode, FIN, payload length and RSV1 once its header is read (FrameParser).
LengthCheck = Callable[[int, bool, int, bool], None]


# Masking is one big-integer XOR: CPython converts and XORs whole machine words, far faster than a Python
# loop over bytes. Large payloads go in blocks so the repeated key is built once and stays cache-sized.
_MASK_BLOCK_BYTES = 64 * 1024


def apply_mask(data: Bytes, mask: bytes) -> bytes:
    """XOR `data` with the 4-byte `mask` repeated (masking and unmasking are the same operation)."""
    length = len(data)
    if length <= _MASK_BLOCK_BYTES:
        if not length:
            return b""
        whole, rest = divmod(length, 4)
        key = int.from_bytes(mask * whole + mask[:rest], "little")
        return (int.from_bytes(data, "little") ^ key).to_bytes(length, "little")
    view = memoryview(data)
    out = bytearray(length)
    block_key = int.from_bytes(mask * (_MASK_BLOCK_BYTES // 4), "little")
    whole_blocks_end = length - length % _MASK_BLOCK_BYTES
    for start in range(0, whole_blocks_end, _MASK_BLOCK_BYTES):
        end = start + _MASK_BLOCK_BYTES
        out[start:end] = (int.from_bytes(view[start:end], "little") ^ block_key).to_bytes(_MASK_BLOCK_BYTES, "little")
    if whole_blocks_end < length:
        out[whole_blocks_end:] = apply_mask(view[whole_blocks_end:], mask)  # block-aligned: the mask phase is 0
    return bytes(out)


_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack


RSV1 = 0x40  # "compressed" on the first frame of a message when permessage-deflate is in use (RFC 7692 §6)


def serialize_frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bytes | None = None,
                    rsv1: bool = False) -> bytes:
    """The bytes of one frame. `mask` is 4 bytes for a client frame, None for a server frame."""
    first = (0x80 if fin else 0) | (RSV1 if rsv1 else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if length <= MAX_7BIT_LENGTH:
        header = bytes((first, mask_bit | length))
    elif length <= MAX_16BIT_LENGTH:
        header = _pack_short(first, mask_bit | LENGTH_16BIT, length)
    else:
        header = _pack_long(first, mask_bit | LENGTH_64BIT, length)
    if mask is None:
        return header + payload
    return header + mask + apply_mask(payload, mask)


def frame_length(payload_length: int, masked: bool = False) -> int:
    """Bytes on the wire of a frame with a payload of `payload_length` bytes."""
    if payload_length <= MAX_7BIT_LENGTH:
        header = 2
    elif payload_length <= MAX_16BIT_LENGTH:
        header = 4
    else:
        header = 10
    return header + (4 if masked else 0) + payload_length


def close_payload(code: int | None = None, reason: str = "") -> bytes:
    """The payload of a close frame: nothing, or a 2-byte code then the UTF-8 reason."""
    if code is None or code == CLOSE_NO_STATUS:
        return b""
    encoded = reason.encode("utf-8")
    if len(encoded) > MAX_CONTROL_PAYLOAD_BYTES - 2:
        raise ValueError("close reason is longer than 123 bytes in UTF-8")
    return code.to_bytes(2, "big") + encoded


class FramePiece:
    """Part (or all) of one frame's payload, as parsed so far.

    `first` is True for the piece that starts the frame, `last` for the piece that ends it; a control frame
    always comes whole (first and last). `fin` is the frame's FIN bit, `rsv1` its RSV1 bit.
    """

    __slots__ = ("opcode", "fin", "payload", "first", "last", "frame_length", "rsv1")

    def __init__(self, opcode: int, fin: bool, payload: bytes, first: bool, last: bool, frame_length: int,
                 rsv1: bool = False) -> None:
        self.opcode = opcode
        self.fin = fin
        self.rsv1 = rsv1
        self.payload = payload
        self.first = first
        self.last = last
        self.frame_length = frame_length

    def __repr__(self) -> str:
        return "FramePiece(opcode=%d, fin=%s, %d bytes, first=%s, last=%s)" % (
            self.opcode, self.fin, len(self.payload), self.first, self.last)


class FrameParser:
    """Incremental frame parser for one direction of one connection.

    `feed(data)` appends bytes; `next_piece()` returns the next FramePiece, or None when more bytes are
    needed. Headers are validated as soon as they are complete: RSV bits, opcode, control frame rules,
    the mask bit the role requires, a 64-bit length with the top bit set, and `length_check`
    (called with the opcode, FIN, length and RSV1 before any payload is buffered, so an oversized message
    fails before it is read). RSV1 is allowed only with `allow_rsv1` (permessage-deflate negotiated), and
    then only on a text or binary frame: never on a control or continuation frame (RFC 7692 §6).
    """

    __slots__ = ("_expect_masked", "_length_check", "_buffer", "_offset", "_opcode", "_fin", "_mask", "_remaining",
                 "_frame_length", "_started", "allow_rsv1", "_rsv1")

    def __init__(self, expect_masked: bool, length_check: LengthCheck | None = None, allow_rsv1: bool = False) -> None:
        self._expect_masked = expect_masked
        self._length_check = length_check
        self.allow_rsv1 = allow_rsv1
        self._rsv1 = False
        self._buffer = bytearray()
        self._offset = 0  # bytes of _buffer already consumed
        # State of the frame whose payload is being read (_NO_FRAME between frames).
        self._opcode = _NO_FRAME
        self._fin = False
        self._mask: bytes | None = None
        self._remaining = 0
        self._frame_length = 0
        self._started = False

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer) - self._offset

    def feed(self, data: Bytes) -> None:
        if self._offset and self._offset == len(self._buffer):
            self._buffer.clear()
            self._offset = 0
        self._buffer += data

    def _compact(self) -> None:
        # Drop consumed bytes once they dominate, so the buffer never grows with the stream.
        if self._offset > 65536 and self._offset * 2 > len(self._buffer):
            del self._buffer[:self._offset]
            self._offset = 0

    def next_piece(self) -> FramePiece | None:
        if self._opcode == _NO_FRAME and not self._read_header():
            return None
        buffer = self._buffer
        start = self._offset
        available = len(buffer) - start
        remaining = self._remaining
        opcode = self._opcode
        if available >= remaining:
            take = remaining
        elif opcode >= OP_CLOSE or not available:
            return None  # control frames (at most 125 bytes) are delivered whole
        else:
            take = available
        end = start + take
        self._offset = end
        mask = self._mask
        if mask is None:
            payload = bytes(buffer[start:end])
        elif take:
            phase = (self._frame_length - remaining) & 3  # where in the mask this piece starts
            if phase:
                mask = mask[phase:] + mask[:phase]
            payload = apply_mask(buffer[start:end], mask)
        else:
            payload = b""
        first = not self._started
        self._started = True
        remaining -= take
        self._remaining = remaining
        if not remaining:
            self._opcode = _NO_FRAME
        if start > 65536:
            self._compact()
        return FramePiece(opcode, self._fin, payload, first, not remaining, self._frame_length, self._rsv1)

    def _read_header(self) -> bool:
        buffer = self._buffer
        start = self._offset
        available = len(buffer) - start
        if available < 2:
            return False
        first, second = buffer[start], buffer[start + 1]
        length = second & 0x7F
        masked = bool(second & 0x80)
        header_length = 2 + (4 if masked else 0)
        if length == LENGTH_16BIT:
            header_length += 2
        elif length == LENGTH_64BIT:
            header_length += 8
        if available < header_length:
            return False
        fin = bool(first & 0x80)
        opcode = first & 0x0F
        rsv1 = bool(first & RSV1)
        if first & 0x30 or (rsv1 and not self.allow_rsv1):
            raise ProtocolError("reserved bits set without a negotiated extension (RSV=%d)" % ((first >> 4) & 7))
        if opcode not in KNOWN_OPCODES:
            raise ProtocolError("unknown opcode 0x%X" % opcode)
        if rsv1 and opcode not in (OP_TEXT, OP_BINARY):
            raise ProtocolError("RSV1 set on a %s frame" % ("control" if opcode >= OP_CLOSE else "continuation"))
        position = start + 2
        if length == LENGTH_16BIT:
            length = int.from_bytes(buffer[position:position + 2], "big")
            position += 2
        elif length == LENGTH_64BIT:
            length = int.from_bytes(buffer[position:position + 8], "big")
            position += 8
            if length >> 63:
                raise ProtocolError("64-bit payload length has its most significant bit set")
        if opcode >= OP_CLOSE:
            if not fin:
                raise ProtocolError("fragmented control frame")
            if length > MAX_CONTROL_PAYLOAD_BYTES:
                raise ProtocolError("control frame payload of %d bytes (max 125)" % length)
        if masked != self._expect_masked:
            raise ProtocolError("client frames must be masked" if self._expect_masked
                                else "server frames must not be masked")
        if self._length_check is not None:
            self._length_check(opcode, fin, length, rsv1)
        self._mask = bytes(buffer[position:position + 4]) if masked else None
        self._offset = start + header_length
        self._opcode = opcode
        self._fin = fin
        self._rsv1 = rsv1
        self._remaining = length
        self._frame_length = length
        self._started = False
        return True
