"""What answers on the WebSocket port while the sync service is stopped by POST /api/sync."""

import asyncio

from madace_status.websocket import refusal_response

STOPPED_REASON = 'the sync service is stopped; POST /api/sync {"action": "start"} starts it'
STOPPED_REQUEST_BYTES = 16 * 1024  # the most of a handshake read before answering (the answer is the same anyway)
STOPPED_TIMEOUT_S = 10.0
STOPPED_MAX_CONNECTIONS = 64  # connections answered at once while stopped; more are dropped at once
STOPPED_BACKLOG = 100


class StoppedResponder(asyncio.Protocol):
    """Holds the WebSocket port while the service is stopped: each handshake is answered 503 with the reason,
    so a client learns the service is stopped on purpose (and the port stays ours for the restart). At most
    STOPPED_MAX_CONNECTIONS × STOPPED_REQUEST_BYTES are held, whatever peers do."""

    def __init__(self, live):
        self.live = live  # the responders with a connection, shared by all
        self.transport = None
        self.received = None
        self.timer = None

    def connection_made(self, transport):
        self.transport = transport
        if len(self.live) >= STOPPED_MAX_CONNECTIONS:
            transport.abort()
            return
        self.live.add(self)
        self.received = bytearray()
        self.timer = asyncio.get_running_loop().call_later(STOPPED_TIMEOUT_S, transport.abort)

    def data_received(self, data):
        if self.received is None:
            return  # answered (or dropped): nothing more is kept
        self.received += data
        # Answer once the request is all here, so closing does not reset a connection with unread bytes.
        if b"\r\n\r\n" in self.received or len(self.received) > STOPPED_REQUEST_BYTES:
            self.received = None
            self.transport.write(refusal_response(503, STOPPED_REASON))
            self.transport.close()

    def connection_lost(self, exc):
        self.live.discard(self)
        if self.timer is not None:
            self.timer.cancel()
