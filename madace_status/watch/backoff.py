"""Reconnecting: exponential backoff with full jitter between connection attempts."""

import random

BACKOFF_START_S = 0.5
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 30.0
BACKOFF_RESET_AFTER_S = 10.0  # a connection that lasted this long starts the backoff over


class Backoff(object):
    """Exponential backoff with full jitter: delay n is uniform in [0, min(cap, start × factor^n)]."""

    def __init__(self, start=BACKOFF_START_S, factor=BACKOFF_FACTOR, cap=BACKOFF_CAP_S,
                 reset_after=BACKOFF_RESET_AFTER_S, rand=random.random):
        self.start = start
        self.factor = factor
        self.cap = cap
        self.reset_after = reset_after
        self.rand = rand
        self.ceiling = start

    def next_delay(self):
        delay = self.rand() * self.ceiling
        self.ceiling = min(self.cap, self.ceiling * self.factor)
        return delay

    def connection_lasted(self, seconds):
        if seconds >= self.reset_after:
            self.ceiling = self.start
