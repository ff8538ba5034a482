"""`status --watch --server http://HOST:PORT`: the sync server's events read as Server-Sent Events from
`/api/events` (README, "Server-Sent Events"), for where WebSockets do not pass. A small client over asyncio
streams: one GET, the response head checked, then `id:`/`data:` fields gathered into messages until a blank line.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Callable, List, Optional, Tuple
from urllib.parse import urlsplit

__all__ = ["HTTP_SCHEMES", "MAX_STREAM_HEAD_BYTES", "MAX_STREAM_LINE_BYTES", "StreamRefused", "events_path",
           "read_event_stream"]

MAX_STREAM_HEAD_BYTES = 16 * 1024  # the response head
MAX_STREAM_LINE_BYTES = 32 * 1024 * 1024  # one data line: a whole snapshot of a large project
HTTP_SCHEMES = ("http", "https")


class StreamRefused(Exception):
    """The server answered the stream's request with an error status (the reason is its JSON `error`)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__("HTTP %d: %s" % (status, reason))
        self.status = status
        self.reason = reason


def events_path(server: str, query: str) -> str:
    """The request target of the stream at `server` (http://HOST:PORT[/prefix]) with `query`."""
    path = urlsplit(server).path.rstrip("/")
    return "%s/api/events%s" % (path, "?" + query if query else "")


async def read_event_stream(server: str, target: str, headers: List[Tuple[str, str]], open_timeout: float,
                            idle_timeout: Callable[[], float], on_message: Callable[[str], None],
                            ssl_context: Optional[ssl.SSLContext] = None) -> None:
    """Read the stream at `target` until it ends (returns), goes silent for `idle_timeout()` seconds
    (asyncio.TimeoutError) or fails (OSError, ValueError); each message's data goes to `on_message`.
    StreamRefused for an answer other than 200 text/event-stream."""
    parts = urlsplit(server)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    assert parts.hostname is not None  # checked by watch.settings.check_server_url
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        parts.hostname, port, ssl=(ssl_context or ssl.create_default_context()) if secure else None,
        limit=MAX_STREAM_LINE_BYTES),
        open_timeout)
    try:
        host = parts.hostname if parts.port is None else "%s:%d" % (parts.hostname, parts.port)
        lines = ["GET %s HTTP/1.1" % target, "Host: %s" % host, "Accept: text/event-stream", "Connection: close"]
        lines += ["%s: %s" % header for header in headers]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), open_timeout)
        if len(head) > MAX_STREAM_HEAD_BYTES:
            raise ValueError("the stream's response head is too large")
        status_line, _, fields = head.decode("latin-1").partition("\r\n")
        status = int(status_line.split(" ", 2)[1])
        if status != 200 or "text/event-stream" not in fields.lower():
            body = await asyncio.wait_for(reader.read(MAX_STREAM_HEAD_BYTES), open_timeout)
            raise StreamRefused(status, _error_of(body))
        body_lines = _Body(reader, _is_chunked(fields))
        data: List[str] = []
        while True:
            line = await asyncio.wait_for(body_lines.readline(), idle_timeout())
            if not line:
                return  # the server closed the stream
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text:
                if data:
                    on_message("\n".join(data))
                    data = []
            elif text.startswith("data:"):
                data.append(text[6:] if text[5:6] == " " else text[5:])  # one space after the colon is not data
            # id: lines are the replica's own position (runId and seq are in each message); comments keep alive
    finally:
        writer.close()


def _is_chunked(fields: str) -> bool:
    """Whether the response head's header fields say the body is in the chunked transfer coding."""
    for line in fields.split("\r\n"):
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "transfer-encoding":
            return value.strip().lower().rsplit(",", 1)[-1].strip() == "chunked"  # chunked is always the last coding
    return False


class _Body:
    """The response body, line by line: as it comes, or decoded from the chunked transfer coding (RFC 9112 §7.1)
    that a proxy speaking HTTP/1.1 to us uses for a stream whose length it cannot know (nginx does)."""

    def __init__(self, reader: asyncio.StreamReader, chunked: bool) -> None:
        self.reader = reader
        self.chunked = chunked
        self.buffer = bytearray()
        self.scanned = 0  # the buffer holds no newline before this: each byte is looked at once
        self.ended = False

    async def readline(self) -> bytes:
        """One line with its newline; what is left without one at the end; b"" at the end."""
        if not self.chunked:
            return await self.reader.readline()
        while True:
            end = self.buffer.find(b"\n", self.scanned)
            if end >= 0:
                line = bytes(self.buffer[:end + 1])
                del self.buffer[:end + 1]
                self.scanned = 0
                return line
            self.scanned = len(self.buffer)
            if self.scanned > MAX_STREAM_LINE_BYTES:
                raise ValueError("a line of the event stream is longer than %d bytes" % MAX_STREAM_LINE_BYTES)
            if self.ended:
                line, self.buffer, self.scanned = bytes(self.buffer), bytearray(), 0
                return line
            chunk = await self._chunk()
            if chunk:
                self.buffer += chunk
            else:
                self.ended = True

    async def _chunk(self) -> bytes:
        """The next chunk's data; b"" for the last chunk or the end of the connection. ValueError when malformed."""
        size_line = await self.reader.readline()
        if not size_line:
            return b""
        size_text = size_line.split(b";", 1)[0].strip()  # a chunk extension is ignored
        if not size_text or len(size_text) > 8 or size_text.strip(b"0123456789abcdefABCDEF"):
            raise ValueError("the event stream's chunked coding is malformed")
        size = int(size_text, 16)
        if size == 0:
            return b""
        data = await self.reader.readexactly(size + 2)  # and the CRLF after it
        return data[:-2]


def _error_of(body: bytes) -> str:
    """The `error` of a JSON error envelope, else the start of the body."""
    import json
    try:
        document = json.loads(body.decode("utf-8"))
        return str(document.get("error") or document)
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace")

