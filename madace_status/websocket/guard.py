"""A server connection's inbound limits over asyncio (what they are and why: inbound.py): the message rate's
bucket and the pong held over it, yielding to the loop, and the reassembly deadline. A component the
connection (protocol.WebSocket) holds and hands what it may do (GuardActions) — pause or resume reading, handle
what has arrived again, write a frame, close for a limit, tell the application — so nothing here reaches into it.
(README, "The WebSocket implementation")
"""

from __future__ import annotations

import asyncio
from typing import Callable, NamedTuple

from madace_status.websocket.connection import Connection
from madace_status.websocket.errors import ConnectionClosed
from madace_status.websocket.events import Ping, Pong
from madace_status.websocket.inbound import InboundLimits
from madace_status.websocket.ratelimit import TokenBucket
from madace_status.websocket.states import OPEN

__all__ = ["GuardActions", "InboundGuard"]


class GuardActions(NamedTuple):
    """What an InboundGuard may do to its connection."""

    pause: Callable[[], None]  # stop reading for a yield
    resume: Callable[[], None]  # read again after it
    process: Callable[[], None]  # handle what has arrived and was left unparsed
    write: Callable[[bytes], None]  # write a frame (within the output budget: may raise ConnectionClosed)
    close_for: Callable[[str], None]  # close with 1008 for going past a limit (the reason)
    rate_limited: Callable[[], None]  # the application's notice: messages are being dropped
    ended: Callable[[], bool]  # True once the connection is CLOSED


class InboundGuard:
    """The inbound limits of one connection; `actions` is what it may do to the connection."""

    __slots__ = ("_loop", "limits", "_actions", "_budget", "drops", "_held_pong", "_pong_timer", "_assembly_timer",
                 "_yielding")

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: InboundLimits, actions: GuardActions) -> None:
        self._loop = loop
        self.limits = limits
        self._actions = actions
        self._budget: TokenBucket | None = None  # the message rate's TokenBucket, made at the first message
        self.drops = 0  # messages dropped in a row over the rate
        self._held_pong: bytes | None = None  # the pong of the last ping over the rate, sent when a token comes
        self._pong_timer: asyncio.TimerHandle | None = None
        self._assembly_timer: asyncio.TimerHandle | None = None  # closes the connection when a message is late
        self._yielding = False

    @property
    def rated(self) -> bool:
        return self.limits.rate_per_s is not None

    @property
    def yield_every(self) -> int | None:
        return self.limits.yield_every or None

    @property
    def over_drop_limit(self) -> bool:
        limit = self.limits.close_after_drops
        return limit is not None and self.drops > limit

    # -- the message rate ---------------------------------------------------------------------------------

    def admit(self, kind: type, connection: Connection) -> bool:
        """Take a token for one message; False when it is over the rate: then it is dropped, or for a ping its
        pong (already queued by the connection) is held, and only the last ping's is sent when a token comes."""
        budget = self._budget
        if budget is None:
            rate_per_s = self.limits.rate_per_s
            if rate_per_s is None:  # not rated (the caller asks only when `rated`)
                return True
            budget = self._budget = TokenBucket(self.limits.burst, 1.0 / rate_per_s)
        now = self._loop.time()
        if budget.take(now):
            self.drops = 0
            return True
        self.drops += 1
        if kind is Ping:
            self._held_pong = connection.data_to_send()  # the automatic pong, held (replacing an older one)
            if self._pong_timer is None:
                self._pong_timer = self._loop.call_later(budget.wait_s(now), self._send_held_pong, connection)
        elif self.drops == 1 and kind is not Pong:
            self._actions.rate_limited()
        return False

    def _send_held_pong(self, connection: Connection) -> None:
        self._pong_timer = None
        pong, budget = self._held_pong, self._budget
        if pong is None or budget is None or self._actions.ended() or connection.state is not OPEN:
            return
        now = self._loop.time()
        if not budget.take(now):
            self._pong_timer = self._loop.call_later(budget.wait_s(now), self._send_held_pong, connection)
            return
        self._held_pong = None
        try:
            self._actions.write(pong)
        except ConnectionClosed:
            pass

    # -- yielding to the loop -----------------------------------------------------------------------------

    def yield_to_loop(self) -> None:
        """Stop reading this peer until the loop has run everything else once; then go on."""
        if not self._yielding:
            self._yielding = True
            self._actions.pause()
            self._loop.call_soon(self._go_on)

    def _go_on(self) -> None:
        self._yielding = False
        if self._actions.ended():
            return
        self._actions.process()
        if not self._yielding:
            self._actions.resume()

    # -- the reassembly deadline --------------------------------------------------------------------------

    def watch_assembly(self, connection: Connection) -> None:
        """Start the deadline of a message that began arriving; stop it once the message is done."""
        if connection.assembling and connection.state is OPEN:
            timeout_s = self.limits.assembly_timeout_s
            if self._assembly_timer is None and timeout_s is not None:
                self._assembly_timer = self._loop.call_later(timeout_s, self._assembly_timed_out, connection,
                                                             timeout_s)
        elif self._assembly_timer is not None:
            self._assembly_timer.cancel()
            self._assembly_timer = None

    def _assembly_timed_out(self, connection: Connection, timeout_s: float) -> None:
        self._assembly_timer = None
        if connection.assembling:
            self._actions.close_for("message not completed within %g s" % timeout_s)

    def cancel(self) -> None:
        """The connection ended: no timer of it may fire."""
        for timer in (self._pong_timer, self._assembly_timer):
            if timer is not None:
                timer.cancel()
        self._pong_timer = self._assembly_timer = None
