"""asyncio transport for the sans-I/O core: one WebSocket connection, either role (`server.py`, `client.py`).

Built on `asyncio.Protocol` rather than streams or a task per connection: an idle connection is one small
object, and messages can be handled by a plain callback (`on_message`) in arrival order. A coroutine
`handler(websocket)` reading with `await websocket.recv()` / `async for message in websocket` works too: then
frames are parsed one message at a time, as the reader asks, so a message that came before a protocol error
is read (and can be answered) before the connection fails.

Every frame is written with one `transport.write`. The server closes TCP first once the close handshake is
done; the client waits for it (up to CLOSE_TIMEOUT_S). A protocol error closes with the error's code.
The output budget and backpressure are in flow.py; a server's inbound limits (message rate, yielding to the
loop, reassembly deadline, frames per message, the shared budget of unfinished messages) in inbound.py. A
connection closed for going past one of those (1008) is not read any more: the close frame goes out and the
TCP connection is dropped after POLICY_CLOSE_TIMEOUT_S, whatever the peer sends meanwhile.
"""

import asyncio
import logging
import os
import types

from madace_status.logsafe import escape
from madace_status.websocket import frames
from madace_status.websocket.connection import (
    CLOSED, OPEN, SERVER, BinaryMessage, CloseReceived, Connection, Pong, TextMessage)
from madace_status.websocket.errors import ConnectionClosed
from madace_status.websocket.flow import _PAUSE_OUTPUT, _PAUSE_POLICY, _PAUSE_RECV, _PAUSE_YIELD, FlowControl
from madace_status.websocket.guard import InboundGuard

logger = logging.getLogger("madace_status.websocket")

HANDSHAKE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
READ_BACKLOG_BYTES = 256 * 1024  # recv() mode: unparsed bytes kept before the socket stops being read
POLICY_CLOSE_TIMEOUT_S = 1.0  # a peer closed for an inbound limit gets this long for our close frame to leave
RATE_LIMIT_REASON = "messages over the rate limit"

_NOTHING = object()  # recv() mode: no message waiting


class WebSocket(FlowControl):
    """One WebSocket connection over an asyncio transport (either role)."""

    # Slots and lazily made futures keep an idle connection small (thousands are held at once).
    __slots__ = ("role", "_max_message_bytes", "_on_message", "_on_close", "_loop", "transport", "connection",
                 "remote_address", "last_received", "_is_closed", "_closed_waiter", "_message", "_message_waiter",
                 "_ping_waiters", "_timer", "_close_timeout", "_guard")

    def __init__(self, role, max_message_bytes, on_message=None, on_close=None, hard_cap_bytes=None,
                 inbound_limits=None, on_rate_limited=None):
        super().__init__(hard_cap_bytes)
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
        # A server's inbound limits (guard.py); on_rate_limited is told once per run of messages dropped.
        self._guard = self._make_guard(inbound_limits, on_rate_limited) if inbound_limits is not None else None

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
        if self._guard is not None:
            self._guard.cancel()
        if self.connection is not None:
            if self.connection.state != CLOSED:
                self.connection.receive_data(b"")
            self.connection.discard_message()  # a message cut short by a close frame or a drop holds nothing
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

    # -- receiving ----------------------------------------------------------------------------------------

    def _open(self, leftover, deflate_params=None):
        if self._guard is None:
            self.connection = Connection(self.role, self._max_message_bytes, deflate_params)
        else:
            limits = self._guard.limits
            self.connection = Connection(self.role, self._max_message_bytes, deflate_params,
                                         limits.max_frames_per_message, limits.assembly_budget)
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
        """Parse and handle what has arrived; in recv() mode stop after one message; with inbound limits, take
        each message's token and stop after `yield_every` of them to let the loop run the others."""
        connection = self.connection
        write = self.transport.write
        guard = self._guard
        rated = guard is not None and guard.rated
        yield_every = guard.yield_every if guard is not None else None
        handled = 0
        for event in connection.events():
            kind = type(event)
            if kind is not CloseReceived:
                handled += 1
                if rated and not guard.admit(kind, connection):
                    if guard.over_drop_limit:
                        self._policy_close(RATE_LIMIT_REASON)
                        break
                    if yield_every is not None and handled >= yield_every:
                        guard.yield_to_loop()
                        break
                    continue
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
            if yield_every is not None and handled >= yield_every:
                guard.yield_to_loop()
                break
        reply = connection.data_to_send()  # the failing close, if parsing stopped on an error
        if reply:
            write(reply)
        self._after_receive()

    def _after_receive(self):
        connection = self.connection
        if self._guard is not None:
            self._guard.watch_assembly(connection)
        if connection.state == OPEN:
            return
        self._wake_reader()
        if connection.state == CLOSED:
            self._close_handshake_done()
        elif self._timer is None:
            if connection.failure is not None and connection.failure.close_code == frames.CLOSE_POLICY_VIOLATION:
                self._pause_reading(_PAUSE_POLICY)  # past an inbound limit: what it sends now is not read
                self._close_timeout = POLICY_CLOSE_TIMEOUT_S
            self._timer = self._loop.call_later(self._close_timeout, self._abort)

    # -- inbound limits (inbound.py, guard.py) ------------------------------------------------------------

    def _make_guard(self, limits, on_rate_limited):
        """The InboundGuard of this connection, handed what it may do to it (see guard.py)."""
        def process():
            if self.connection.state != CLOSED and not self._backpressured() and self._on_message is not None:
                self._process()

        def rate_limited():
            if on_rate_limited is not None:
                try:
                    on_rate_limited(self)
                except Exception as error:  # a bug: never let what a peer sent reach a traceback
                    self._callback_failed("on_rate_limited", error)

        actions = types.SimpleNamespace(pause=lambda: self._pause_reading(_PAUSE_YIELD),
                                        resume=lambda: self._resume_reading(_PAUSE_YIELD), write=self._write,
                                        close_for=self._policy_close, process=process, rate_limited=rate_limited,
                                        closed=lambda: self._is_closed or self.connection is None)
        return InboundGuard(self._loop, limits, actions)

    def _policy_close(self, reason):
        """Close with 1008 for an inbound limit: our close frame goes out, nothing more of the peer's is read,
        and the TCP connection is dropped after POLICY_CLOSE_TIMEOUT_S."""
        logger.info("closing %s: %s", self.remote_address, reason)
        self._pause_reading(_PAUSE_POLICY)
        self.start_close(frames.CLOSE_POLICY_VIOLATION, reason, timeout=POLICY_CLOSE_TIMEOUT_S)
        if self.connection is not None:
            self.connection.discard_message()

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
