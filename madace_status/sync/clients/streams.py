"""Server-Sent Events: the hub's events as a `text/event-stream` on `GET /api/events` (README, "Server-Sent
Events"), for `curl -N`, scripts, CI logs and proxies that block WebSockets.

The HTTP server reads and checks the request in a handler thread, writes the response head and hands the socket
to the sync service's event loop (`EventStreams.adopt`): from then on one loop serves every stream, no thread
per stream. Each message is the WebSocket one — the same envelope, the same topics — as `id: RUNID:SEQ` and one
`data:` line (compact JSON has no newline); a `: heartbeat` comment goes out every heartbeat. A stream that
comes back with `Last-Event-ID: RUNID:SEQ` gets the events after it from the ring buffer, or a `snapshot` with
reason `resync` when they are not all kept, exactly as a WebSocket resume. What a stream may make the server
hold is bounded as for a WebSocket: past HIGH_WATER_BYTES unsent its events are held back (it gets a `lagging`
snapshot once drained), past STREAM_HARD_CAP_BYTES or LAGGING_CLOSE_S it is closed; what a peer sends on a stream
is read and thrown away; at most MAX_STREAMS are open.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Optional

from madace_status.sync.clients.subscribers import Event, Topics, Workflows, subscribed

if TYPE_CHECKING:
    from madace_status.sync.clients.hub import Hub

__all__ = ["MAX_STREAMS", "STREAM_HARD_CAP_BYTES", "EventStream", "EventStreams", "parse_last_event_id"]

logger = logging.getLogger("madace_status.sync")

MAX_STREAMS = 1000  # open event streams; the next request is answered 503 by the HTTP side
STREAM_HARD_CAP_BYTES = 4 * 1024 * 1024  # unsent bytes past which a stream is closed at once
MAX_EVENT_ID_CHARS = 64  # of a Last-Event-ID: `RUNID:SEQ` is 16 hex digits, a colon and at most 16 digits
HEARTBEAT_COMMENT = b": heartbeat\n\n"


def parse_last_event_id(value: Optional[str]) -> Optional[tuple[str, int]]:
    """(runId, seq) from a `Last-Event-ID` header we wrote, else None (a fresh start: welcome and snapshot)."""
    if value is None or len(value) > MAX_EVENT_ID_CHARS:
        return None
    run_id, colon, seq = value.strip().partition(":")
    if not colon or not run_id.isalnum() or not run_id.isascii() or not (seq.isascii() and seq.isdigit()):
        return None
    return run_id, int(seq)


def sse_message(run_id: str, seq: int, payload: bytes) -> bytes:
    """One event of the stream: its id (what a reconnecting client sends back) and its JSON on one data line."""
    return b"id: %s:%d\ndata: %s\n\n" % (run_id.encode("ascii"), seq, payload)


class EventStream(asyncio.Protocol):
    """One open stream: its subscription, and the transport the events are written to."""

    def __init__(self, streams: EventStreams, client_id: str, topics: Topics, workflows: Workflows) -> None:
        self.streams = streams
        self.id = client_id
        self.topics = topics
        self.workflows = workflows
        self.transport: Optional[asyncio.Transport] = None
        self.lagging_since: Optional[float] = None  # events held back since: a snapshot follows once drained

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self.streams.high_water_bytes)

    def data_received(self, data: bytes) -> None:
        pass  # a stream is one-way: what a peer sends is read (so it cannot fill our buffers) and dropped

    def eof_received(self) -> bool:
        return False  # the peer is done sending: close

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.streams.forget(self)

    def pause_writing(self) -> None:
        if self.lagging_since is None:
            self.lagging_since = self.streams.loop.time()

    def resume_writing(self) -> None:
        if self.lagging_since is not None:
            self.lagging_since = None
            self.streams.send_snapshot(self, "lagging")

    def wants(self, event: Event) -> bool:
        return subscribed(self.topics, self.workflows, event)

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() + len(data) > STREAM_HARD_CAP_BYTES:
            logger.info("event stream %s is over %d unsent bytes; closing", self.id, STREAM_HARD_CAP_BYTES)
            transport.abort()
            return
        transport.write(data)


class EventStreams:
    """Every open event stream of one hub: adopted from the HTTP side, fed by `publish`, kept alive by `tick`."""

    def __init__(self, hub: Hub, high_water_bytes: int, lagging_close_s: float) -> None:
        self.hub = hub
        self.loop = hub.loop
        self.high_water_bytes = high_water_bytes
        self.lagging_close_s = lagging_close_s
        self.streams: set[EventStream] = set()

    async def adopt(self, sock: socket.socket, client_id: str, topics: Topics, workflows: Workflows,
                    last_event_id: Optional[str]) -> None:
        """Serve the stream on `sock` (its response head already sent) from this loop on."""
        if len(self.streams) >= MAX_STREAMS:
            sock.close()
            return
        stream = EventStream(self, client_id, topics, workflows)
        await self.loop.connect_accepted_socket(lambda: stream, sock)  # type: ignore[attr-defined]  # (3.9 stubs)
        if stream.transport is None or stream.transport.is_closing():
            return  # the peer left at once: nothing to keep
        self.streams.add(stream)
        self.hub.metrics.connections_total += 1
        logger.info("event stream %s opened, %d open", client_id, len(self.streams))
        resume = parse_last_event_id(last_event_id)
        if resume is not None:
            self.replay_or_resync(stream, *resume)
        else:
            stream.write(sse_message(self.hub.run_id, self.hub.seq, self.hub.welcome_payload(stream.id)))
            self.send_snapshot(stream, "connected")

    def forget(self, stream: EventStream) -> None:
        self.streams.discard(stream)

    def publish(self, event: Event) -> None:
        if not self.streams:
            return
        message = sse_message(self.hub.run_id, event.seq, event.outgoing.payload)  # built once for every stream
        for stream in list(self.streams):
            if stream.lagging_since is None and stream.wants(event):
                stream.write(message)

    def send_snapshot(self, stream: EventStream, reason: str) -> None:
        stream.write(sse_message(self.hub.run_id, self.hub.seq,
                                 self.hub.snapshot_payload(stream.topics, stream.workflows, reason)))

    def replay_or_resync(self, stream: EventStream, run_id: str, since: int) -> None:
        """The events after `since` of run `run_id` when the ring still holds them all, else a resync snapshot."""
        events = self.hub.events_after(run_id, since)
        if events is None:  # another run (a restart), or events no longer kept: start over, welcome first
            self.hub.metrics.resyncs_total += 1
            stream.write(sse_message(self.hub.run_id, self.hub.seq, self.hub.welcome_payload(stream.id)))
            self.send_snapshot(stream, "resync")
            return
        for event in events:
            if stream.wants(event):
                stream.write(sse_message(run_id, event.seq, event.outgoing.payload))

    def tick(self, heartbeat_due: bool) -> None:
        """At each check: the streams stuck too long over the high-water mark closed; at each heartbeat, a comment
        to every other stream (a proxy keeps it open, a dead peer shows)."""
        now = self.loop.time()
        for stream in list(self.streams):
            if stream.lagging_since is not None and now - stream.lagging_since > self.lagging_close_s:
                self.hub.metrics.lagging_closed_total += 1
                logger.info("event stream %s lagged for %.0f s; closing", stream.id, now - stream.lagging_since)
                if stream.transport is not None:
                    stream.transport.abort()
                continue
            if heartbeat_due:
                stream.write(HEARTBEAT_COMMENT)

    def close_all(self) -> None:
        for stream in list(self.streams):
            if stream.transport is not None:
                stream.transport.close()
        self.streams.clear()
