"""Helpers for the interop tests: run a coroutine with a deadline, speak raw HTTP, and a raw WebSocket peer
written independently of the package (so a bug in its framing cannot hide a bug in the package's)."""

import asyncio
import base64
import hashlib
import os
import struct

TEST_TIMEOUT_S = 20.0  # a hung test fails instead of hanging the run
WAIT_S = 5.0  # how long any single awaited condition may take
MIB = 1024 * 1024
ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def run(coroutine_function, timeout=TEST_TIMEOUT_S):
    """Run `coroutine_function()` in a fresh event loop; fail if it takes longer than `timeout` seconds."""
    async def main():
        return await asyncio.wait_for(coroutine_function(), timeout)
    return asyncio.run(main())


async def within(awaitable, timeout=WAIT_S):
    return await asyncio.wait_for(awaitable, timeout)


def websockets_options(**overrides):
    """Options for the `websockets` library: no compression (we negotiate none), no keepalive pings."""
    options = {"compression": None, "ping_interval": None}
    options.update(overrides)
    return options


def url(port, path="/"):
    return "ws://127.0.0.1:%d%s" % (port, path)


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + ACCEPT_GUID).digest()).decode("ascii")


def upgrade_request(port, key=None, method="GET", version="13", extra_lines=(), omit=()):
    """The bytes of a WebSocket upgrade request; `omit` drops header names, `extra_lines` adds raw lines."""
    key = base64.b64encode(os.urandom(16)).decode("ascii") if key is None else key
    headers = [("Host", "127.0.0.1:%d" % port), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    lines = ["%s / HTTP/1.1" % method]
    lines += ["%s: %s" % (name, value) for name, value in headers if name not in omit]
    lines += list(extra_lines)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpResponse:
    def __init__(self, raw):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split(" ")[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def __repr__(self):
        return "HttpResponse(%r, %r, %r)" % (self.status_line, self.headers, self.body)


async def http_exchange(port, request):
    """Send raw request bytes; return the server's whole answer (read to EOF) as an HttpResponse."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        raw = await within(reader.read())
    finally:
        writer.close()
    return HttpResponse(raw)


def frame_bytes(opcode, payload=b"", fin=True, rsv=0, mask=True):
    """One WebSocket frame; `mask` True for a client frame (random key), False for a server frame."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))


def close_frame_payload(code, reason=""):
    return struct.pack("!H", code) + reason.encode("utf-8")


class RawPeer:
    """A WebSocket endpoint over asyncio streams that does exactly what a test tells it, nothing more."""

    def __init__(self, reader, writer, masks):
        self.reader = reader
        self.writer = writer
        self.masks = masks  # True on the client side

    @classmethod
    async def connect(cls, port):
        """Open a TCP connection and complete the opening handshake as a client."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        writer.write(upgrade_request(port, key=key))
        head = await within(reader.readuntil(b"\r\n\r\n"))
        response = HttpResponse(head)
        assert response.status == 101, response
        assert response.headers["sec-websocket-accept"] == accept_for(key)
        return cls(reader, writer, masks=True)

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=None):
        self.writer.write(frame_bytes(opcode, payload, fin, rsv, self.masks if mask is None else mask))

    async def read_frame(self):
        """(fin, opcode, payload) of the next frame; unmasks a masked one."""
        first, second = await within(self.reader.readexactly(2))
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await within(self.reader.readexactly(2)))
        elif length == 127:
            (length,) = struct.unpack("!Q", await within(self.reader.readexactly(8)))
        key = await within(self.reader.readexactly(4)) if second & 0x80 else None
        payload = await within(self.reader.readexactly(length))
        if key is not None:
            payload = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
        return bool(first & 0x80), first & 0x0F, payload

    async def read_close(self):
        """The (code, reason) of the next frame, which must be a close frame."""
        fin, opcode, payload = await self.read_frame()
        assert opcode == 0x8, "expected a close frame, got opcode %d %r" % (opcode, payload[:40])
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        return code, payload[2:].decode("utf-8")

    async def read_eof(self, timeout=WAIT_S):
        """Wait until the peer closes TCP; returns the bytes that came before the EOF."""
        try:
            return await within(self.reader.read(), timeout)
        except ConnectionResetError:
            return b""

    def abort(self):
        """Drop TCP without a close frame."""
        self.writer.transport.abort()

    def close(self):
        self.writer.close()


async def raw_websocket_server(on_peer):
    """A bare asyncio server that completes the opening handshake, then hands a server-side RawPeer to
    `on_peer(peer)` (a coroutine). Returns the asyncio Server; its port is `sockets[0].getsockname()[1]`."""
    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = HttpResponse(b"HTTP/1.1 000 x\r\n" + head.split(b"\r\n", 1)[1]).headers["sec-websocket-key"]
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n" % accept_for(key)).encode("ascii"))
        try:
            await on_peer(RawPeer(reader, writer, masks=False))
        except asyncio.CancelledError:
            pass  # the test is over and its loop is shutting down
        finally:
            writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)
