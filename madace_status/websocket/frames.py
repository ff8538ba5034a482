"""RFC 6455 §5 framing: opcodes, close codes, masking, frame serialisation and an incremental frame parser.

No I/O here. The parser takes bytes as they arrive and hands back frame pieces, so a data frame's payload
is delivered as soon as it is on the wire (the connection validates UTF-8 before the frame is complete).
"""

import enum
import struct

from madace_status.websocket.errors import ProtocolError


class WireInt(enum.IntEnum):
    """An IntEnum equal to its wire value that also prints as that number on every Python (3.9's IntEnum
    prints `Opcode.TEXT` in "%s" and str(); 3.11's prints the number)."""

    def __str__(self) -> str:
        return str(self.value)


class Opcode(WireInt):
    """A frame's opcode (RFC 6455 §5.2). The parser compares the raw ints it reads with these."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(WireInt):
    """The close codes this side sends or reports (RFC 6455 §7.4.1 and the IANA registry)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never on the wire: "the close frame carried no code"
    ABNORMAL = 1006  # never on the wire: "the TCP connection dropped without a close frame"
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


# The members under their older names, which the rest of the package and the tests use.
OP_CONTINUATION, OP_TEXT, OP_BINARY = Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY
OP_CLOSE, OP_PING, OP_PONG = Opcode.CLOSE, Opcode.PING, Opcode.PONG
DATA_OPCODES = frozenset((OP_CONTINUATION, OP_TEXT, OP_BINARY))
CONTROL_OPCODES = frozenset((OP_CLOSE, OP_PING, OP_PONG))
KNOWN_OPCODES = DATA_OPCODES | CONTROL_OPCODES

MAX_CONTROL_PAYLOAD_BYTES = 125
MAX_7BIT_LENGTH = 125
MAX_16BIT_LENGTH = 0xFFFF
LENGTH_16BIT = 126
LENGTH_64BIT = 127

CLOSE_NORMAL, CLOSE_GOING_AWAY = CloseCode.NORMAL, CloseCode.GOING_AWAY
CLOSE_PROTOCOL_ERROR, CLOSE_UNSUPPORTED_DATA = CloseCode.PROTOCOL_ERROR, CloseCode.UNSUPPORTED_DATA
CLOSE_NO_STATUS, CLOSE_ABNORMAL = CloseCode.NO_STATUS, CloseCode.ABNORMAL
CLOSE_INVALID_PAYLOAD, CLOSE_POLICY_VIOLATION = CloseCode.INVALID_PAYLOAD, CloseCode.POLICY_VIOLATION
CLOSE_MESSAGE_TOO_BIG, CLOSE_INTERNAL_ERROR = CloseCode.MESSAGE_TOO_BIG, CloseCode.INTERNAL_ERROR
# Codes a peer may send: the IANA-registered ones that are allowed on the wire, and the private ranges.
_REGISTERED_WIRE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


def is_valid_close_code(code):
    """True when `code` may appear in a close frame: 1000–1003, 1007–1014 or 3000–4999."""
    return code in _REGISTERED_WIRE_CODES or 3000 <= code <= 4999


# Masking is one big-integer XOR: CPython converts and XORs whole machine words, far faster than a Python
# loop over bytes. Large payloads go in blocks so the repeated key is built once and stays cache-sized.
_MASK_BLOCK_BYTES = 64 * 1024


def apply_mask(data, mask):
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


def serialize_frame(opcode, payload=b"", fin=True, mask=None, rsv1=False):
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


def frame_length(payload_length, masked=False):
    """Bytes on the wire of a frame with a payload of `payload_length` bytes."""
    if payload_length <= MAX_7BIT_LENGTH:
        header = 2
    elif payload_length <= MAX_16BIT_LENGTH:
        header = 4
    else:
        header = 10
    return header + (4 if masked else 0) + payload_length


def close_payload(code=None, reason=""):
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

    def __init__(self, opcode, fin, payload, first, last, frame_length, rsv1=False):
        self.opcode = opcode
        self.fin = fin
        self.rsv1 = rsv1
        self.payload = payload
        self.first = first
        self.last = last
        self.frame_length = frame_length

    def __repr__(self):
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

    def __init__(self, expect_masked, length_check=None, allow_rsv1=False):
        self._expect_masked = expect_masked
        self._length_check = length_check
        self.allow_rsv1 = allow_rsv1
        self._rsv1 = False
        self._buffer = bytearray()
        self._offset = 0  # bytes of _buffer already consumed
        # State of the frame whose payload is being read (None between frames).
        self._opcode = None
        self._fin = False
        self._mask = None
        self._remaining = 0
        self._frame_length = 0
        self._started = False

    @property
    def buffered_bytes(self):
        return len(self._buffer) - self._offset

    def feed(self, data):
        if self._offset and self._offset == len(self._buffer):
            self._buffer.clear()
            self._offset = 0
        self._buffer += data

    def _compact(self):
        # Drop consumed bytes once they dominate, so the buffer never grows with the stream.
        if self._offset > 65536 and self._offset * 2 > len(self._buffer):
            del self._buffer[:self._offset]
            self._offset = 0

    def next_piece(self):
        if self._opcode is None and not self._read_header():
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
            self._opcode = None
        if start > 65536:
            self._compact()
        return FramePiece(opcode, self._fin, payload, first, not remaining, self._frame_length, self._rsv1)

    def _read_header(self):
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
