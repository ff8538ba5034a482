"""A server connection's inbound limits over asyncio (what they are and why: inbound.py): the message rate's
bucket and the pong held over it, yielding to the loop, and the reassembly deadline. A component the
connection (protocol.WebSocket) holds and hands what it may do — pause or resume reading, handle what has
arrived again, write a frame, close for a limit, tell the application — so nothing here reaches into it.
"""

from madace_status.websocket.connection import OPEN, Ping, Pong
from madace_status.websocket.errors import ConnectionClosed
from madace_status.websocket.ratelimit import TokenBucket


class InboundGuard:
    """The inbound limits of one connection. `actions`: pause() and resume() reading for a yield, process() what
    has arrived, write(frame), close_for(reason), rate_limited() (the application's notice) and closed() (True
    once the connection ended)."""

    __slots__ = ("_loop", "limits", "_actions", "_budget", "drops", "_held_pong", "_pong_timer", "_assembly_timer",
                 "_yielding")

    def __init__(self, loop, limits, actions):
        self._loop = loop
        self.limits = limits
        self._actions = actions
        self._budget = None  # the message rate's TokenBucket, made at the first message
        self.drops = 0  # messages dropped in a row over the rate
        self._held_pong = None  # the pong of the last ping over the rate, sent when a token comes
        self._pong_timer = None
        self._assembly_timer = None  # closes the connection when a message is not complete in time
        self._yielding = False

    @property
    def rated(self):
        return self.limits.rate_per_s is not None

    @property
    def yield_every(self):
        return self.limits.yield_every or None

    @property
    def over_drop_limit(self):
        limit = self.limits.close_after_drops
        return limit is not None and self.drops > limit

    # -- the message rate ---------------------------------------------------------------------------------

    def admit(self, kind, connection):
        """Take a token for one message; False when it is over the rate: then it is dropped, or for a ping its
        pong (already queued by the connection) is held, and only the last ping's is sent when a token comes."""
        budget = self._budget
        if budget is None:
            budget = self._budget = TokenBucket(self.limits.burst, 1.0 / self.limits.rate_per_s)
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

    def _send_held_pong(self, connection):
        self._pong_timer = None
        pong, budget = self._held_pong, self._budget
        if pong is None or self._actions.closed() or connection.state != OPEN:
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

    def yield_to_loop(self):
        """Stop reading this peer until the loop has run everything else once; then go on."""
        if not self._yielding:
            self._yielding = True
            self._actions.pause()
            self._loop.call_soon(self._go_on)

    def _go_on(self):
        self._yielding = False
        if self._actions.closed():
            return
        self._actions.process()
        if not self._yielding:
            self._actions.resume()

    # -- the reassembly deadline --------------------------------------------------------------------------

    def watch_assembly(self, connection):
        """Start the deadline of a message that began arriving; stop it once the message is done."""
        if connection.assembling and connection.state == OPEN:
            if self._assembly_timer is None and self.limits.assembly_timeout_s is not None:
                self._assembly_timer = self._loop.call_later(self.limits.assembly_timeout_s,
                                                             self._assembly_timed_out, connection)
        elif self._assembly_timer is not None:
            self._assembly_timer.cancel()
            self._assembly_timer = None

    def _assembly_timed_out(self, connection):
        self._assembly_timer = None
        if connection.assembling:
            self._actions.close_for("message not completed within %g s" % self.limits.assembly_timeout_s)

    def cancel(self):
        """The connection ended: no timer of it may fire."""
        for timer in (self._pong_timer, self._assembly_timer):
            if timer is not None:
                timer.cancel()
        self._pong_timer = self._assembly_timer = None
