"""The WebSocket client over asyncio: `connect()` opens a `ClientWebSocket`, which sends the upgrade request,
checks the answer and then runs the protocol (protocol.py)."""

import asyncio

from madace_status.websocket import deflate
from madace_status.websocket.connection import CLIENT
from madace_status.websocket.errors import HandshakeError
from madace_status.websocket.handshake import ClientHandshake
from madace_status.websocket.protocol import HANDSHAKE_TIMEOUT_S, WebSocket

CLIENT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ClientWebSocket(WebSocket):
    """The client side of one connection."""

    __slots__ = ("handshake", "opened")

    def __init__(self, handshake, max_message_bytes, on_message, on_close):
        super().__init__(CLIENT, max_message_bytes, on_message, on_close)
        self.handshake = handshake
        self.opened = self._loop.create_future()

    def connection_made(self, transport):
        super().connection_made(transport)
        transport.write(self.handshake.request())

    def _handshake_data(self, data):
        try:
            if not self.handshake.feed(data):
                return
        except HandshakeError as error:
            self.transport.abort()
            if not self.opened.done():
                self.opened.set_exception(error)
            return
        self._open(self.handshake.leftover, self.handshake.deflate)

    def _opened(self):
        if not self.opened.done():
            self.opened.set_result(None)

    def connection_lost(self, exc):
        if not self.opened.done():
            try:
                self.handshake.refused()
            except HandshakeError as error:
                self.opened.set_exception(error)
        super().connection_lost(exc)


async def connect(url, *, origin=None, authorization=None, headers=(), on_message=None, on_close=None,
                  max_message_bytes=CLIENT_MAX_MESSAGE_BYTES, open_timeout=HANDSHAKE_TIMEOUT_S, compression=True,
                  compress_min_bytes=deflate.MIN_COMPRESS_BYTES):
    """Open a WebSocket connection to `url` (ws://host:port/path?query).

    Raises ValueError for a malformed URL, OSError when the TCP connection fails, HandshakeError when the
    server refuses or answers wrongly (its `status` is the HTTP status, 0 for no valid answer), and
    HandshakeError after `open_timeout` seconds without an answer. `compression` offers permessage-deflate.
    """
    handshake = ClientHandshake(url, origin=origin, authorization=authorization, extra_headers=headers,
                                compression=compression, compress_min_bytes=compress_min_bytes)
    ssl_context = None
    if handshake.secure:
        import ssl
        ssl_context = ssl.create_default_context()
    loop = asyncio.get_running_loop()

    async def open_connection():
        _, websocket = await loop.create_connection(
            lambda: ClientWebSocket(handshake, max_message_bytes, on_message, on_close),
            handshake.host, handshake.port, ssl=ssl_context)
        try:
            await websocket.opened
        except BaseException:
            if websocket.transport is not None:
                websocket.transport.abort()
            raise
        return websocket

    try:
        return await asyncio.wait_for(open_connection(), open_timeout)
    except asyncio.TimeoutError:
        raise HandshakeError("no WebSocket handshake with %s within %.0f s" % (url, open_timeout), status=0)
