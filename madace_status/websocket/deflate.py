"""permessage-deflate (RFC 7692), sans-I/O: offer/response negotiation and per-message compression.

Both roles compress every message on its own (a fresh raw-deflate stream, no context kept between messages):
the server always answers with `server_no_context_takeover`, so one compressed frame can be written to every
client that negotiated the same window size. Taking over context is optional for a sender (RFC 7692 §7.1.1),
so the client does the same. Receiving, the inflater is made when a compressed message starts and dropped after
it unless the peer takes over context. Inflated bytes count against the message limit as they are produced
(README, "The WebSocket implementation"). A server message written to many clients is compressed once per window
size (prepared.py), with the chunk functions below.
"""

from __future__ import annotations

import zlib
from typing import Iterable, List, Optional, Tuple

from madace_status.websocket.errors import InvalidPayload, MessageTooBig
from madace_status.websocket.syntax import TOKEN_CHARS, is_ascii_number

__all__ = [
    "CLIENT_OFFER", "EXTENSION_NAME", "MAX_COMPRESSED_FACTOR", "MAX_WINDOW_BITS", "MIN_COMPRESS_BYTES",
    "MIN_COMPRESS_WINDOW_BITS", "MIN_WINDOW_BITS", "DeflateParams", "Inflater", "NegotiationError", "accept_offer",
    "accept_response", "can_compress", "compress", "compress_chunk", "join_chunks", "parse_extensions",
    "stored_chunk",
]

EXTENSION_NAME = "permessage-deflate"
SERVER_NO_CONTEXT_TAKEOVER = "server_no_context_takeover"
CLIENT_NO_CONTEXT_TAKEOVER = "client_no_context_takeover"
SERVER_MAX_WINDOW_BITS = "server_max_window_bits"
CLIENT_MAX_WINDOW_BITS = "client_max_window_bits"
_PARAMETERS = frozenset((SERVER_NO_CONTEXT_TAKEOVER, CLIENT_NO_CONTEXT_TAKEOVER, SERVER_MAX_WINDOW_BITS,
                         CLIENT_MAX_WINDOW_BITS))
MIN_WINDOW_BITS = 8
MAX_WINDOW_BITS = 15
# zlib cannot deflate with a 256-byte window (it silently widens 8 to 9), so with an 8-bit window a sender
# sends its messages uncompressed, which permessage-deflate allows message by message.
MIN_COMPRESS_WINDOW_BITS = 9
MIN_COMPRESS_BYTES = 256  # smaller payloads go uncompressed: a compressor costs ~16 us to save a few dozen bytes
COMPRESSION_LEVEL = 6  # zlib's default: most of level 9's ratio at a fraction of its CPU
MEM_LEVEL = 8  # zlib's default; the compressor lives only while one message is compressed
# A deflate stream is never more than a few bytes per 16 KiB larger than its content; a compressed frame
# longer than this factor times the message limit cannot inflate within the limit.
MAX_COMPRESSED_FACTOR = 2
_TAIL = b"\x00\x00\xff\xff"  # the empty stored block a sync flush ends with: stripped on send, re-appended on receive
# One element of a Sec-WebSocket-Extensions field: its name and parameters (None: malformed, declined alone).
Element = Tuple[str, Optional[List[Tuple[str, Optional[str]]]]]


class NegotiationError(ValueError):
    """An extension element that is malformed or cannot be honoured."""


class DeflateParams:
    """What was agreed, from this endpoint's point of view.

    send_window_bits: the window this side may compress with; receive_window_bits: the peer's;
    receive_no_context_takeover: the peer compresses every message on its own (its inflater is dropped after each);
    min_compress_bytes: smaller messages are sent uncompressed (a local choice, not negotiated).
    """

    __slots__ = ("send_window_bits", "receive_window_bits", "receive_no_context_takeover", "min_compress_bytes")

    def __init__(self, send_window_bits: int = MAX_WINDOW_BITS, receive_window_bits: int = MAX_WINDOW_BITS,
                 receive_no_context_takeover: bool = False, min_compress_bytes: int = MIN_COMPRESS_BYTES) -> None:
        self.min_compress_bytes = min_compress_bytes
        self.send_window_bits = send_window_bits
        self.receive_window_bits = receive_window_bits
        self.receive_no_context_takeover = receive_no_context_takeover

    def __repr__(self) -> str:
        return "DeflateParams(send %d bits, receive %d bits%s)" % (
            self.send_window_bits, self.receive_window_bits,
            ", peer without context takeover" if self.receive_no_context_takeover else "")


# -- header syntax (RFC 6455 §9.1) ---------------------------------------------------------------------------

def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise NegotiationError("unterminated quoted string")
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner, escaped = value[1:-1], False
        out: list[str] = []
        for char in inner:
            if escaped or char != "\\":
                out.append(char)
                escaped = False
            else:
                escaped = True
        value = "".join(out)  # after unquoting the value must still be a token (RFC 6455 §9.1)
    if not value or not TOKEN_CHARS.issuperset(value):
        raise NegotiationError("parameter value %r is not a token" % value[:40])
    return value


def parse_extensions(header_values: Iterable[str]) -> list[Element]:
    """Every Sec-WebSocket-Extensions field → [(name, [(param, value or None), ...]), ...] in order.

    An element that is malformed is returned as (name or "", None) so the caller can decline it alone.
    """
    elements: list[Element] = []
    for header in header_values:
        try:
            raw_elements = _split_outside_quotes(header, ",")
        except NegotiationError:
            elements.append(("", None))
            continue
        for raw in raw_elements:
            if not raw.strip():
                continue
            elements.append(_parse_element(raw))
    return elements


def _parse_element(raw: str) -> Element:
    try:
        pieces = _split_outside_quotes(raw, ";")
    except NegotiationError:
        return "", None
    name = pieces[0].strip().lower()
    if not name or not TOKEN_CHARS.issuperset(name):
        return "", None
    params: list[tuple[str, str | None]] = []
    for piece in pieces[1:]:
        key, equals, value = piece.partition("=")
        key = key.strip().lower()
        if not key or not TOKEN_CHARS.issuperset(key):
            return name, None
        if equals:
            try:
                params.append((key, _unquote(value.strip())))
            except NegotiationError:
                return name, None
        else:
            params.append((key, None))
    return name, params


def _window_bits(value: str | None, name: str) -> int:
    # RFC 7692 §7.1.2: 1*DIGIT from 8 to 15 with no leading zero (checked as text before int() sees it).
    if value is None or not is_ascii_number(value, 2) or value[0] == "0" or \
            not MIN_WINDOW_BITS <= int(value) <= MAX_WINDOW_BITS:
        raise NegotiationError("%s=%r is not a window size from 8 to 15" % (name, value))
    return int(value)


def _parameters(params: list[tuple[str, str | None]] | None) -> dict[str, int | bool]:
    """The parameters of one permessage-deflate element as a dict; NegotiationError for unknown, duplicate
    or invalid ones. `client_max_window_bits` without a value maps to True."""
    if params is None:
        raise NegotiationError("malformed extension element")
    found: dict[str, int | bool] = {}
    for key, value in params:
        if key not in _PARAMETERS:
            raise NegotiationError("unknown parameter %r" % key[:40])
        if key in found:
            raise NegotiationError("duplicate parameter %s" % key)
        if key in (SERVER_NO_CONTEXT_TAKEOVER, CLIENT_NO_CONTEXT_TAKEOVER):
            if value is not None:
                raise NegotiationError("%s takes no value" % key)
            found[key] = True
        elif key == CLIENT_MAX_WINDOW_BITS and value is None:
            found[key] = True
        else:
            found[key] = _window_bits(value, key)
    return found


# -- server side ---------------------------------------------------------------------------------------------

def accept_offer(header_values: Iterable[str],
                 min_compress_bytes: int = MIN_COMPRESS_BYTES) -> tuple[str, DeflateParams] | None:
    """Pick the first permessage-deflate offer this server can honour (RFC 7692 §7: each offer that has an
    unknown, duplicate or invalid parameter is declined, and the next one tried).

    Returns (the Sec-WebSocket-Extensions value for the response, DeflateParams), or None to decline them all.
    The answer always carries server_no_context_takeover (every message is compressed on its own, so one
    frame serves every client) and client_no_context_takeover (no inflater is kept between a client's messages).
    """
    for name, params in parse_extensions(header_values):
        if name != EXTENSION_NAME:
            continue
        try:
            offer = _parameters(params)
        except NegotiationError:
            continue
        response = [EXTENSION_NAME, SERVER_NO_CONTEXT_TAKEOVER, CLIENT_NO_CONTEXT_TAKEOVER]
        send_bits = offer.get(SERVER_MAX_WINDOW_BITS, MAX_WINDOW_BITS)
        if SERVER_MAX_WINDOW_BITS in offer:
            response.append("%s=%d" % (SERVER_MAX_WINDOW_BITS, send_bits))  # accepted as offered
        # client_max_window_bits in the offer only says the client could take a limit: none is needed, the
        # client's messages are inflated with whatever window it uses (up to 15 bits).
        return "; ".join(response), DeflateParams(send_window_bits=send_bits, receive_window_bits=MAX_WINDOW_BITS,
                                                  receive_no_context_takeover=True,
                                                  min_compress_bytes=min_compress_bytes)
    return None


# -- client side ---------------------------------------------------------------------------------------------

# Our messages are compressed each on its own anyway (client_no_context_takeover: the server need not keep an
# inflater between them), within any window the server asks for (client_max_window_bits).
CLIENT_OFFER = "%s; %s; %s" % (EXTENSION_NAME, CLIENT_NO_CONTEXT_TAKEOVER, CLIENT_MAX_WINDOW_BITS)


def accept_response(header_values: Iterable[str], min_compress_bytes: int = MIN_COMPRESS_BYTES) -> DeflateParams | None:
    """Check the server's answer to CLIENT_OFFER (RFC 7692 §7.1). Returns DeflateParams, None when the server
    declined, and raises NegotiationError when the answer must fail the connection."""
    elements = parse_extensions(header_values)
    if not elements:
        return None
    if len(elements) > 1:
        raise NegotiationError("the server accepted more than one extension")
    name, params = elements[0]
    if name != EXTENSION_NAME:
        raise NegotiationError("the server chose an extension that was not offered")
    answer = _parameters(params)
    client_bits = answer.get(CLIENT_MAX_WINDOW_BITS, MAX_WINDOW_BITS)
    if client_bits is True:
        raise NegotiationError("client_max_window_bits needs a value in a response")
    return DeflateParams(send_window_bits=client_bits,
                         receive_window_bits=answer.get(SERVER_MAX_WINDOW_BITS, MAX_WINDOW_BITS),
                         receive_no_context_takeover=SERVER_NO_CONTEXT_TAKEOVER in answer,
                         min_compress_bytes=min_compress_bytes)


# -- compressing and inflating --------------------------------------------------------------------------------

def compress(payload: bytes, window_bits: int, min_bytes: int = MIN_COMPRESS_BYTES) -> bytes | None:
    """The payload of one compressed message (its own raw deflate stream, the sync flush's tail stripped), or
    None when it goes uncompressed: shorter than `min_bytes`, or an 8-bit window."""
    if len(payload) < min_bytes or window_bits < MIN_COMPRESS_WINDOW_BITS:
        return None
    data = compress_chunk(payload, window_bits)
    return data[:-4]  # a sync flush always ends with the empty stored block's 00 00 ff ff


def compress_chunk(data: bytes, window_bits: int) -> bytes:
    """`data` as a raw deflate chunk that ends on a sync flush: chunks compressed separately and joined by
    `join_chunks` make one valid message (each refers back only inside itself), so a large part shared by many
    messages is compressed once. Only for window_bits >= MIN_COMPRESS_WINDOW_BITS."""
    compressor = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, -window_bits, MEM_LEVEL)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


_MAX_STORED_BLOCK_BYTES = 0xFFFF  # a stored block's LEN field is 16 bits


def stored_chunk(data: bytes) -> bytes:
    """`data` as uncompressed deflate (stored) blocks, joinable like a `compress_chunk` chunk: for the few
    bytes around a shared part, where compressing would cost a compressor and save nothing."""
    out = []
    for start in range(0, max(len(data), 1), _MAX_STORED_BLOCK_BYTES):
        block = data[start:start + _MAX_STORED_BLOCK_BYTES]
        length = len(block)
        # BFINAL 0, BTYPE 00 and padding to the byte boundary (chunks start byte-aligned), then LEN and ~LEN.
        out.append(b"\x00" + length.to_bytes(2, "little") + (length ^ 0xFFFF).to_bytes(2, "little") + block)
    return b"".join(out)


_EMPTY_STORED_BLOCK_HEADER = b"\x00"  # BFINAL 0, BTYPE 00, padding: the receiver's appended tail is its LEN/NLEN


def join_chunks(chunks: Iterable[bytes]) -> bytes:
    """The compressed payload of one message made of `compress_chunk` and `stored_chunk` chunks.

    It ends with the header of an empty stored block, so the 00 00 ff ff the receiver appends completes it:
    a receiver that keeps one inflater across messages (allowed, and Chromium does) stays on a block boundary.
    """
    return b"".join(chunks) + _EMPTY_STORED_BLOCK_HEADER


def can_compress(params: DeflateParams | None) -> bool:
    """True when messages to a peer with these DeflateParams (None: no deflate) may go compressed."""
    return params is not None and params.send_window_bits >= MIN_COMPRESS_WINDOW_BITS


class Inflater:
    """Receiving side of one connection: inflates each compressed message, whole, within a byte budget.

    A message is inflated once all of it has arrived (the connection keeps its compressed bytes meanwhile), so
    no zlib object lives while a peer takes its time; one is kept between messages only when the peer takes
    over context (its next message may refer back).
    """

    __slots__ = ("_params", "_inflater")

    def __init__(self, params: DeflateParams) -> None:
        self._params = params
        self._inflater: zlib._Decompress | None = None

    @property
    def holds_context(self) -> bool:
        return self._inflater is not None

    def inflate(self, data: bytes | bytearray, budget: int) -> bytes:
        """The message compressed in `data` (its payload as sent: the sync flush's tail stripped), at most
        `budget` bytes of it (else MessageTooBig). Bytes after a final block other than the tail this side
        appends are InvalidPayload (RFC 7692 §7.2.2)."""
        inflater = self._inflater or zlib.decompressobj(-self._params.receive_window_bits)
        self._inflater = None  # kept again below only when all went well and the peer takes over context
        try:
            out = inflater.decompress(bytes(data) + _TAIL, budget + 1)
        except zlib.error:
            raise InvalidPayload("compressed message is not valid deflate data")
        if len(out) > budget or inflater.unconsumed_tail:
            raise MessageTooBig(len(out), budget, inflated=True)
        if inflater.eof:  # a block with BFINAL set ended the stream: nothing may follow but our own tail
            if inflater.unused_data not in (b"", _TAIL):
                raise InvalidPayload("bytes after the final block of a compressed message")
        elif not self._params.receive_no_context_takeover:
            self._inflater = inflater
        return out
