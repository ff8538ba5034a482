"""asyncio transport for the sans-I/O core: a WebSocket server (`serve`) and client (`connect`).

Built on `asyncio.Protocol` rather than streams or a task per connection: an idle connection is one small
object, and messages can be handled by a plain callback (`on_message`) in arrival order. A coroutine
`handler(websocket)` reading with `await websocket.recv()` / `async for message in websocket` works too: then
frames are parsed one message at a time, as the reader asks, so a message that came before a protocol error
is read (and can be answered) before the connection fails.

Every frame is written with one `transport.write`. The server closes TCP first once the close handshake is
done; the client waits for it (up to CLOSE_TIMEOUT_S). A protocol error closes with the error's code.

Output budget (server side): a peer's unsent output is bounded. Once it passes the high-water mark
(OUTPUT_HIGH_WATER_BYTES) the server stops parsing what that peer sent and stops reading its socket
(backpressure: a peer that does not read cannot make us answer more); parsing and reading resume once the
output has drained to a quarter of the mark. So the output exceeds the mark by at most one message. A write
that would take a peer already over the mark past OUTPUT_HARD_CAP_BYTES is not made: the connection is closed
with 1008 at once. Received bytes kept unparsed meanwhile are at most one read (256 KiB in asyncio).
"""

import asyncio
import logging
import os

from madace_status.logsafe import escape
from madace_status.websocket import deflate, frames
from madace_status.websocket.connection import (
    CLIENT, CLOSED, OPEN, SERVER, BinaryMessage, CloseReceived, Connection, Pong, TextMessage)
from madace_status.websocket.errors import ConnectionClosed, HandshakeError
from madace_status.websocket.handshake import (
    ClientHandshake, RequestReader, accept_response, check_upgrade_request, refusal_response)
from madace_status.websocket.listener import listening_sockets, start_listening

logger = logging.getLogger("madace_status.websocket")

HANDSHAKE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
SERVER_MAX_MESSAGE_BYTES = 64 * 1024
CLIENT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_CONNECTIONS = 10000
READ_BACKLOG_BYTES = 256 * 1024  # recv() mode: unparsed bytes kept before the socket stops being read
OUTPUT_HIGH_WATER_BYTES = 1024 * 1024  # server: unsent output above which a peer's input is no longer read
OUTPUT_HARD_CAP_BYTES = 4 * 1024 * 1024  # server: unsent output never grown past this once over the mark
OVER_BUDGET_REASON = "output over budget"

_PAUSE_RECV = 1  # why reading is paused (a bit mask): recv() mode, the reader has not taken the last message
_PAUSE_OUTPUT = 2  # backpressure: our unsent output to the peer is over the high-water mark


_NOTHING = object()  # recv() mode: no message waiting


class WebSocket(asyncio.Protocol):
    """One WebSocket connection over an asyncio transport (either role)."""

    # Slots and lazily made futures keep an idle connection small (thousands are held at once).
    __slots__ = ("role", "_max_message_bytes", "_on_message", "_on_close", "_loop", "transport", "connection",
                 "remote_address", "last_received", "_is_closed", "_closed_waiter", "_message", "_message_waiter",
                 "_ping_waiters", "_timer", "_close_timeout", "_write_paused", "_drain_waiters", "_reading_paused",
                 "on_drain", "_hard_cap", "_over_mark_since", "_resume_scheduled")

    def __init__(self, role, max_message_bytes, on_message=None, on_close=None, hard_cap_bytes=None):
        self.role = role
        self._max_message_bytes = max_message_bytes
        self._on_message = on_message
        self._on_close = on_close
        self._loop = asyncio.get_running_loop()
        self.transport = None
        self.connection = None  # the sans-I/O Connection, once the handshake is done
        self.remote_address = None
        self.last_received = self._loop.time()  # loop time of the last bytes from the peer (for heartbeats)
        self._is_closed = False
        self._closed_waiter = None  # made by the first wait_closed()
        self._message = _NOTHING  # recv() mode: the parsed message the reader has not taken yet
        self._message_waiter = None
        self._ping_waiters = None
        self._timer = None
        self._close_timeout = CLOSE_TIMEOUT_S
        self._write_paused = False
        self._drain_waiters = None
        self._reading_paused = 0  # _PAUSE_* bits
        self.on_drain = None  # called with the WebSocket when its write buffer drains below the low-water mark
        # Backpressure and the hard cap (server side; None: neither). See the module docstring.
        self._hard_cap = hard_cap_bytes
        self._over_mark_since = None  # loop time at which the unsent output passed the high-water mark
        self._resume_scheduled = False

    # -- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        self.remote_address = transport.get_extra_info("peername")

    def data_received(self, data):
        self.last_received = self._loop.time()
        self._receive(data)

    def eof_received(self):
        if self.connection is not None:
            self.connection.receive_data(b"")
        if self._timer is None:  # asyncio's close waits for our output to flush: not forever (peer may not read)
            self._timer = self._loop.call_later(self._close_timeout, self._abort)
        return False  # let asyncio close the transport

    def connection_lost(self, exc):
        self._cancel_timer()
        if self.connection is not None and self.connection.state != CLOSED:
            self.connection.receive_data(b"")
        self._is_closed = True
        if self._closed_waiter is not None and not self._closed_waiter.done():
            self._closed_waiter.set_result(None)
        if self._ping_waiters:
            error = self.connection.closed_error() if self.connection is not None else \
                ConnectionClosed(frames.CLOSE_ABNORMAL)
            for waiter in self._ping_waiters.values():
                if not waiter.done():
                    waiter.set_exception(error)
            self._ping_waiters = None
        self._wake_reader()
        self._release_drain_waiters()
        if self._on_close is not None and self.connection is not None:
            self._on_close(self)

    def pause_writing(self):
        self._write_paused = True
        if self._over_mark_since is None:
            self._over_mark_since = self._loop.time()

    def _release_drain_waiters(self):
        if self._drain_waiters:
            for waiter in self._drain_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._drain_waiters = None

    def resume_writing(self):
        self._write_paused = False
        self._over_mark_since = None
        self._release_drain_waiters()
        if self.on_drain is not None:
            self.on_drain(self)
        if self._reading_paused & _PAUSE_OUTPUT and not self._resume_scheduled:
            # Not from inside the transport's write callback: handling input may write, or close, again.
            self._resume_scheduled = True
            self._loop.call_soon(self._resume_input)

    def _resume_input(self):
        """The output drained: handle the input kept unparsed, then read the socket again (unless the output
        passed the mark again meanwhile)."""
        self._resume_scheduled = False
        connection = self.connection
        if self._is_closed or connection is None or self._write_paused:
            return  # closed, or over the mark again: the next resume_writing comes back here
        self.last_received = self._loop.time()  # it was not heard because it was not read: not silent
        if self._on_message is not None:
            if connection.state != CLOSED:
                self._process()
        else:
            self._wake_reader()
        if not self._write_paused:
            self._resume_reading(_PAUSE_OUTPUT)

    def _backpressured(self):
        return self._hard_cap is not None and self._write_paused

    def _pause_reading(self, reason):
        if not self._reading_paused:
            self.transport.pause_reading()
        self._reading_paused |= reason

    def _resume_reading(self, reason):
        if self._reading_paused & reason:
            self._reading_paused &= ~reason
            if not self._reading_paused and not self._is_closed:
                self.transport.resume_reading()

    # -- receiving ----------------------------------------------------------------------------------------

    def _open(self, leftover, deflate_params=None):
        self.connection = Connection(self.role, self._max_message_bytes, deflate_params)
        self._cancel_timer()
        self._opened()
        if leftover:
            self._receive(leftover)

    def _opened(self):
        """Hook for the role: the handshake is done."""

    def _receive(self, data):
        connection = self.connection
        if connection is None:
            self._handshake_data(data)
            return
        connection.receive_data(data)
        if self._on_message is None and self._message is not _NOTHING:
            # The reader has not taken the last message: leave the bytes unparsed (see the module docstring).
            if connection.buffered_bytes > READ_BACKLOG_BYTES:
                self._pause_reading(_PAUSE_RECV)
            return
        if self._backpressured():
            self._pause_reading(_PAUSE_OUTPUT)  # parsed once the output has drained (resume_writing)
            return
        self._process()

    def _process(self):
        """Parse and handle what has arrived; in recv() mode stop after one message."""
        connection = self.connection
        write = self.transport.write
        for event in connection.events():
            kind = type(event)
            if kind is TextMessage or kind is BinaryMessage:
                if self._on_message is not None:
                    try:
                        self._on_message(self, event.data)
                    except Exception as error:  # a bug: never let what a peer sent reach a traceback
                        self._callback_failed("on_message", error)
                else:
                    self._message = event.data
                    self._wake_reader()
                    break
            elif kind is Pong and self._ping_waiters:
                waiter = self._ping_waiters.pop(bytes(event.payload), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(self._loop.time())
            elif kind is CloseReceived:
                logger.debug("close received from %s: %d %s", self.remote_address, event.code, escape(event.reason))
            reply = connection.data_to_send()
            if reply:
                write(reply)
            if self._backpressured():  # the peer does not read what we answer: stop reading what it asks
                self._pause_reading(_PAUSE_OUTPUT)
                break
        reply = connection.data_to_send()  # the failing close, if parsing stopped on an error
        if reply:
            write(reply)
        self._after_receive()

    def _after_receive(self):
        connection = self.connection
        if connection.state == OPEN:
            return
        self._wake_reader()
        if connection.state == CLOSED:
            self._close_handshake_done()
        elif self._timer is None:
            self._timer = self._loop.call_later(self._close_timeout, self._abort)

    def _wake_reader(self):
        waiter = self._message_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self):
        """The next message (str or bytes); raises ConnectionClosed once the connection is closing."""
        if self._on_message is not None:
            raise RuntimeError("messages go to on_message on this connection")
        while True:
            message = self._message
            if message is not _NOTHING:
                self._message = _NOTHING
                self._resume_reading(_PAUSE_RECV)
                return message
            connection = self.connection
            if connection is not None and connection.state != CLOSED and not self._is_closed and \
                    not self._backpressured():
                self._process()  # bytes that arrived while the reader was busy
                if self._message is not _NOTHING:
                    continue
            if connection is None:
                if self._is_closed:
                    raise ConnectionClosed(frames.CLOSE_ABNORMAL, "not connected")
            elif connection.state != OPEN or self._is_closed:
                raise connection.closed_error()
            self._message_waiter = self._loop.create_future()
            try:
                await self._message_waiter
            finally:
                self._message_waiter = None

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration

    # -- sending ------------------------------------------------------------------------------------------

    def send(self, message):
        """Send a text (str) or binary (bytes) message. Never blocks; see `drain()` and `buffered_amount`."""
        self._require_connection()
        if isinstance(message, str):
            frame = self.connection.send_text(message)
        else:
            frame = self.connection.send_binary(message)
        self._write(frame)

    def send_frame(self, frame):
        """Write an already-serialised frame (a broadcast builds one server frame for every recipient)."""
        self._require_connection()
        if self.connection.state != OPEN:
            raise self.connection.closed_error()
        if self._write_paused:
            self._write(frame)
        else:
            self.transport.write(frame)  # under the mark: no budget check (the broadcast's hot path)

    def _write(self, data):
        """Write bytes within the output budget: raises ConnectionClosed(1008) and closes the connection
        instead of taking a peer that is already over the high-water mark past the hard cap."""
        transport = self.transport
        if self._write_paused and self._hard_cap is not None and \
                transport.get_write_buffer_size() + len(data) > self._hard_cap:
            logger.info("closing %s: more than %d bytes of output it does not read", self.remote_address,
                        self._hard_cap)
            self.start_close(frames.CLOSE_POLICY_VIOLATION, OVER_BUDGET_REASON)
            raise ConnectionClosed(frames.CLOSE_POLICY_VIOLATION, OVER_BUDGET_REASON)
        transport.write(data)

    def _callback_failed(self, name, error):
        """A callback raised (a bug): one log line without the exception's text (it may quote what the peer
        sent), and the connection is closed with 1011."""
        trace = error.__traceback__
        while trace is not None and trace.tb_next is not None:
            trace = trace.tb_next
        where = "%s:%d" % (os.path.basename(trace.tb_frame.f_code.co_filename), trace.tb_lineno) if trace else "?"
        logger.error("%s failed for %s: %s at %s", name, self.remote_address, type(error).__name__, where)
        self.start_close(frames.CLOSE_INTERNAL_ERROR, "internal error")

    def _require_connection(self):
        if self.connection is None:
            raise ConnectionClosed(frames.CLOSE_ABNORMAL, "not connected")

    def send_fragments(self, fragments, binary=False):
        """Send one message as several frames, one per item of `fragments`."""
        self._require_connection()
        opcode = frames.OP_BINARY if binary else frames.OP_TEXT
        fragments = list(fragments)
        for index, fragment in enumerate(fragments):
            if isinstance(fragment, str):
                fragment = fragment.encode("utf-8")
            last = index == len(fragments) - 1
            self._write(self.connection.send_fragment(opcode, fragment, last))
            opcode = frames.OP_CONTINUATION

    @property
    def over_mark_since(self):
        """Loop time at which the unsent output passed the high-water mark; None while it is under (or drained
        to the low-water mark since)."""
        return self._over_mark_since

    @property
    def reading_paused(self):
        """True while the peer's socket is not read (backpressure, or recv() mode with a message not taken)."""
        return bool(self._reading_paused)

    @property
    def buffered_amount(self):
        """Bytes written but not yet handed to the kernel."""
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    async def drain(self):
        """Wait until the transport's write buffer is below its high-water mark."""
        if self._write_paused and not self._is_closed:
            waiter = self._loop.create_future()
            if self._drain_waiters is None:
                self._drain_waiters = []
            self._drain_waiters.append(waiter)
            await waiter

    async def ping(self, payload=None):
        """Send a ping and wait for its pong; returns the round-trip time in seconds."""
        self._require_connection()
        payload = os.urandom(4) if payload is None else bytes(payload)
        frame = self.connection.send_ping(payload)  # raises when the connection is not open
        sent_at = self._loop.time()
        self._write(frame)
        waiter = self._loop.create_future()
        if self._ping_waiters is None:
            self._ping_waiters = {}
        self._ping_waiters[payload] = waiter
        answered_at = await waiter
        return answered_at - sent_at

    def send_ping(self, payload=b""):
        """Send a ping without waiting for the pong (heartbeats)."""
        self._require_connection()
        self._write(self.connection.send_ping(payload))

    async def close(self, code=frames.CLOSE_NORMAL, reason="", timeout=CLOSE_TIMEOUT_S):
        """Start (or finish) the closing handshake and wait until the TCP connection is gone."""
        self.start_close(code, reason, timeout)
        await self.wait_closed()

    def start_close(self, code=frames.CLOSE_NORMAL, reason="", timeout=CLOSE_TIMEOUT_S):
        """Send a close frame without waiting; the connection is aborted if the peer does not answer in time."""
        if self.transport is None or self._is_closed:
            return
        if self.connection is None:
            self.transport.abort()
            return
        if self.connection.state == OPEN:
            self.transport.write(self.connection.send_close(code, reason))
            self._close_timeout = timeout
            self._cancel_timer()
            self._timer = self._loop.call_later(timeout, self._abort)
            self._wake_reader()

    async def wait_closed(self):
        if self._is_closed:
            return
        if self._closed_waiter is None:
            self._closed_waiter = self._loop.create_future()
        await asyncio.shield(self._closed_waiter)

    @property
    def closed(self):
        return self._is_closed

    @property
    def open(self):
        return self.connection is not None and self.connection.state == OPEN and not self._is_closed

    @property
    def close_code(self):
        """The code the peer closed with: 1005 no code, 1006 dropped without a close frame, None still open."""
        if self.connection is None:
            return frames.CLOSE_ABNORMAL if self._is_closed else None
        return self.connection.close_code

    @property
    def close_reason(self):
        return self.connection.close_reason if self.connection is not None else ""

    # -- closing ------------------------------------------------------------------------------------------

    def _close_handshake_done(self):
        self._cancel_timer()
        if self.role == SERVER:
            self.transport.close()  # the server closes TCP first (RFC 6455 §7.1.1)
        else:
            self._timer = self._loop.call_later(self._close_timeout, self._abort)

    def _abort(self):
        self._timer = None
        if self.transport is not None:
            self.transport.abort()

    def _cancel_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _handshake_data(self, data):
        raise NotImplementedError


class ServerWebSocket(WebSocket):
    """The server side of one connection: reads the upgrade request, then runs the protocol."""

    __slots__ = ("server", "request", "_reader", "_handler_task")

    def __init__(self, server):
        super().__init__(SERVER, server.max_message_bytes, server.on_message, server.on_close,
                         hard_cap_bytes=server.output_hard_cap_bytes)
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
                 compress_min_bytes=deflate.MIN_COMPRESS_BYTES):
        self.handler = handler
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
                compression=True, compress_min_bytes=deflate.MIN_COMPRESS_BYTES):
    """Listen for WebSocket connections.

    handler(websocket): a coroutine run for each connection (read with `recv()` / `async for`); the
    connection is closed when it returns. Or, without a task per connection: on_connect(websocket),
    on_message(websocket, message) called in arrival order, on_close(websocket).
    process_request(websocket): called with `websocket.request` (path, query, headers, origin) set; raise
    HandshakeError(reason, status) to refuse, or return extra response headers.
    output_high_water_bytes, output_hard_cap_bytes: the output budget of each connection (module docstring).
    compression: accept the first permessage-deflate offer it can honour (see websocket/deflate.py); messages
    shorter than compress_min_bytes are sent uncompressed.
    """
    server = Server(handler, on_connect, on_message, on_close, process_request, max_message_bytes,
                    max_connections, handshake_timeout, output_high_water_bytes, output_hard_cap_bytes,
                    compression, compress_min_bytes)
    if sock is not None:
        sock.listen(backlog)
        sockets = [sock]
    else:
        sockets = await listening_sockets(host, port, backlog)
    # Our own accept loop rather than loop.create_server's: it backs off when out of descriptors (listener.py).
    server._server = await start_listening(sockets, lambda: ServerWebSocket(server), backlog)
    return server


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
