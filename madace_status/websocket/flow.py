"""Flow control of one WebSocket connection: the output budget, backpressure and the reasons its socket is not
read (README, "The WebSocket implementation"). A component: protocol.WebSocket holds one as `flow`, hands it
the transport's pause_writing/resume_writing and what it may do to the connection (close it; handle the input
kept unparsed once the output drained), and writes through it.

Output budget (server side): a peer's unsent output is bounded. Once it passes the high-water mark
(OUTPUT_HIGH_WATER_BYTES) the server stops parsing what that peer sent and stops reading its socket
(backpressure: a peer that does not read cannot make us answer more); parsing and reading resume once the
output has drained to a quarter of the mark. So the output exceeds the mark by at most one message. A write
that would take a peer already over the mark past OUTPUT_HARD_CAP_BYTES is not made: the connection is closed
with 1008 at once. Received bytes kept unparsed meanwhile are at most one read (256 KiB in asyncio).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from madace_status.websocket.errors import ConnectionClosed
from madace_status.websocket.frames import CLOSE_POLICY_VIOLATION

__all__ = [
    "OUTPUT_HARD_CAP_BYTES", "OUTPUT_HIGH_WATER_BYTES", "OVER_BUDGET_REASON", "PAUSE_OUTPUT", "PAUSE_POLICY",
    "PAUSE_RECV", "PAUSE_YIELD", "FlowControl",
]

logger = logging.getLogger("madace_status.websocket")

OUTPUT_HIGH_WATER_BYTES = 1024 * 1024  # server: unsent output above which a peer's input is no longer read
OUTPUT_HARD_CAP_BYTES = 4 * 1024 * 1024  # server: unsent output never grown past this once over the mark
OVER_BUDGET_REASON = "output over budget"

# Why reading is paused (bits: reading resumes once none is left).
PAUSE_RECV = 1  # recv() mode: the reader has not taken the last message
PAUSE_OUTPUT = 2  # backpressure: our unsent output to the peer is over the high-water mark
PAUSE_YIELD = 4  # inbound.YIELD_EVERY_MESSAGES handled from one read: the loop runs the others first
PAUSE_POLICY = 8  # closed for going past an inbound limit: nothing more of what it sends is read


class FlowControl:
    """The output budget and the paused reads of one connection over `transport`. `hard_cap_bytes` None: no
    backpressure and no cap (a client). `close(code, reason)` starts the connection's closing handshake;
    `resume_input()` handles the input kept unparsed under backpressure (called soon after the output drained)."""

    __slots__ = ("_loop", "_transport", "hard_cap_bytes", "_close", "_resume_input", "write_paused",
                 "over_mark_since", "_reading_paused", "_drain_waiters", "_resume_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, hard_cap_bytes: int | None,
                 close: Callable[[int, str], None], resume_input: Callable[[], None]) -> None:
        self._loop = loop
        self._transport = transport
        self.hard_cap_bytes = hard_cap_bytes
        self._close = close
        self._resume_input = resume_input
        self.write_paused = False  # the transport's buffer is over its high-water mark (read, not written, outside)
        # Loop time at which the unsent output passed the high-water mark; None while it is under (or drained to
        # the low-water mark since). Read, not written, outside.
        self.over_mark_since: float | None = None
        self._reading_paused = 0  # PAUSE_* bits
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self._resume_scheduled = False

    # -- writing ----------------------------------------------------------------------------------------------

    def pause_writing(self) -> None:
        """The transport's buffer passed its high-water mark (asyncio.Protocol.pause_writing)."""
        self.write_paused = True
        if self.over_mark_since is None:
            self.over_mark_since = self._loop.time()

    def resume_writing(self) -> None:
        """The transport's buffer drained to its low-water mark (asyncio.Protocol.resume_writing): drain() returns,
        and input held back by backpressure is handled soon."""
        self.write_paused = False
        self.over_mark_since = None
        self._release_drain_waiters()
        if self._reading_paused & PAUSE_OUTPUT and not self._resume_scheduled:
            # Not from inside the transport's write callback: handling input may write, or close, again.
            self._resume_scheduled = True
            self._loop.call_soon(self._resumed)

    def _resumed(self) -> None:
        self._resume_scheduled = False
        self._resume_input()

    def transport_lost(self) -> None:
        """The TCP connection is gone: nothing waits for a drain that will not come."""
        self.write_paused = False
        self._release_drain_waiters()

    def _release_drain_waiters(self) -> None:
        if self._drain_waiters:
            for waiter in self._drain_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._drain_waiters = None

    @property
    def backpressured(self) -> bool:
        """True while the peer's input must not be parsed: its unsent output is over the mark (server side)."""
        return self.hard_cap_bytes is not None and self.write_paused

    def write(self, data: bytes) -> None:
        """Write bytes within the output budget: raises ConnectionClosed(1008) and closes the connection
        instead of taking a peer that is already over the high-water mark past the hard cap."""
        transport = self._transport
        if self.write_paused and self.hard_cap_bytes is not None and \
                transport.get_write_buffer_size() + len(data) > self.hard_cap_bytes:
            logger.info("closing %s: more than %d bytes of output it does not read",
                        transport.get_extra_info("peername"), self.hard_cap_bytes)
            self._close(CLOSE_POLICY_VIOLATION, OVER_BUDGET_REASON)
            raise ConnectionClosed(CLOSE_POLICY_VIOLATION, OVER_BUDGET_REASON)
        transport.write(data)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self.write_paused:
            waiter = self._loop.create_future()
            if self._drain_waiters is None:
                self._drain_waiters = []
            self._drain_waiters.append(waiter)
            await waiter

    # -- reading ----------------------------------------------------------------------------------------------

    def pause_reading(self, reason: int) -> None:
        """Stop reading the socket for `reason` (a PAUSE_* bit), on top of any other reason already in force."""
        if not self._reading_paused:
            self._transport.pause_reading()
        self._reading_paused |= reason

    def resume_reading(self, reason: int) -> None:
        """`reason` no longer holds; the socket is read again once no reason is left (a transport already gone
        ignores it)."""
        if self._reading_paused & reason:
            self._reading_paused &= ~reason
            if not self._reading_paused:
                self._transport.resume_reading()

    def reading_paused_for(self, reason: int) -> bool:
        return bool(self._reading_paused & reason)

    @property
    def reading_paused(self) -> bool:
        """True while the peer's socket is not read, for whatever reason."""
        return bool(self._reading_paused)
