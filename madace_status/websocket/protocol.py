"""asyncio transport for the sans-I/O core: one WebSocket connection, either role (`server.py`, `client.py`)
(README, "The WebSocket implementation").

Built on `asyncio.Protocol`: an idle connection is one small object, and messages go to a plain callback
(`on_message`) in arrival order. Or, without one, a coroutine reads with `await websocket.recv()` / `async for`:
frames are then parsed one message at a time, as the reader asks (waiters.py).

The connection's life is one state, its Connection's (`state`, states.py): CONNECTING from the TCP accept until
the opening handshake is done, then OPEN, LOCAL_CLOSING, CLOSED. The TCP connection ends a little after CLOSED
(`closed`, `wait_closed()`): the server closes it once the close handshake is done, the client waits for that
(up to CLOSE_TIMEOUT_S). Every frame is written with one `transport.write`. The components: `flow` (flow.py:
output budget, backpressure) and a server's InboundGuard (guard.py, inbound.py). A connection closed for going
past an inbound limit (1008) is not read any more: the TCP connection is dropped after POLICY_CLOSE_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Callable, Iterable, cast

from madace_status.logsafe import escape
from madace_status.websocket.connection import Connection
from madace_status.websocket.deflate import DeflateParams
from madace_status.websocket.errors import ConnectionClosed, InvalidState
from madace_status.websocket.events import BinaryMessage, CloseReceived, Pong, TextMessage
from madace_status.websocket.flow import PAUSE_OUTPUT, PAUSE_POLICY, PAUSE_RECV, FlowControl
from madace_status.websocket.frames import (CLOSE_INTERNAL_ERROR, CLOSE_NORMAL, CLOSE_POLICY_VIOLATION, OP_BINARY,
                                            OP_CONTINUATION, OP_TEXT)
from madace_status.websocket.guard import InboundGuard
from madace_status.websocket.inbound import AssemblyBudget
from madace_status.websocket.waiters import Inbox, Message, PingWaiters
from madace_status.websocket.states import CLOSED, CONNECTING, OPEN, SERVER, Role, State

__all__ = [
    "CLOSE_TIMEOUT_S", "HANDSHAKE_TIMEOUT_S", "POLICY_CLOSE_TIMEOUT_S", "RATE_LIMIT_REASON", "READ_BACKLOG_BYTES",
    "Message", "MessageCallback", "WebSocket", "WebSocketCallback",
]

logger = logging.getLogger("madace_status.websocket")

HANDSHAKE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
READ_BACKLOG_BYTES = 256 * 1024  # recv() mode: unparsed bytes kept before the socket stops being read
POLICY_CLOSE_TIMEOUT_S = 1.0  # a peer closed for an inbound limit gets this long for our close frame to leave
RATE_LIMIT_REASON = "messages over the rate limit"

# The application's callbacks, called with the connection (its role's class: a ServerWebSocket on a server).
MessageCallback = Callable[[Any, Message], None]
WebSocketCallback = Callable[[Any], None]


class WebSocket(asyncio.Protocol):
    """One WebSocket connection over an asyncio transport (either role)."""

    # Slots and lazily made futures keep an idle connection small (thousands are held at once).
    __slots__ = ("role", "_on_message", "_on_close", "_loop", "transport", "flow", "connection", "remote_address",
                 "last_received", "_hard_cap", "_closed_waiter", "_inbox", "_pings", "_timer", "_close_timeout",
                 "_guard", "on_drain")

    # Set by connection_made, which asyncio calls before anything else.
    transport: asyncio.Transport
    flow: FlowControl

    def __init__(self, role: Role, max_message_bytes: int, on_message: MessageCallback | None = None,
                 on_close: WebSocketCallback | None = None, hard_cap_bytes: int | None = None,
                 max_frames_per_message: int | None = None, assembly_budget: AssemblyBudget | None = None) -> None:
        self.role = role
        self._on_message = on_message
        self._on_close = on_close
        self._loop = asyncio.get_running_loop()
        self._hard_cap = hard_cap_bytes  # for the flow control made with the transport
        self.remote_address: Any = None  # the transport's "peername"
        self.last_received = self._loop.time()  # loop time of the last bytes from the peer (for heartbeats)
        # The TCP connection's end: made by the first wait_closed(), or done by connection_lost.
        self._closed_waiter: asyncio.Future[None] | None = None
        self._inbox = Inbox(self._loop) if on_message is None else None  # recv() mode's
        self._pings: PingWaiters | None = None  # made by the first ping()
        self._timer: asyncio.TimerHandle | None = None
        self._close_timeout = CLOSE_TIMEOUT_S
        self.on_drain: WebSocketCallback | None = None  # called when the write buffer drains below the low-water mark
        self._guard: InboundGuard | None = None  # a server's inbound limits (server.py, guard.py)
        self.connection = Connection(role, max_message_bytes, None, max_frames_per_message, assembly_budget,
                                     connecting=True)

    # -- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.flow = FlowControl(self._loop, self.transport, self._hard_cap, self.start_close, self._resume_input)
        self.remote_address = transport.get_extra_info("peername")

    def data_received(self, data: bytes) -> None:
        self.last_received = self._loop.time()
        self._receive(data)

    def eof_received(self) -> bool:
        if self.connection.state is not CONNECTING:
            self.connection.receive_data(b"")
        if self._timer is None:  # asyncio's close waits for our output to flush: not forever (peer may not read)
            self._timer = self._loop.call_later(self._close_timeout, self._abort)
        return False  # let asyncio close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._guard is not None:
            self._guard.cancel()
        connection = self.connection
        opened = connection.state is not CONNECTING  # on_connect was called: on_close is too
        if connection.state is not CLOSED:
            connection.receive_data(b"")
        connection.discard_message()  # a message cut short by a close frame or a drop holds nothing
        waiter = self._closed_waiter = self._closed_waiter or self._loop.create_future()
        if not waiter.done():
            waiter.set_result(None)
        if self._pings is not None:
            self._pings.fail(connection.closed_error())
        self._wake_reader()
        self.flow.transport_lost()
        if self._on_close is not None and opened:
            self._on_close(self)

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()
        if self.on_drain is not None:
            self.on_drain(self)

    def _resume_input(self) -> None:
        """The output drained: handle the input kept unparsed, then read the socket again (unless the output
        passed the mark again meanwhile)."""
        state = self.connection.state
        flow = self.flow
        if state is CONNECTING or flow.write_paused:
            return  # over the mark again: the next resume_writing comes back here
        self.last_received = self._loop.time()  # it was not heard because it was not read: not silent
        if self._on_message is not None:
            if state is not CLOSED:
                self._process()
        else:
            self._wake_reader()
        if not flow.write_paused:
            flow.resume_reading(PAUSE_OUTPUT)

    # -- receiving ----------------------------------------------------------------------------------------

    def _open(self, leftover: bytes, deflate_params: DeflateParams | None = None) -> None:
        """The opening handshake is done (with these DeflateParams, if any): the connection is OPEN."""
        self.connection.open(deflate_params)
        self._cancel_timer()
        self._opened()
        if leftover:
            self._receive(leftover)

    def _opened(self) -> None:
        """Hook for the role: the handshake is done."""

    def _receive(self, data: bytes) -> None:
        connection = self.connection
        if connection.state is CONNECTING:
            self._handshake_data(data)
            return
        connection.receive_data(data)
        if self._inbox is not None and self._inbox.message is not None:
            # The reader has not taken the last message: leave the bytes unparsed (see the module docstring).
            if connection.buffered_bytes > READ_BACKLOG_BYTES:
                self.flow.pause_reading(PAUSE_RECV)
            return
        if self.flow.backpressured:
            self.flow.pause_reading(PAUSE_OUTPUT)  # parsed once the output has drained (resume_writing)
            return
        self._process()

    def _process(self) -> None:
        """Parse and handle what has arrived; in recv() mode stop after one message; with inbound limits, take
        each message's token and stop after `yield_every` of them to let the loop run the others."""
        connection = self.connection
        write = self.transport.write
        flow = self.flow
        on_message, inbox = self._on_message, self._inbox
        guard = self._guard
        rated = guard is not None and guard.rated
        yield_every = guard.yield_every if guard is not None else None
        handled = 0
        for event in connection.events():
            kind = type(event)
            if kind is not CloseReceived:
                handled += 1
                if rated and guard is not None and not guard.admit(kind, connection):
                    if guard.over_drop_limit:
                        self._policy_close(RATE_LIMIT_REASON)
                        break
                    if yield_every is not None and handled >= yield_every:
                        guard.yield_to_loop()
                        break
                    continue
            if isinstance(event, (TextMessage, BinaryMessage)):
                if on_message is not None:
                    try:
                        on_message(self, event.data)
                    except Exception as error:  # a bug: never let what a peer sent reach a traceback
                        self._callback_failed("on_message", error)
                elif inbox is not None:
                    inbox.put(event.data)
                    break
            elif isinstance(event, Pong):
                if self._pings is not None:
                    self._pings.answered(bytes(event.payload))
            elif isinstance(event, CloseReceived):
                logger.debug("close received from %s: %d %s", self.remote_address, event.code, escape(event.reason))
            reply = connection.data_to_send()
            if reply:
                write(reply)
            if flow.backpressured:  # the peer does not read what we answer: stop reading what it asks
                flow.pause_reading(PAUSE_OUTPUT)
                break
            if yield_every is not None and handled >= yield_every and guard is not None:
                guard.yield_to_loop()
                break
        reply = connection.data_to_send()  # the failing close, if parsing stopped on an error
        if reply:
            write(reply)
        self._after_receive()

    def _after_receive(self) -> None:
        connection = self.connection
        if self._guard is not None:
            self._guard.watch_assembly(connection)
        state = connection.state
        if state is OPEN:
            return
        self._wake_reader()
        if state is CLOSED:
            self._close_handshake_done()
        elif self._timer is None:
            failure = connection.failure
            if failure is not None and failure.close_code == CLOSE_POLICY_VIOLATION:
                self.flow.pause_reading(PAUSE_POLICY)  # past an inbound limit: what it sends now is not read
                self._close_timeout = POLICY_CLOSE_TIMEOUT_S
            self._timer = self._loop.call_later(self._close_timeout, self._abort)

    # -- inbound limits (inbound.py, guard.py; a server's) ------------------------------------------------

    def _policy_close(self, reason: str) -> None:
        """Close with 1008 for an inbound limit: our close frame goes out, nothing more of the peer's is read,
        and the TCP connection is dropped after POLICY_CLOSE_TIMEOUT_S."""
        logger.info("closing %s: %s", self.remote_address, reason)
        self.flow.pause_reading(PAUSE_POLICY)
        self.start_close(CLOSE_POLICY_VIOLATION, reason, timeout=POLICY_CLOSE_TIMEOUT_S)
        self.connection.discard_message()

    def _wake_reader(self) -> None:
        if self._inbox is not None:
            self._inbox.wake()

    async def recv(self) -> Message:
        """The next message (str or bytes); raises ConnectionClosed once the connection is closing."""
        inbox = self._inbox
        if inbox is None:
            raise InvalidState("messages go to on_message on this connection")
        while True:
            message = inbox.take()
            if message is not None:
                self.flow.resume_reading(PAUSE_RECV)
                return message
            connection = self.connection
            state = connection.state
            if state is not CLOSED and state is not CONNECTING and not self.flow.backpressured:
                self._process()  # bytes that arrived while the reader was busy
                if inbox.message is not None:
                    continue
                state = connection.state
            if state is not OPEN and state is not CONNECTING:
                raise connection.closed_error()
            await inbox.wait()

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration

    # -- sending ------------------------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        """Send a text (str) or binary (bytes) message. Never blocks; see `drain()` and `buffered_amount`."""
        if isinstance(message, str):
            frame = self.connection.send_text(message)
        else:
            frame = self.connection.send_binary(message)
        self.flow.write(frame)

    def send_frame(self, frame: bytes) -> None:
        """Write an already-serialised frame (a broadcast builds one server frame for every recipient)."""
        connection = self.connection
        if connection.state is not OPEN:
            raise connection.not_open_error()
        flow = self.flow
        if flow.write_paused:
            flow.write(frame)
        else:
            self.transport.write(frame)  # under the mark: no budget check (the broadcast's hot path)

    def _callback_failed(self, name: str, error: Exception) -> None:
        """A callback raised (a bug): one log line without the exception's text (it may quote what the peer
        sent), and the connection is closed with 1011."""
        trace = error.__traceback__
        while trace is not None and trace.tb_next is not None:
            trace = trace.tb_next
        where = "%s:%d" % (os.path.basename(trace.tb_frame.f_code.co_filename), trace.tb_lineno) if trace else "?"
        logger.error("%s failed for %s: %s at %s", name, self.remote_address, type(error).__name__, where)
        self.start_close(CLOSE_INTERNAL_ERROR, "internal error")

    def send_fragments(self, fragments: Iterable[str | bytes], binary: bool = False) -> None:
        """Send one message as several frames, one per item of `fragments`."""
        connection = self.connection
        if connection.state is CONNECTING:
            raise connection.not_open_error()
        pieces = [piece.encode("utf-8") if isinstance(piece, str) else piece for piece in fragments]
        for index, piece in enumerate(pieces):
            opcode = OP_CONTINUATION if index else OP_BINARY if binary else OP_TEXT
            self.flow.write(connection.send_fragment(opcode, piece, index == len(pieces) - 1))

    async def ping(self, payload: bytes | None = None) -> float:
        """Send a ping and wait for its pong; returns the round-trip time in seconds."""
        payload = os.urandom(4) if payload is None else bytes(payload)
        frame = self.connection.send_ping(payload)  # raises when the connection is not open
        sent_at = self._loop.time()
        self.flow.write(frame)
        if self._pings is None:
            self._pings = PingWaiters(self._loop)
        answered_at = await self._pings.expect(payload)
        return answered_at - sent_at

    def send_ping(self, payload: bytes = b"") -> None:
        """Send a ping without waiting for the pong (heartbeats)."""
        self.flow.write(self.connection.send_ping(payload))

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "", timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Start (or finish) the closing handshake and wait until the TCP connection is gone."""
        self.start_close(code, reason, timeout)
        await self.wait_closed()

    def start_close(self, code: int = CLOSE_NORMAL, reason: str = "", timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Send a close frame without waiting; the connection is aborted if the peer does not answer in time.
        Before the opening handshake is done, the TCP connection is simply aborted."""
        connection = self.connection
        state = connection.state
        if state is CONNECTING:
            self.transport.abort()
        elif state is OPEN:
            self.transport.write(connection.send_close(code, reason))
            self._close_timeout = timeout
            self._cancel_timer()
            self._timer = self._loop.call_later(timeout, self._abort)
            self._wake_reader()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is gone."""
        if self._closed_waiter is None:
            self._closed_waiter = self._loop.create_future()
        await asyncio.shield(self._closed_waiter)

    # -- what it is now -----------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.connection.state

    @property
    def closed(self) -> bool:
        """True once the TCP connection is gone (a little after `state` is CLOSED)."""
        waiter = self._closed_waiter
        return waiter is not None and waiter.done()

    @property
    def open(self) -> bool:
        return self.connection.state is OPEN

    @property
    def close_code(self) -> int | None:
        """The code the peer closed with: 1005 no code, 1006 dropped without a close frame, None still open."""
        return self.connection.close_code

    @property
    def close_reason(self) -> str:
        return self.connection.close_reason

    @property
    def over_mark_since(self) -> float | None:
        """Loop time the unsent output passed the high-water mark (None under it, or drained since)."""
        return self.flow.over_mark_since

    @property
    def reading_paused(self) -> bool:
        """True while the peer's socket is not read (backpressure, or recv() mode with a message not taken)."""
        return self.flow.reading_paused

    @property
    def buffered_amount(self) -> int:
        """Bytes written but not yet handed to the kernel."""
        return self.transport.get_write_buffer_size()

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        await self.flow.drain()

    # -- closing ------------------------------------------------------------------------------------------

    def _close_handshake_done(self) -> None:
        self._cancel_timer()
        if self.role is SERVER:
            self.transport.close()  # the server closes TCP first (RFC 6455 §7.1.1)
        else:
            self._timer = self._loop.call_later(self._close_timeout, self._abort)

    def _abort(self) -> None:
        self._timer = None
        self.transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _handshake_data(self, data: bytes) -> None:
        raise NotImplementedError
