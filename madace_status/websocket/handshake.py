"""RFC 6455 §4 opening handshake, both sides, sans-I/O.

Server: `RequestReader` collects the upgrade request (with the size limits), `check_upgrade_request` validates
it and `accept_response` builds the 101; a refusal is a `HandshakeError`, turned into a real HTTP response
by `refusal_response`. Client: `ClientHandshake` builds the request and validates the server's answer.
(README, "The WebSocket implementation")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import Iterable, Iterator, Tuple
from urllib.parse import parse_qs, urlsplit

from madace_status.websocket import deflate
from madace_status.websocket.errors import HandshakeError
from madace_status.websocket.syntax import TOKEN_CHARS, is_ascii_number

__all__ = [
    "MAX_HEAD_BYTES", "MAX_HEADERS", "MAX_LINE_BYTES", "MAX_REFUSAL_BODY_BYTES", "WEBSOCKET_VERSION",
    "ClientHandshake", "Headers", "Request", "RequestReader", "accept_key", "accept_response",
    "check_upgrade_request", "refusal_response",
]

Header = Tuple[str, str]

MAX_LINE_BYTES = 8 * 1024  # request line, status line and each header line
MAX_HEADERS = 100
MAX_HEAD_BYTES = 64 * 1024  # a whole request head (kept for the connection's life): 100 full 8 KiB lines are not
MAX_REFUSAL_BODY_BYTES = 4096  # how much of a refusal's body the client keeps for its error message
WEBSOCKET_VERSION = "13"
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_STATUS_REASONS = {
    101: "Switching Protocols", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 426: "Upgrade Required", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 503: "Service Unavailable",
}


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2 step 5.4)."""
    digest = hashlib.sha1(key.encode("ascii") + _ACCEPT_GUID).digest()
    return base64.b64encode(digest).decode("ascii")


class Headers:
    """HTTP header fields in arrival order, looked up case-insensitively."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[Header] = ()) -> None:
        self.items = list(items)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.items if key.lower() == name]

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def tokens(self, name: str) -> list[str]:
        """The comma-separated tokens of every `name` field, lower-cased."""
        return [token.strip().lower() for value in self.get_all(name) for token in value.split(",") if token.strip()]

    def __contains__(self, name: str) -> bool:
        return bool(self.get_all(name))

    def __iter__(self) -> Iterator[Header]:
        return iter(self.items)

    def __repr__(self) -> str:
        return "Headers(%r)" % (self.items,)


def _parse_header_block(block: bytes, max_headers: int) -> tuple[str, Headers]:
    """Split a header block (without its final blank line) into the start line and Headers."""
    lines = block.split(b"\r\n")
    if len(lines) - 1 > max_headers:
        raise HandshakeError("more than %d header fields" % max_headers, status=431)
    items = []
    for raw in lines[1:]:
        if len(raw) > MAX_LINE_BYTES:
            raise HandshakeError("a header line is longer than %d bytes" % MAX_LINE_BYTES, status=431)
        line = raw.decode("latin-1")
        if line[:1] in (" ", "\t"):
            raise HandshakeError("obsolete line folding in header fields", status=400)
        name, colon, value = line.partition(":")
        if not colon or not name or not TOKEN_CHARS.issuperset(name):
            raise HandshakeError("malformed header line %r" % line[:80], status=400)
        items.append((name, value.strip(" \t")))
    if len(lines[0]) > MAX_LINE_BYTES:
        raise HandshakeError("the request line is longer than %d bytes" % MAX_LINE_BYTES, status=431)
    return lines[0].decode("latin-1"), Headers(items)


class _HeaderBlockReader:
    """Accumulates bytes until the blank line that ends an HTTP header block, enforcing the line limits
    while the block is still arriving (so a never-ending header cannot grow the buffer without bound). Each
    byte is looked at a bounded number of times, however the block is cut into reads (one byte at a time
    included): the search goes on from where the last one stopped."""

    def __init__(self, max_headers: int) -> None:
        self._buffer = bytearray()
        self._max_headers = max_headers
        self._scanned = 0  # bytes searched for line ends so far (less the 3 a CRLFCRLF could straddle)
        self._lines = 0  # complete lines so far
        self._line_start = 0  # where the line being received starts
        self.leftover = b""  # bytes received after the header block (the first frames, or a body)

    def feed_block(self, data: bytes) -> bytes | None:
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end > MAX_HEAD_BYTES or (end < 0 and len(buffer) > MAX_HEAD_BYTES):
            raise HandshakeError("the request head is larger than %d bytes" % MAX_HEAD_BYTES, status=431)
        if end < 0:
            position = buffer.find(b"\r\n", max(0, self._scanned - 1))
            while position >= 0:
                self._lines += 1
                self._line_start = position + 2
                position = buffer.find(b"\r\n", position + 2)
            self._scanned = len(buffer)
            tail_length = len(buffer) - self._line_start
            if buffer.endswith(b"\r"):
                tail_length -= 1  # a read that ended between CR and LF: the CR is not part of the line
            if tail_length > MAX_LINE_BYTES:
                raise HandshakeError("a request or header line is longer than %d bytes" % MAX_LINE_BYTES, status=431)
            if self._lines > self._max_headers + 1:
                raise HandshakeError("more than %d header fields" % self._max_headers, status=431)
            return None
        block = bytes(buffer[:end])
        self.leftover = bytes(buffer[end + 4:])
        self._buffer = bytearray()
        self._scanned = self._lines = self._line_start = 0
        return block


class Request:
    """A parsed upgrade request, handed to the server's caller for its own checks (path, origin, token…)."""

    __slots__ = ("method", "target", "version", "headers", "path", "query")

    def __init__(self, method: str, target: str, version: str, headers: Headers) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        parts = urlsplit(target)
        self.path = parts.path or "/"
        self.query = parse_qs(parts.query, keep_blank_values=True)

    def query_value(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`."""
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def origin(self) -> str | None:
        return self.headers.get("Origin")

    def __repr__(self) -> str:
        return "Request(%s %s)" % (self.method, self.target)


class RequestReader:
    """Collects one upgrade request: `feed(data)` returns a Request once the header block is complete,
    None while more bytes are needed, and raises HandshakeError (431/400) on a malformed or oversized one."""

    def __init__(self, max_headers: int = MAX_HEADERS) -> None:
        self._reader = _HeaderBlockReader(max_headers)
        self._max_headers = max_headers

    @property
    def leftover(self) -> bytes:
        return self._reader.leftover

    def feed(self, data: bytes) -> Request | None:
        block = self._reader.feed_block(data)
        if block is None:
            return None
        start_line, headers = _parse_header_block(block, self._max_headers)
        parts = start_line.split(" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise HandshakeError("malformed request line %r" % start_line[:80], status=400)
        method, target, version = parts
        if not version.startswith("HTTP/"):
            raise HandshakeError("malformed request line %r" % start_line[:80], status=400)
        try:
            return Request(method, target, version, headers)
        except ValueError:  # urlsplit: "Invalid IPv6 URL" for a target such as //[x
            raise HandshakeError("malformed request target", status=400)


def check_upgrade_request(request: Request) -> str:
    """Validate a WebSocket upgrade request (RFC 6455 §4.2.1); returns its Sec-WebSocket-Key.

    Raises HandshakeError: 400 with the reason, or 426 (with `Sec-WebSocket-Version: 13`) for another version.
    """
    headers = request.headers
    if request.method != "GET":
        raise HandshakeError("the upgrade request must use GET, not %s" % request.method[:20], status=400)
    if request.version != "HTTP/1.1":
        raise HandshakeError("the upgrade request must be HTTP/1.1, not %s" % request.version[:20], status=400)
    hosts = headers.get_all("Host")
    if len(hosts) != 1 or not hosts[0]:
        raise HandshakeError("exactly one Host header is required", status=400)
    if "websocket" not in headers.tokens("Upgrade"):
        raise HandshakeError("missing 'Upgrade: websocket'", status=400)
    if "upgrade" not in headers.tokens("Connection"):
        raise HandshakeError("missing 'Connection: Upgrade'", status=400)
    versions = headers.get_all("Sec-WebSocket-Version")
    if not versions:
        raise HandshakeError("missing Sec-WebSocket-Version", status=426,
                             headers=[("Sec-WebSocket-Version", WEBSOCKET_VERSION)])
    if versions != [WEBSOCKET_VERSION]:
        raise HandshakeError("unsupported Sec-WebSocket-Version %s (this server speaks 13)" % ", ".join(versions)[:40],
                             status=426, headers=[("Sec-WebSocket-Version", WEBSOCKET_VERSION)])
    keys = headers.get_all("Sec-WebSocket-Key")
    if len(keys) != 1:
        raise HandshakeError("exactly one Sec-WebSocket-Key header is required", status=400)
    key = keys[0]
    try:
        decoded = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        decoded = b""
    if len(decoded) != 16:
        raise HandshakeError("Sec-WebSocket-Key must be 16 bytes in base64", status=400)
    return key


def _response_bytes(status: int, headers: Iterable[Header], body: bytes = b"") -> bytes:
    lines = ["HTTP/1.1 %d %s" % (status, _STATUS_REASONS.get(status, "Error"))]
    lines.extend("%s: %s" % item for item in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def accept_response(key: str, extra_headers: Iterable[Header] = ()) -> bytes:
    """The 101 Switching Protocols response for a validated request's key."""
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(key))]
    headers.extend(extra_headers)
    return _response_bytes(101, headers)


def refusal_response(status: int, reason: str, headers: Iterable[Header] = ()) -> bytes:
    """A complete HTTP error response carrying `reason` as its plain-text body; the connection closes after."""
    body = (reason + "\n").encode("utf-8")
    all_headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                   ("Connection", "close")]
    all_headers.extend(headers)
    return _response_bytes(status, all_headers, body)


class ClientHandshake:
    """Client side: `request()` gives the bytes to send; `feed(data)` returns True once a valid 101 arrived
    (then `leftover` holds any frame bytes that came with it), False while more bytes are needed, and raises
    HandshakeError naming what was wrong otherwise."""

    def __init__(self, url: str, origin: str | None = None, authorization: str | None = None,
                 extra_headers: Iterable[Header] = (), max_headers: int = MAX_HEADERS, compression: bool = True,
                 compress_min_bytes: int = deflate.MIN_COMPRESS_BYTES) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError("WebSocket URL must start with ws:// or wss://: %r" % url)
        if not parts.hostname:
            raise ValueError("WebSocket URL has no host: %r" % url)
        self.secure = parts.scheme == "wss"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.secure else 80)  # ValueError for a bad port
        self.resource = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        default_port = 443 if self.secure else 80
        host = "[%s]" % self.host if ":" in self.host else self.host
        self.host_header = host if self.port == default_port else "%s:%d" % (host, self.port)
        self.key = base64.b64encode(os.urandom(16)).decode("ascii")
        self._headers = [("Host", self.host_header), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                         ("Sec-WebSocket-Key", self.key), ("Sec-WebSocket-Version", WEBSOCKET_VERSION)]
        if origin:
            self._headers.append(("Origin", origin))
        if authorization:
            self._headers.append(("Authorization", authorization))
        if compression:
            self._headers.append(("Sec-WebSocket-Extensions", deflate.CLIENT_OFFER))
        self._compression = compression
        self._compress_min_bytes = compress_min_bytes
        self.deflate: deflate.DeflateParams | None = None  # the DeflateParams the server accepted, once the 101 arrived
        self._headers.extend(extra_headers)
        self._reader = _HeaderBlockReader(max_headers)
        self._max_headers = max_headers
        # (status, status line, headers, body so far) while reading a refusal's body
        self._refusal: tuple[int, str, Headers, bytearray] | None = None
        self.response_headers: Headers | None = None

    @property
    def leftover(self) -> bytes:
        return self._reader.leftover

    def request(self) -> bytes:
        lines = ["GET %s HTTP/1.1" % self.resource] + ["%s: %s" % item for item in self._headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def feed(self, data: bytes) -> bool:
        if self._refusal is not None:
            return self._collect_refusal_body(data)
        try:
            block = self._reader.feed_block(data)
        except HandshakeError as error:
            raise HandshakeError("invalid handshake response: %s" % error.reason, status=0)
        if block is None:
            return False
        try:
            status_line, headers = _parse_header_block(block, self._max_headers)
        except HandshakeError as error:
            raise HandshakeError("invalid handshake response: %s" % error.reason, status=0)
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or len(parts[1]) != 3 or \
                not is_ascii_number(parts[1], 3):
            raise HandshakeError("invalid handshake response: status line %r" % status_line[:80], status=0)
        status = int(parts[1])
        self.response_headers = headers
        if status != 101:
            self._refusal = (status, status_line, headers, bytearray())
            return self._collect_refusal_body(self._reader.leftover)
        self._check_accept(headers)
        return True

    def _collect_refusal_body(self, data: bytes) -> bool:
        assert self._refusal is not None  # set by feed() before it calls here
        status, status_line, headers, body = self._refusal
        body += data
        length = headers.get("Content-Length")
        wanted = int(length) if length and is_ascii_number(length, 18) else MAX_REFUSAL_BODY_BYTES
        if len(body) >= min(wanted, MAX_REFUSAL_BODY_BYTES):
            self.refused()
        return False

    def refused(self) -> None:
        """Raise the HandshakeError for a refusal (also called when the server closes during its body)."""
        if self._refusal is None:
            raise HandshakeError("connection closed before the handshake response arrived", status=0)
        status, status_line, headers, body = self._refusal
        text = bytes(body[:MAX_REFUSAL_BODY_BYTES]).decode("utf-8", "replace").strip()
        reason = "server refused the WebSocket upgrade: %s" % status_line.split(" ", 1)[1]
        if text:
            reason += ": " + text.splitlines()[0][:200]
        raise HandshakeError(reason, status=status, headers=headers.items)

    def _check_accept(self, headers: Headers) -> None:
        if "websocket" not in headers.tokens("Upgrade"):
            raise HandshakeError("invalid handshake response: missing 'Upgrade: websocket'", status=101)
        if "upgrade" not in headers.tokens("Connection"):
            raise HandshakeError("invalid handshake response: missing 'Connection: Upgrade'", status=101)
        accepts = headers.get_all("Sec-WebSocket-Accept")
        if accepts != [accept_key(self.key)]:
            raise HandshakeError("invalid handshake response: wrong Sec-WebSocket-Accept %r" % ", ".join(accepts)[:60],
                                 status=101)
        if "Sec-WebSocket-Extensions" in headers:
            if not self._compression:
                raise HandshakeError("invalid handshake response: the server chose an extension that was not offered",
                                     status=101)
            try:
                self.deflate = deflate.accept_response(headers.get_all("Sec-WebSocket-Extensions"),
                                                       self._compress_min_bytes)
            except deflate.NegotiationError as error:
                raise HandshakeError("invalid handshake response: Sec-WebSocket-Extensions: %s" % error, status=101)
        if "Sec-WebSocket-Protocol" in headers:
            raise HandshakeError("invalid handshake response: the server chose a subprotocol that was not offered",
                                 status=101)
