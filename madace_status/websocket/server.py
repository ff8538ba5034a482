"""The WebSocket server over asyncio: `serve()` listens, a `ServerWebSocket` per connection reads the upgrade
request and then runs the protocol (protocol.py), `Server` holds them and closes them all (README, "The WebSocket
implementation")."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Awaitable, Callable, Iterable, Optional

from madace_status.logsafe import escape
from madace_status.websocket import deflate
from madace_status.websocket.errors import ConnectionClosed, HandshakeError, InvalidState
from madace_status.websocket.flow import OUTPUT_HARD_CAP_BYTES, OUTPUT_HIGH_WATER_BYTES, PAUSE_YIELD
from madace_status.websocket.frames import CLOSE_GOING_AWAY
from madace_status.websocket.guard import GuardActions, InboundGuard
from madace_status.websocket.handshake import (Header, Request, RequestReader, accept_response, check_upgrade_request,
                                               refusal_response)
from madace_status.websocket.inbound import InboundLimits
from madace_status.websocket.listener import Listening, listening_sockets, start_listening
from madace_status.websocket.protocol import HANDSHAKE_TIMEOUT_S, MessageCallback, WebSocket, WebSocketCallback
from madace_status.websocket.states import CLOSED, SERVER

__all__ = ["MAX_CONNECTIONS", "SERVER_MAX_MESSAGE_BYTES", "Handler", "ProcessRequest", "Server", "ServerWebSocket",
           "serve"]

logger = logging.getLogger("madace_status.websocket")

SERVER_MAX_MESSAGE_BYTES = 64 * 1024
MAX_CONNECTIONS = 10000

# A coroutine run for each connection; process_request's answer: extra response headers (raise HandshakeError
# to refuse).
Handler = Callable[["ServerWebSocket"], Awaitable[None]]
ProcessRequest = Callable[["ServerWebSocket"], Optional[Iterable[Header]]]


class ServerWebSocket(WebSocket):
    """The server side of one connection: reads the upgrade request, then runs the protocol."""

    __slots__ = ("server", "_request", "_reader", "_handler_task")

    def __init__(self, server: Server) -> None:
        limits = server.inbound_limits
        super().__init__(SERVER, server.max_message_bytes, server.on_message, server.on_close,
                         hard_cap_bytes=server.output_hard_cap_bytes,
                         max_frames_per_message=limits.max_frames_per_message if limits is not None else None,
                         assembly_budget=limits.assembly_budget if limits is not None else None)
        self.server = server
        self._request: Request | None = None
        self._reader: RequestReader | None = RequestReader()
        self._handler_task: asyncio.Task[None] | None = None
        if limits is not None:
            self._guard = self._make_guard(limits, server.on_rate_limited)

    @property
    def request(self) -> Request:
        """The upgrade request (path, query, headers, origin): there from process_request on."""
        if self._request is None:
            raise InvalidState("the upgrade request has not arrived yet")
        return self._request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self.server
        if len(server.connections) >= server.max_connections:
            self._refuse(HandshakeError("too many connections (limit %d)" % server.max_connections, status=503))
            return
        self.transport.set_write_buffer_limits(high=server.output_high_water_bytes)
        server.connections.add(self)
        self._timer = self._loop.call_later(server.handshake_timeout, self._handshake_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        super().connection_lost(exc)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        logger.info("handshake from %s did not complete in %.0f s", self.remote_address, self.server.handshake_timeout)
        self.transport.abort()

    def _handshake_data(self, data: bytes) -> None:
        if self._reader is None:
            return  # refused: the response is on its way and the connection is closing
        try:
            request = self._reader.feed(data)
            if request is None:
                return
            key = check_upgrade_request(request)
            self._request = request
            extra_headers: Iterable[Header] = ()
            if self.server.process_request is not None:
                extra_headers = self.server.process_request(self) or ()
        except HandshakeError as error:
            self._refuse(error)
            return
        except Exception as error:  # a bug (in process_request, say): refuse without a traceback of the request
            self._handshake_failed(error)
            return
        deflate_params = None
        if self.server.compression:
            accepted = deflate.accept_offer(request.headers.get_all("Sec-WebSocket-Extensions"),
                                            self.server.compress_min_bytes)
            if accepted is not None:
                extension_header, deflate_params = accepted
                extra_headers = list(extra_headers) + [("Sec-WebSocket-Extensions", extension_header)]
        self.transport.write(accept_response(key, extra_headers))
        leftover, self._reader = self._reader.leftover, None
        self._open(leftover, deflate_params)

    def _handshake_failed(self, error: Exception) -> None:
        logger.error("handshake from %s failed: %s", self.remote_address, type(error).__name__)
        self._refuse(HandshakeError("internal error", status=500))

    def _refuse(self, error: HandshakeError) -> None:
        logger.info("refused WebSocket handshake from %s: %d %s", self.remote_address, error.status,
                    escape(error.reason))
        self._cancel_timer()
        self._reader = None
        self.transport.write(refusal_response(error.status, error.reason, error.headers))
        self.transport.close()

    def _opened(self) -> None:
        server = self.server
        if server.on_connect is not None:
            try:
                server.on_connect(self)
            except Exception as error:  # a bug: never let what a peer sent reach a traceback
                self._callback_failed("on_connect", error)
                return
        if server.handler is not None:
            self._handler_task = self._loop.create_task(self._run_handler(server.handler))

    async def _run_handler(self, handler: Handler) -> None:
        try:
            await handler(self)
        except ConnectionClosed:
            pass
        except Exception as error:
            self._callback_failed("WebSocket handler", error)
            return
        self.start_close()

    def _make_guard(self, limits: InboundLimits, on_rate_limited: WebSocketCallback | None) -> InboundGuard:
        """The InboundGuard of this connection (inbound.py), handed what it may do to it (see guard.py);
        on_rate_limited is told once per run of messages dropped."""
        def process() -> None:
            if self.connection.state is not CLOSED and not self.flow.backpressured and self._on_message is not None:
                self._process()

        def rate_limited() -> None:
            if on_rate_limited is not None:
                try:
                    on_rate_limited(self)
                except Exception as error:  # a bug: never let what a peer sent reach a traceback
                    self._callback_failed("on_rate_limited", error)

        # The flow control is made with the transport, after this: reached when an action runs.
        actions = GuardActions(pause=lambda: self.flow.pause_reading(PAUSE_YIELD),
                               resume=lambda: self.flow.resume_reading(PAUSE_YIELD), process=process,
                               write=lambda frame: self.flow.write(frame), close_for=self._policy_close,
                               rate_limited=rate_limited, ended=lambda: self.connection.state is CLOSED)
        return InboundGuard(self._loop, limits, actions)


class Server:
    """A listening WebSocket server. Use `await serve(...)` to make one."""

    def __init__(self, handler: Handler | None, on_connect: WebSocketCallback | None,
                 on_message: MessageCallback | None, on_close: WebSocketCallback | None,
                 process_request: ProcessRequest | None, max_message_bytes: int, max_connections: int,
                 handshake_timeout: float, output_high_water_bytes: int = OUTPUT_HIGH_WATER_BYTES,
                 output_hard_cap_bytes: int = OUTPUT_HARD_CAP_BYTES, compression: bool = True,
                 compress_min_bytes: int = deflate.MIN_COMPRESS_BYTES, inbound_limits: InboundLimits | None = None,
                 on_rate_limited: WebSocketCallback | None = None) -> None:
        self.handler = handler
        self.inbound_limits = inbound_limits  # inbound.InboundLimits for every connection, or None
        self.on_rate_limited = on_rate_limited
        self.on_connect = on_connect
        self.on_message = on_message
        self.on_close = on_close
        self.process_request = process_request
        self.max_message_bytes = max_message_bytes
        self.max_connections = max_connections
        self.handshake_timeout = handshake_timeout
        self.output_high_water_bytes = output_high_water_bytes
        self.output_hard_cap_bytes = output_hard_cap_bytes
        self.compression = compression  # accept permessage-deflate offers
        self.compress_min_bytes = compress_min_bytes  # shorter messages are sent uncompressed
        self.connections: set[ServerWebSocket] = set()  # every connection, from TCP accept to TCP close
        self._server: Listening | None = None

    @property
    def sockets(self) -> list[socket.socket]:
        return self._server.sockets if self._server is not None else []

    @property
    def port(self) -> int:
        port: int = self.sockets[0].getsockname()[1]
        return port

    async def adopt(self, sock: socket.socket, received: bytes) -> None:
        """Serve a connection another server accepted (an HTTP server that read its upgrade request, say) exactly
        as one accepted here: the same checks, limits and callbacks; `received` is what was read of it so far."""
        _, protocol = await asyncio.get_running_loop().connect_accepted_socket(  # type: ignore[attr-defined]
            lambda: ServerWebSocket(self), sock)
        if not protocol.transport.is_closing():  # refused at once when over max_connections
            protocol.data_received(received)

    async def close(self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down",
                    timeout: float = 2.0) -> None:
        """Stop accepting, close every connection with `code`, and return within `timeout` seconds."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()  # connections accepted just before are in self.connections now
        pending = list(self.connections)
        for websocket in pending:
            websocket.start_close(code, reason, timeout=timeout)
        if pending:
            await asyncio.wait([asyncio.ensure_future(ws.wait_closed()) for ws in pending], timeout=timeout)
        for websocket in list(self.connections):
            websocket.transport.abort()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


async def serve(handler: Handler | None = None, host: str = "127.0.0.1", port: int = 0, *,
                on_connect: WebSocketCallback | None = None, on_message: MessageCallback | None = None,
                on_close: WebSocketCallback | None = None, process_request: ProcessRequest | None = None,
                max_message_bytes: int = SERVER_MAX_MESSAGE_BYTES, max_connections: int = MAX_CONNECTIONS,
                handshake_timeout: float = HANDSHAKE_TIMEOUT_S, backlog: int = 1024,
                sock: socket.socket | None = None, output_high_water_bytes: int = OUTPUT_HIGH_WATER_BYTES,
                output_hard_cap_bytes: int = OUTPUT_HARD_CAP_BYTES, compression: bool = True,
                compress_min_bytes: int = deflate.MIN_COMPRESS_BYTES, inbound_limits: InboundLimits | None = None,
                on_rate_limited: WebSocketCallback | None = None, listen: bool = True) -> Server:
    """Listen for WebSocket connections (with `listen` false, none: connections come only by `Server.adopt`).

    handler(websocket): a coroutine run for each connection (read with `recv()` / `async for`); the
    connection is closed when it returns. Or, without a task per connection: on_connect(websocket),
    on_message(websocket, message) called in arrival order, on_close(websocket).
    process_request(websocket): called with `websocket.request` (path, query, headers, origin) set; raise
    HandshakeError(reason, status) to refuse, or return extra response headers.
    output_high_water_bytes, output_hard_cap_bytes: the output budget of each connection (flow.py).
    compression: accept the first permessage-deflate offer it can honour (see websocket/deflate.py); messages
    shorter than compress_min_bytes are sent uncompressed.
    inbound_limits: an inbound.InboundLimits (message rate, reassembly deadline, frames per message, the bytes
    all unfinished messages may hold), or None for none of them (an echo test server, say);
    on_rate_limited(websocket) is called once per run of messages dropped over the rate.
    """
    server = Server(handler, on_connect, on_message, on_close, process_request, max_message_bytes,
                    max_connections, handshake_timeout, output_high_water_bytes, output_hard_cap_bytes,
                    compression, compress_min_bytes, inbound_limits, on_rate_limited)
    if not listen:
        return server
    if sock is not None:
        sock.listen(backlog)
        sockets = [sock]
    else:
        sockets = await listening_sockets(host, port, backlog)
    # Our own accept loop rather than loop.create_server's: it backs off when out of descriptors (listener.py).
    server._server = await start_listening(sockets, lambda: ServerWebSocket(server), backlog)
    return server
