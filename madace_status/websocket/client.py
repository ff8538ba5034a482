"""The WebSocket client over asyncio: `connect()` opens a `ClientWebSocket`, which sends the upgrade request,
checks the answer and then runs the protocol (protocol.py) (README, "The WebSocket implementation")."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Iterable

from madace_status.websocket import deflate

if TYPE_CHECKING:
    import ssl
from madace_status.websocket.errors import HandshakeError
from madace_status.websocket.handshake import ClientHandshake, Header
from madace_status.websocket.protocol import HANDSHAKE_TIMEOUT_S, MessageCallback, WebSocket, WebSocketCallback
from madace_status.websocket.states import CLIENT

__all__ = ["CLIENT_MAX_MESSAGE_BYTES", "ClientWebSocket", "connect"]

CLIENT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ClientWebSocket(WebSocket):
    """The client side of one connection."""

    __slots__ = ("handshake", "opened")

    def __init__(self, handshake: ClientHandshake, max_message_bytes: int, on_message: MessageCallback | None,
                 on_close: WebSocketCallback | None) -> None:
        super().__init__(CLIENT, max_message_bytes, on_message, on_close)
        self.handshake = handshake
        self.opened: asyncio.Future[None] = self._loop.create_future()  # done when the handshake is

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport.write(self.handshake.request())

    def _handshake_data(self, data: bytes) -> None:
        try:
            if not self.handshake.feed(data):
                return
        except HandshakeError as error:
            self.transport.abort()
            if not self.opened.done():
                self.opened.set_exception(error)
            return
        self._open(self.handshake.leftover, self.handshake.deflate)

    def _opened(self) -> None:
        if not self.opened.done():
            self.opened.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            try:
                self.handshake.refused()
            except HandshakeError as error:
                self.opened.set_exception(error)
        super().connection_lost(exc)


async def connect(url: str, *, origin: str | None = None, authorization: str | None = None,
                  headers: Iterable[Header] = (), on_message: MessageCallback | None = None,
                  on_close: WebSocketCallback | None = None, max_message_bytes: int = CLIENT_MAX_MESSAGE_BYTES,
                  open_timeout: float = HANDSHAKE_TIMEOUT_S, compression: bool = True,
                  compress_min_bytes: int = deflate.MIN_COMPRESS_BYTES,
                  ssl_context: ssl.SSLContext | None = None) -> ClientWebSocket:
    """Open a WebSocket connection to `url` (ws://host:port/path?query).

    Raises ValueError for a malformed URL, OSError when the TCP connection fails, HandshakeError when the
    server refuses or answers wrongly (its `status` is the HTTP status, 0 for no valid answer), and
    HandshakeError after `open_timeout` seconds without an answer. `compression` offers permessage-deflate.
    A wss:// URL is verified with `ssl_context`, else with the system's certificates (and SSL_CERT_FILE).
    """
    handshake = ClientHandshake(url, origin=origin, authorization=authorization, extra_headers=headers,
                                compression=compression, compress_min_bytes=compress_min_bytes)
    if not handshake.secure:
        ssl_context = None
    elif ssl_context is None:
        import ssl  # only for wss:// (a `status` that never connects does not load it)
        ssl_context = ssl.create_default_context()
    loop = asyncio.get_running_loop()

    async def open_connection() -> ClientWebSocket:
        _, websocket = await loop.create_connection(
            lambda: ClientWebSocket(handshake, max_message_bytes, on_message, on_close),
            handshake.host, handshake.port, ssl=ssl_context)
        try:
            await websocket.opened
        except BaseException:
            websocket.transport.abort()
            raise
        return websocket

    try:
        return await asyncio.wait_for(open_connection(), open_timeout)
    except asyncio.TimeoutError:
        raise HandshakeError("no WebSocket handshake with %s within %.0f s" % (url, open_timeout), status=0)
