"""What a server connection's peer may make the server spend, sans-I/O: the limits a server gives its
connections (`InboundLimits`), and the bytes held in unfinished incoming messages across all of them
(`AssemblyBudget`). The asyncio layer (protocol.py) applies them; `serve(inbound_limits=…)` opts in.

- **Message rate**: every message a peer sends (text, binary, ping, pong) takes a token of a per-connection
  bucket, `burst` back to back and then `rate_per_s` a second. Over it, data messages are dropped (the server's
  `on_rate_limited` callback is told once per run of drops, so it can say so), a ping's pong is held and only
  the last one is sent when a token comes (RFC 6455 §5.5.3 allows answering the most recent ping only), and a
  peer that goes on past `close_after_drops` drops in a row is closed with 1008.
- **Fairness**: one read's messages are handled at most `yield_every` at a time; then the connection stops
  reading and the loop runs everything else before it goes on, so one fast peer cannot hold the loop.
- **Reassembly**: a message that arrives in several frames (fragmented, compressed, or one large frame in
  pieces) must be complete within `assembly_timeout_s` of its first byte and in at most
  `max_frames_per_message` frames; else 1008. Compressed fragments are kept as they came and inflated once the
  message is complete, so what a peer makes the server hold is the bytes it sent, never an inflater's window
  for a few bytes. Across all connections, unfinished messages hold at most `assembly_budget_bytes`: the
  connection asking for more is closed with 1008.

(README, "The WebSocket implementation")
"""

from __future__ import annotations

__all__ = [
    "ASSEMBLY_BUDGET_BYTES", "ASSEMBLY_TIMEOUT_S", "CLOSE_AFTER_DROPS", "MAX_FRAMES_PER_MESSAGE", "MESSAGE_BURST",
    "MESSAGE_RATE_PER_S", "YIELD_EVERY_MESSAGES", "AssemblyBudget", "InboundLimits",
]

MESSAGE_RATE_PER_S = 20.0  # sustained: the dashboard sends one message every 20 s, `status --watch` a handful
MESSAGE_BURST = 60  # back to back: a reconnection's subscribe + resume + ping, with room to spare
CLOSE_AFTER_DROPS = 200  # dropped in a row (a peer that ignores the rate-limit error): closed with 1008
YIELD_EVERY_MESSAGES = 64  # handled from one read before the loop runs the other connections
ASSEMBLY_TIMEOUT_S = 10.0  # from a message's first byte to its last: a real client sends a message at once
MAX_FRAMES_PER_MESSAGE = 128  # browsers and `status --watch` send one frame per message
ASSEMBLY_BUDGET_BYTES = 32 * 1024 * 1024  # held in unfinished messages by all connections together


class InboundLimits:
    """The limits of one server's connections (see the module's docstring); a value of None turns one off."""

    __slots__ = ("rate_per_s", "burst", "close_after_drops", "yield_every", "assembly_timeout_s",
                 "max_frames_per_message", "assembly_budget")

    def __init__(self, rate_per_s: float | None = MESSAGE_RATE_PER_S, burst: int = MESSAGE_BURST,
                 close_after_drops: int | None = CLOSE_AFTER_DROPS, yield_every: int | None = YIELD_EVERY_MESSAGES,
                 assembly_timeout_s: float | None = ASSEMBLY_TIMEOUT_S,
                 max_frames_per_message: int | None = MAX_FRAMES_PER_MESSAGE,
                 assembly_budget_bytes: int | None = ASSEMBLY_BUDGET_BYTES) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.close_after_drops = close_after_drops
        self.yield_every = yield_every
        self.assembly_timeout_s = assembly_timeout_s
        self.max_frames_per_message = max_frames_per_message
        self.assembly_budget = AssemblyBudget(assembly_budget_bytes) if assembly_budget_bytes is not None else None

    def __repr__(self) -> str:
        return ("InboundLimits(%s/s, burst %s, close after %s drops, yield every %s, assembly %s s, %s frames, "
                "%s bytes held)" % (self.rate_per_s, self.burst, self.close_after_drops, self.yield_every,
                                    self.assembly_timeout_s, self.max_frames_per_message,
                                    self.assembly_budget.limit if self.assembly_budget else None))


class AssemblyBudget:
    """Bytes held in unfinished incoming messages, per holder and in all; `reserve` refuses past `limit`."""

    __slots__ = ("limit", "total", "_held")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._held: dict[object, int] = {}  # holder (a Connection) → bytes

    def reserve(self, holder: object, size: int) -> bool:
        """Count `size` more bytes for `holder`; False (and nothing counted) when that would pass the limit."""
        if self.total + size > self.limit:
            return False
        self._held[holder] = self._held.get(holder, 0) + size
        self.total += size
        return True

    def release(self, holder: object) -> None:
        """Everything `holder` held is freed (its message completed, or it failed or closed)."""
        size = self._held.pop(holder, 0)
        self.total -= size

    def held_by(self, holder: object) -> int:
        return self._held.get(holder, 0)
