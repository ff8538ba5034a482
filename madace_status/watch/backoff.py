"""Reconnecting: exponential backoff with full jitter between connection attempts (README, "`madace-status status
--watch`")."""

from __future__ import annotations

import random
from typing import Callable

__all__ = ["BACKOFF_CAP_S", "BACKOFF_FACTOR", "BACKOFF_RESET_AFTER_S", "BACKOFF_START_S", "Backoff"]

BACKOFF_START_S = 0.5
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 30.0
BACKOFF_RESET_AFTER_S = 10.0  # a connection that lasted this long starts the backoff over


class Backoff:
    """Exponential backoff with full jitter: delay n is uniform in [0, min(cap, start × factor^n)]."""

    def __init__(self, start: float = BACKOFF_START_S, factor: float = BACKOFF_FACTOR, cap: float = BACKOFF_CAP_S,
                 reset_after: float = BACKOFF_RESET_AFTER_S, rand: Callable[[], float] = random.random) -> None:
        self.start = start
        self.factor = factor
        self.cap = cap
        self.reset_after = reset_after
        self.rand = rand
        self.ceiling = start

    def next_delay(self) -> float:
        delay = self.rand() * self.ceiling
        self.ceiling = min(self.cap, self.ceiling * self.factor)
        return delay

    def connection_lasted(self, seconds: float) -> None:
        if seconds >= self.reset_after:
            self.ceiling = self.start
