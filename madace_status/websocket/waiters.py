"""What the application awaits on one connection (README, "The WebSocket implementation"): recv()'s next message
(`Inbox`, in recv() mode only: a connection whose messages go to a callback has none) and ping()'s pongs
(`PingWaiters`, made at the first ping). Components of protocol.WebSocket."""

from __future__ import annotations

import asyncio
from typing import Union

__all__ = ["Inbox", "Message", "PingWaiters"]

Message = Union[str, bytes]


class Inbox:
    """recv() mode: the one message parsed for the reader and not taken yet, and the reader waiting for one."""

    __slots__ = ("_loop", "message", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.message: Message | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put(self, message: Message) -> None:
        self.message = message
        self.wake()

    def take(self) -> Message | None:
        message, self.message = self.message, None
        return message

    def wake(self) -> None:
        """The reader should look again: a message came, or the connection is closing."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class PingWaiters:
    """ping() futures by payload: each gets the loop time its pong arrived, or the connection's error."""

    __slots__ = ("_loop", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: dict[bytes, asyncio.Future[float]] = {}

    def expect(self, payload: bytes) -> asyncio.Future[float]:
        """The future of the pong to a ping with `payload` (a newer ping with the same payload replaces it)."""
        waiter: asyncio.Future[float] = self._loop.create_future()
        self._waiters[payload] = waiter
        return waiter

    def answered(self, payload: bytes) -> None:
        """A pong with `payload` arrived (one nobody waits for is ignored)."""
        waiter = self._waiters.pop(payload, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(self._loop.time())

    def fail(self, error: BaseException) -> None:
        """The connection ended: every ping still waiting gets `error`."""
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
