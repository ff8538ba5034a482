"""What answers on the WebSocket port while the sync service is stopped by POST /api/sync (README, "HTTP API")."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from madace_status.websocket import Listening, listening_sockets, refusal_response, start_listening

__all__ = ["STOPPED_BACKLOG", "STOPPED_MAX_CONNECTIONS", "STOPPED_REASON", "STOPPED_REQUEST_BYTES", "STOPPED_TIMEOUT_S",
           "StoppedResponder", "hold_stopped_port"]

logger = logging.getLogger("madace_status.sync")

STOPPED_REASON = 'the sync service is stopped; POST /api/sync {"action": "start"} starts it'
STOPPED_REQUEST_BYTES = 16 * 1024  # the most of a handshake read before answering (the answer is the same anyway)
STOPPED_TIMEOUT_S = 10.0
STOPPED_MAX_CONNECTIONS = 64  # connections answered at once while stopped; more are dropped at once
STOPPED_BACKLOG = 100


class StoppedResponder(asyncio.Protocol):
    """Holds the WebSocket port while the service is stopped: each handshake is answered 503 with the reason,
    so a client learns the service is stopped on purpose (and the port stays ours for the restart). At most
    STOPPED_MAX_CONNECTIONS × STOPPED_REQUEST_BYTES are held, whatever peers do."""

    def __init__(self, live: set[StoppedResponder]) -> None:
        self.live = live  # the responders with a connection, shared by all
        self.received: bytearray | None = None
        self.timer: asyncio.TimerHandle | None = None

    transport: asyncio.Transport  # set by connection_made, which asyncio calls before anything else

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if len(self.live) >= STOPPED_MAX_CONNECTIONS:
            self.transport.abort()
            return
        self.live.add(self)
        self.received = bytearray()
        self.timer = asyncio.get_running_loop().call_later(STOPPED_TIMEOUT_S, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        if self.received is None:
            return  # answered (or dropped): nothing more is kept
        self.received += data
        # Answer once the request is all here, so closing does not reset a connection with unread bytes.
        if b"\r\n\r\n" in self.received or len(self.received) > STOPPED_REQUEST_BYTES:
            self.received = None
            self.transport.write(refusal_response(503, STOPPED_REASON))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.live.discard(self)
        if self.timer is not None:
            self.timer.cancel()


async def hold_stopped_port(host: str, port: int) -> Listening | None:
    """Answer every handshake on `port` with 503 (StoppedResponder) until the listener is closed; None when the port
    cannot be had (taken by someone else meanwhile: clients then find nothing listening)."""
    live: set[StoppedResponder] = set()
    try:
        sockets = await listening_sockets(host, port, STOPPED_BACKLOG)
        return await start_listening(sockets, lambda: StoppedResponder(live), STOPPED_BACKLOG)
    except OSError as error:
        logger.info("cannot hold port %d while stopped: %s", port, error.strerror or error)
        return None
