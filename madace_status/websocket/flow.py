"""Flow control of one WebSocket connection: the output budget and backpressure (the base of `WebSocket`).

Output budget (server side): a peer's unsent output is bounded. Once it passes the high-water mark
(OUTPUT_HIGH_WATER_BYTES) the server stops parsing what that peer sent and stops reading its socket
(backpressure: a peer that does not read cannot make us answer more); parsing and reading resume once the
output has drained to a quarter of the mark. So the output exceeds the mark by at most one message. A write
that would take a peer already over the mark past OUTPUT_HARD_CAP_BYTES is not made: the connection is closed
with 1008 at once. Received bytes kept unparsed meanwhile are at most one read (256 KiB in asyncio).
"""

import asyncio
import logging

from madace_status.websocket import frames
from madace_status.websocket.errors import ConnectionClosed

logger = logging.getLogger("madace_status.websocket")

OUTPUT_HIGH_WATER_BYTES = 1024 * 1024  # server: unsent output above which a peer's input is no longer read
OUTPUT_HARD_CAP_BYTES = 4 * 1024 * 1024  # server: unsent output never grown past this once over the mark
OVER_BUDGET_REASON = "output over budget"

_PAUSE_RECV = 1  # why reading is paused (a bit mask): recv() mode, the reader has not taken the last message
_PAUSE_OUTPUT = 2  # backpressure: our unsent output to the peer is over the high-water mark
_PAUSE_YIELD = 4  # inbound.YIELD_EVERY_MESSAGES handled from one read: the loop runs the others first
_PAUSE_POLICY = 8  # closed for going past an inbound limit: nothing more of what it sends is read


class FlowControl(asyncio.Protocol):
    """The transport's pause/resume_writing, the output budget and pausing the socket's reads. The subclass
    (`protocol.WebSocket`) provides `_loop`, `transport`, `remote_address`, `_is_closed`, `start_close()` and
    `_resume_input()`."""

    __slots__ = ("_write_paused", "_drain_waiters", "_reading_paused", "on_drain", "_hard_cap", "_over_mark_since",
                 "_resume_scheduled")

    def __init__(self, hard_cap_bytes=None):
        self._write_paused = False
        self._drain_waiters = None
        self._reading_paused = 0  # _PAUSE_* bits
        self.on_drain = None  # called with the WebSocket when its write buffer drains below the low-water mark
        # Backpressure and the hard cap (server side; None: neither). See the module docstring.
        self._hard_cap = hard_cap_bytes
        self._over_mark_since = None  # loop time at which the unsent output passed the high-water mark
        self._resume_scheduled = False

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
