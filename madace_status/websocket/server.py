"""The WebSocket server over asyncio: `serve()` listens, a `ServerWebSocket` per connection reads the upgrade
request and then runs the protocol (protocol.py), `Server` holds them and closes them all."""

import asyncio
import logging

from madace_status.logsafe import escape
from madace_status.websocket import deflate, frames
from madace_status.websocket.connection import SERVER
from madace_status.websocket.errors import ConnectionClosed, HandshakeError
from madace_status.websocket.flow import OUTPUT_HARD_CAP_BYTES, OUTPUT_HIGH_WATER_BYTES
from madace_status.websocket.handshake import RequestReader, accept_response, check_upgrade_request, refusal_response
from madace_status.websocket.listener import listening_sockets, start_listening
from madace_status.websocket.protocol import HANDSHAKE_TIMEOUT_S, WebSocket

logger = logging.getLogger("madace_status.websocket")

SERVER_MAX_MESSAGE_BYTES = 64 * 1024
MAX_CONNECTIONS = 10000


class ServerWebSocket(WebSocket):
    """The server side of one connection: reads the upgrade request, then runs the protocol."""

    __slots__ = ("server", "request", "_reader", "_handler_task")

    def __init__(self, server):
        super().__init__(SERVER, server.max_message_bytes, server.on_message, server.on_close,
                         hard_cap_bytes=server.output_hard_cap_bytes, inbound_limits=server.inbound_limits,
                         on_rate_limited=server.on_rate_limited)
        self.server = server
        self.request = None
        self._reader = RequestReader()
        self._handler_task = None

    def connection_made(self, transport):
        super().connection_made(transport)
        server = self.server
        if len(server.connections) >= server.max_connections:
            self._refuse(HandshakeError("too many connections (limit %d)" % server.max_connections, status=503))
            return
        transport.set_write_buffer_limits(high=server.output_high_water_bytes)
        server.connections.add(self)
        self._timer = self._loop.call_later(server.handshake_timeout, self._handshake_timed_out)

    def connection_lost(self, exc):
        self.server.connections.discard(self)
        super().connection_lost(exc)

    def _handshake_timed_out(self):
        self._timer = None
        logger.info("handshake from %s did not complete in %.0f s", self.remote_address, self.server.handshake_timeout)
        self.transport.abort()

    def _handshake_data(self, data):
        if self._reader is None:
            return  # refused: the response is on its way and the connection is closing
        try:
            request = self._reader.feed(data)
            if request is None:
                return
            key = check_upgrade_request(request)
            self.request = request
            extra_headers = ()
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

    def _handshake_failed(self, error):
        logger.error("handshake from %s failed: %s", self.remote_address, type(error).__name__)
        self._refuse(HandshakeError("internal error", status=500))

    def _refuse(self, error):
        logger.info("refused WebSocket handshake from %s: %d %s", self.remote_address, error.status,
                    escape(error.reason))
        self._cancel_timer()
        self._reader = None
        self.transport.write(refusal_response(error.status, error.reason, error.headers))
        self.transport.close()

    def _opened(self):
        server = self.server
        if server.on_connect is not None:
            try:
                server.on_connect(self)
            except Exception as error:  # a bug: never let what a peer sent reach a traceback
                self._callback_failed("on_connect", error)
                return
        if server.handler is not None:
            self._handler_task = self._loop.create_task(self._run_handler())

    async def _run_handler(self):
        try:
            await self.server.handler(self)
        except ConnectionClosed:
            pass
        except Exception as error:
            self._callback_failed("WebSocket handler", error)
            return
        self.start_close()


class Server:
    """A listening WebSocket server. Use `await serve(...)` to make one."""

    def __init__(self, handler, on_connect, on_message, on_close, process_request, max_message_bytes,
                 max_connections, handshake_timeout, output_high_water_bytes=OUTPUT_HIGH_WATER_BYTES,
                 output_hard_cap_bytes=OUTPUT_HARD_CAP_BYTES, compression=True,
                 compress_min_bytes=deflate.MIN_COMPRESS_BYTES, inbound_limits=None, on_rate_limited=None):
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
        self.connections = set()  # every connection, from TCP accept to TCP close
        self._server = None

    @property
    def sockets(self):
        return self._server.sockets if self._server is not None else ()

    @property
    def port(self):
        return self.sockets[0].getsockname()[1]

    async def close(self, code=frames.CLOSE_GOING_AWAY, reason="server shutting down", timeout=2.0):
        """Stop accepting, close every connection with `code`, and return within `timeout` seconds."""
        self._server.close()
        await self._server.wait_closed()  # connections accepted just before are in self.connections now
        pending = list(self.connections)
        for websocket in pending:
            websocket.start_close(code, reason, timeout=timeout)
        if pending:
            await asyncio.wait([asyncio.ensure_future(ws.wait_closed()) for ws in pending], timeout=timeout)
        for websocket in list(self.connections):
            websocket.transport.abort()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()


async def serve(handler=None, host="127.0.0.1", port=0, *, on_connect=None, on_message=None, on_close=None,
                process_request=None, max_message_bytes=SERVER_MAX_MESSAGE_BYTES, max_connections=MAX_CONNECTIONS,
                handshake_timeout=HANDSHAKE_TIMEOUT_S, backlog=1024, sock=None,
                output_high_water_bytes=OUTPUT_HIGH_WATER_BYTES, output_hard_cap_bytes=OUTPUT_HARD_CAP_BYTES,
                compression=True, compress_min_bytes=deflate.MIN_COMPRESS_BYTES, inbound_limits=None,
                on_rate_limited=None):
    """Listen for WebSocket connections.

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
    if sock is not None:
        sock.listen(backlog)
        sockets = [sock]
    else:
        sockets = await listening_sockets(host, port, backlog)
    # Our own accept loop rather than loop.create_server's: it backs off when out of descriptors (listener.py).
    server._server = await start_listening(sockets, lambda: ServerWebSocket(server), backlog)
    return server
