"""A token bucket (sans-I/O: the caller passes the time): `burst` requests back to back, then one per
`refill_s` seconds. A server connection has one for the messages its peer sends (inbound.py), and the sync hub
one per connection for the snapshots it asks for (README, "The WebSocket protocol")."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    __slots__ = ("burst", "refill_s", "tokens", "updated_at")

    def __init__(self, burst: float, refill_s: float) -> None:
        self.burst = burst
        self.refill_s = refill_s
        self.tokens = float(burst)
        self.updated_at: float | None = None  # the time of the last take

    def _refill(self, now: float) -> None:
        if self.updated_at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.updated_at) / self.refill_s)
        self.updated_at = now

    def take(self, now: float) -> bool:
        """True (and a token spent) when a request may go now."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait_s(self, now: float) -> float:
        """Seconds until the next token (0 when one is there)."""
        self._refill(now)
        return max(0.0, 1 - self.tokens) * self.refill_s
