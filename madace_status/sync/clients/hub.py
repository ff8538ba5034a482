"""The event hub: connected clients, subscriptions, sequence numbers, the ring buffer of recent events,
the broadcaster and its slow-consumer policy, heartbeats, and the client → server message protocol
(README, "The WebSocket protocol").

Output budget: the WebSocket layer stops reading a peer whose unsent output is over the high-water mark
(backpressure), so a client that does not read cannot make the hub answer more. The hub adds: events are held
back from a client over the mark (it gets one snapshot once drained), a replay stops when the client passes
the mark (a snapshot follows the same way), and the snapshots a client asks for (`subscribe`, `resume`) are
rate-limited per connection by a token bucket; requests beyond it are coalesced into one pending snapshot,
sent as soon as the budget allows, so the client converges with nothing lost. A client over the mark for
LAGGING_CLOSE_S is closed with 1008.

Runs on the asyncio loop of the sync service. The broadcaster (sync/clients/broadcast.py) serialises each event into
one frame and writes that frame to every subscriber without awaiting anyone. For clients that negotiated
permessage-deflate the event is compressed once per window size (websocket.PreparedMessage), not once
per client. The HTTP thread reads the hub through the methods that take `_lock`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import secrets
import threading
import time
from typing import Any, Callable, ClassVar, Dict, Iterable

from madace_status.logsafe import escape
from madace_status.project.render.envelope import compact_json
from madace_status.sync.clients.broadcast import fan_out
from madace_status.sync.clients.streams import EventStreams
from madace_status.sync.clients.subscribers import (MAX_SEQ, MAX_SEQ_DIGITS, TOPICS, Client, Event, Message, Metrics,
                                                    SubscriptionError, Topics, Workflows, now_ms, parse_since,
                                                    parse_topics, parse_workflows, source_from_user_agent)
from madace_status.websocket import (MESSAGE_RATE_PER_S, CloseCode, ConnectionClosed, Message as WebSocketMessage,
                                     PreparedMessage, ServerWebSocket, SplicedText, TokenBucket)

__all__ = [
    "HEARTBEAT_S", "HIGH_WATER_BYTES", "LAGGING_CLOSE_S", "MAX_CACHED_SNAPSHOTS", "MAX_SEQ", "MAX_SEQ_DIGITS",
    "RING_BUFFER_EVENTS", "RING_BUFFER_MAX_BYTES", "SNAPSHOT_BURST", "SNAPSHOT_REFILL_S", "TOPICS", "WELCOME_MESSAGE",
    "Client", "Event", "Hub", "Metrics", "SnapshotData", "SubscriptionError", "parse_since", "parse_topics",
    "parse_workflows",
]

logger = logging.getLogger("madace_status.sync")

RING_BUFFER_EVENTS = 1024
# Encoded payload bytes the ring keeps (its frames and compressed copies take about as much again): a 2,000-story
# project's story moves are ~0.5 MB each, so 1,024 of them would hold gigabytes. A client resuming from an
# event that fell out gets a resync snapshot, which is smaller than replaying that many anyway.
RING_BUFFER_MAX_BYTES = 16 * 1024 * 1024
HIGH_WATER_BYTES = 1024 * 1024  # a client with more unsent bytes than this stops receiving events
LAGGING_CLOSE_S = 30.0  # a client stuck above the high-water mark this long is closed with 1008
HEARTBEAT_S = 20.0
MAX_CACHED_SNAPSHOTS = 64  # distinct subscriptions whose encoded snapshot is kept
SNAPSHOT_BURST = 5  # snapshots a client may ask for (subscribe, resume) back to back…
SNAPSHOT_REFILL_S = 0.5  # …then one per this many seconds; the requests in between are coalesced into one
WELCOME_MESSAGE = "Connected to MADACE sync server"

# The project as a snapshot to a subscription shows it: (topics, workflows) → the snapshot's data.
SnapshotData = Callable[[Topics, Workflows], Dict[str, Any]]


class Hub:
    """Clients, subscriptions, events. `snapshot_data(topics, workflows)` gives the project for a snapshot."""

    def __init__(self, loop: asyncio.AbstractEventLoop, snapshot_data: SnapshotData, heartbeat_s: float = HEARTBEAT_S,
                 high_water_bytes: int = HIGH_WATER_BYTES, lagging_close_s: float = LAGGING_CLOSE_S,
                 ring_size: int = RING_BUFFER_EVENTS, ring_max_bytes: int = RING_BUFFER_MAX_BYTES,
                 earlier_activity: Iterable[Event] = (), project: dict[str, str] | None = None) -> None:
        self.loop = loop
        self.run_id = secrets.token_hex(8)
        self.project = project  # the welcome's `project`: loader.root_identity of the root served
        self.seq = 0
        self.ring: collections.deque[Event] = collections.deque()
        self.ring_size = ring_size
        self.ring_max_bytes = ring_max_bytes
        self.ring_bytes = 0  # payload bytes of the events in `ring`
        # The events of the runs before this one (a restart of the sync service), oldest first: listed by
        # recent_events() after this run's own, never replayed (their seq belongs to another run). They give way
        # as this run's ring fills: together they hold at most what one ring may.
        self.earlier: collections.deque[Event] = collections.deque(earlier_activity)
        self.earlier_bytes = sum(event.payload_bytes for event in self.earlier)
        self._trim_earlier()
        self.clients: dict[ServerWebSocket, Client] = {}
        self.metrics = Metrics()
        self.heartbeat_s = heartbeat_s
        self.high_water_bytes = high_water_bytes
        self.lagging_close_s = lagging_close_s
        self._snapshot_data = snapshot_data
        # (topics, workflows) → the snapshot's data as JSON, spliced between each client's ends (see send_snapshot)
        self._snapshot_cache: dict[tuple[Topics, Workflows], SplicedText] = {}
        self._lock = threading.Lock()
        self.streams = EventStreams(self, high_water_bytes, lagging_close_s)  # GET /api/events
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self._last_ping_at = loop.time()

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._heartbeat_handle = self.loop.call_later(self.heartbeat_s, self._heartbeat)

    def stop(self) -> None:
        self.streams.close_all()
        if self._heartbeat_handle is not None:
            self._heartbeat_handle.cancel()
            self._heartbeat_handle = None

    # -- messages ---------------------------------------------------------------------------------------------

    def _envelope(self, message_type: str, data: Any) -> Message:
        return {"type": message_type, "timestamp": now_ms(), "seq": self.seq, "data": data}

    def _send(self, client: Client, message: Message) -> None:
        """Send one message to one client (welcome, pong, error, replay)."""
        payload = compact_json(message).encode()
        self._write_shared(client, PreparedMessage(payload))

    def _write_shared(self, client: Client, shared: PreparedMessage) -> None:
        self._write(client, shared.frame_for(client.deflate), len(shared.frame))

    def _write(self, client: Client, frame: bytes, plain_bytes: int | None = None) -> None:
        """Write one frame; `plain_bytes` is its size uncompressed when it went compressed."""
        try:
            client.websocket.send_frame(frame)
        except ConnectionClosed:
            return
        if client.deflate is None:
            self.metrics.count_sent(1, len(frame))
        else:
            self.metrics.count_sent(1, len(frame), plain_bytes or len(frame), len(frame))

    def send_snapshot(self, client: Client, reason: str) -> None:
        # With permessage-deflate the project part is compressed once per window size too, as a deflate chunk
        # that the few per-client bytes around it join (websocket.SplicedText).
        spliced = self._snapshot_body(client.topics, client.workflows)
        head, tail = self._snapshot_ends(reason)
        frame, plain_bytes = spliced.frame_for(head, tail, client.deflate)
        self._write(client, frame, plain_bytes)

    def _snapshot_body(self, topics: Topics, workflows: Workflows) -> SplicedText:
        # The project part is encoded once per project version and subscription, not once per client: a
        # reconnect storm after a restart would otherwise serialise the whole project thousands of times.
        key = (topics, workflows)
        spliced = self._snapshot_cache.get(key)
        if spliced is None:
            if len(self._snapshot_cache) >= MAX_CACHED_SNAPSHOTS:
                self._snapshot_cache.clear()
            encoded = compact_json(self._snapshot_data(topics, workflows))
            members = encoded[:-1] + ("," if encoded != "{}" else "")  # the data object, open for "reason"
            spliced = self._snapshot_cache[key] = SplicedText(members.encode())
        return spliced

    def _snapshot_ends(self, reason: str) -> tuple[bytes, bytes]:
        head = ('{"type":"snapshot","timestamp":%d,"seq":%d,"data":' % (now_ms(), self.seq)).encode()
        tail = ('"reason":%s}}' % json.dumps(reason, allow_nan=False)).encode()
        return head, tail

    def snapshot_payload(self, topics: Topics, workflows: Workflows, reason: str) -> bytes:
        """A whole `snapshot` message as JSON bytes (an event stream's: no frame, no compression)."""
        head, tail = self._snapshot_ends(reason)
        return head + self._snapshot_body(topics, workflows).body + tail

    def welcome_payload(self, client_id: str) -> bytes:
        """The welcome (`ping`) a client gets first, as JSON bytes."""
        welcome: dict[str, Any] = {"clientId": client_id, "message": WELCOME_MESSAGE, "runId": self.run_id,
                                   "heartbeatMs": int(self.heartbeat_s * 1000)}
        if self.project is not None:
            welcome["project"] = self.project
        return compact_json(self._envelope("ping", welcome)).encode()

    def events_after(self, run_id: str, since: int) -> list[Event] | None:
        """The kept events after `since` of run `run_id`, oldest first; None when they are not all kept (another
        run, a seq from the future, or evicted from the ring): the client must resync."""
        with self._lock:
            events = list(self.ring)
            current_seq = self.seq
        oldest_kept = events[0].seq if events else current_seq + 1
        if run_id != self.run_id or since > current_seq or since < oldest_kept - 1:
            return None
        return [event for event in events if event.seq > since]

    def project_changed(self) -> None:
        """The project the snapshots show has changed: encode them afresh."""
        self._snapshot_cache.clear()

    # -- publishing -------------------------------------------------------------------------------------------

    def publish(self, event_type: str, data: Any, topic: str | None, workflow: str | None = None) -> Event:
        """Give the event the next seq, keep it in the ring buffer and write it to every subscriber."""
        started = time.perf_counter()
        with self._lock:
            self.seq += 1
            event = Event(self.seq, event_type, topic, workflow,
                          {"type": event_type, "timestamp": now_ms(), "seq": self.seq, "data": data})
            self._keep(event)
        self.metrics.events_total += 1
        self.streams.publish(event)
        held = fan_out(event, self.clients.values(), self.high_water_bytes, self.metrics)
        for client in held:  # over the high-water mark: it gets a snapshot once it drains
            self._hold_for_snapshot(client)
            logger.info("client %s (%s) is lagging; events paused until it drains", client.id, escape(client.source))
        self.metrics.broadcast_seconds_total += time.perf_counter() - started
        self.metrics.broadcasts_total += 1
        return event

    def _keep(self, event: Event) -> None:
        """Add `event` to the ring, dropping the oldest beyond RING_BUFFER_EVENTS or RING_BUFFER_MAX_BYTES (the
        newest is always kept, so a resume from the event before it can replay it)."""
        ring = self.ring
        ring.append(event)
        self.ring_bytes += event.payload_bytes
        while len(ring) > 1 and (len(ring) > self.ring_size or self.ring_bytes > self.ring_max_bytes):
            self.ring_bytes -= ring.popleft().payload_bytes
        self._trim_earlier()

    def _trim_earlier(self) -> None:
        earlier = self.earlier
        while earlier and (len(earlier) + len(self.ring) > self.ring_size
                           or self.earlier_bytes + self.ring_bytes > self.ring_max_bytes):
            self.earlier_bytes -= earlier.popleft().payload_bytes

    def activity(self) -> list[Event]:
        """Every event kept, of this run and of the runs before it, oldest first: what a successor hub lists."""
        with self._lock:
            return list(self.earlier) + list(self.ring)

    def _replay_or_resync(self, client: Client, run_id: str, since: int) -> bool:
        """Send the events after `since` of run `run_id`, or a resync snapshot when they are not all kept."""
        events = self.events_after(run_id, since)
        if events is None:
            self.metrics.resyncs_total += 1
            self.send_snapshot(client, "resync")
            return False
        websocket = client.websocket
        for event in events:
            if client.wants(event):
                self._write_shared(client, event.outgoing)
                if websocket.over_mark_since is not None:  # not reading: a snapshot replaces the rest once drained
                    self._hold_for_snapshot(client)
                    break
        return True

    def resync_all(self) -> None:
        """Every client gets a resync snapshot, at once or when its budget and its buffer allow: after a look that
        failed half-way through its events, each replica converges on the project as read again."""
        for client in list(self.clients.values()):
            if client.snapshot_due is None:
                client.snapshot_due = "resync"
            self._send_due_snapshot(client)

    def _hold_for_snapshot(self, client: Client) -> None:
        """The client is over the high-water mark: hold its events back; it gets a snapshot once drained."""
        client.lagging_since = self.loop.time()
        client.snapshot_due = "lagging"

    # -- the snapshot rate limit ------------------------------------------------------------------------------

    @staticmethod
    def _budget(client: Client) -> TokenBucket:
        if client.snapshot_budget is None:
            client.snapshot_budget = TokenBucket(SNAPSHOT_BURST, SNAPSHOT_REFILL_S)
        return client.snapshot_budget

    def _take_token(self, client: Client) -> bool:
        return self._budget(client).take(self.loop.time())

    def _may_answer_now(self, client: Client) -> bool:
        """True (and a token taken) when a snapshot request can be answered at once."""
        return client.snapshot_due is None and self._take_token(client)

    def _coalesce(self, client: Client, reason: str) -> None:
        """Answer a snapshot request later, with one snapshot for every request made meanwhile."""
        if client.snapshot_due != "lagging":
            client.snapshot_due = reason
        if client.lagging_since is None and client.snapshot_timer is None:
            delay = self._budget(client).wait_s(self.loop.time())
            client.snapshot_timer = self.loop.call_later(delay, self._snapshot_timer_fired, client)

    def _snapshot_timer_fired(self, client: Client) -> None:
        client.snapshot_timer = None
        if self.clients.get(client.websocket) is client:
            self._send_due_snapshot(client)

    def _send_due_snapshot(self, client: Client) -> None:
        reason = client.snapshot_due
        if reason is None or client.websocket.over_mark_since is not None:
            return  # nothing due, or not drained yet: _client_drained comes back here
        if client.lagging_since is None and not self._take_token(client):
            self._coalesce(client, reason)
            return
        client.snapshot_due = None
        if client.lagging_since is not None:
            client.lagging_since = None
            self.metrics.resyncs_total += 1
            logger.info("client %s drained; sending a fresh snapshot", client.id)
            reason = "lagging"
        elif reason == "resync":
            self.metrics.resyncs_total += 1
        self.send_snapshot(client, reason)

    # -- connections ------------------------------------------------------------------------------------------

    def client_connected(self, websocket: ServerWebSocket) -> None:
        request = websocket.request
        topics = parse_topics(request.query_value("topics"))
        workflows = parse_workflows(request.query_value("workflows"))
        source = request.query_value("source") or source_from_user_agent(request.headers.get("User-Agent"))
        client = Client(websocket, secrets.token_hex(4), source[:40], topics, workflows)
        websocket.on_drain = self._client_drained
        websocket.transport.set_write_buffer_limits(high=self.high_water_bytes)
        self.clients[websocket] = client
        self.metrics.connections_total += 1
        logger.info("client %s connected from %s (%s), %d connected", client.id, client.remote, escape(client.source),
                    len(self.clients))
        self._write_shared(client, PreparedMessage(self.welcome_payload(client.id)))
        run_id = request.query_value("runId")
        try:
            since = parse_since(request.query_value("since"))  # refused with 400 at the handshake
        except SubscriptionError:
            since = None
        if run_id and since is not None:
            self._replay_or_resync(client, run_id, since)
        else:
            self.send_snapshot(client, "connected")

    def client_disconnected(self, websocket: ServerWebSocket) -> None:
        client = self.clients.pop(websocket, None)
        if client is not None:
            if client.snapshot_timer is not None:
                client.snapshot_timer.cancel()
                client.snapshot_timer = None
            logger.info("client %s disconnected (%s), %d connected", client.id, websocket.close_code,
                        len(self.clients))

    def _client_drained(self, websocket: ServerWebSocket) -> None:
        client = self.clients.get(websocket)
        if client is not None and client.snapshot_due is not None:
            self._send_due_snapshot(client)

    def client_message(self, websocket: ServerWebSocket, message: WebSocketMessage) -> None:
        """Handle one client message. Nothing a client sends is ever relayed to another client."""
        client = self.clients.get(websocket)
        if client is None:
            return
        client.last_seen = time.time()
        self.metrics.client_messages_total += 1
        if not isinstance(message, str):
            websocket.start_close(CloseCode.UNSUPPORTED_DATA, "binary messages are not accepted")
            return
        try:
            request = json.loads(message)
        except (ValueError, RecursionError):  # RecursionError: nested too deep (a 2 KB message can be)
            self._refuse(client, "INVALID_JSON", "message is not valid JSON")
            return
        if not isinstance(request, dict) or not isinstance(request.get("type"), str):
            self._refuse(client, "INVALID_MESSAGE", "a message is a JSON object with a string 'type'")
            return
        handler = self._HANDLERS.get(request["type"])
        if handler is None:
            self._refuse(client, "UNSUPPORTED_TYPE",
                         "clients may send ping, pong, subscribe or resume, not %r" % request["type"][:40])
            return
        handler(self, client, request)

    def client_rate_limited(self, websocket: ServerWebSocket) -> None:
        """The peer went over its message rate (websocket/inbound.py): say so once; what it sends meanwhile is
        dropped, and it is closed with 1008 if it goes on."""
        client = self.clients.get(websocket)
        self.metrics.rate_limited_total += 1
        if client is not None:
            self._refuse(client, "RATE_LIMITED", "more than %g messages a second: messages are dropped until the "
                         "rate falls, and a peer that goes on is closed" % MESSAGE_RATE_PER_S)

    def _refuse(self, client: Client, code: str, message: str) -> None:
        self.metrics.client_errors_total += 1
        self._send(client, self._envelope("error", {"code": code, "message": message}))

    def _on_ping(self, client: Client, request: dict[str, Any]) -> None:
        timestamp = request.get("timestamp")
        if not isinstance(timestamp, (int, float, str)):
            timestamp = None  # echo a scalar only: a nested value could be too deep to encode again
        self._send(client, self._envelope("pong", {"timestamp": timestamp}))

    def _on_pong(self, client: Client, request: dict[str, Any]) -> None:
        pass  # last_seen is already updated

    def _on_subscribe(self, client: Client, request: dict[str, Any]) -> None:
        try:
            topics = parse_topics(request.get("topics"))
            workflows = parse_workflows(request.get("workflows"))
        except SubscriptionError as error:
            self._refuse(client, "INVALID_SUBSCRIPTION", str(error))
            return
        client.topics, client.workflows = topics, workflows
        if self._may_answer_now(client):
            self.send_snapshot(client, "subscribed")  # what the new subscription shows, as of now
        else:
            self._coalesce(client, "subscribed")

    def _on_resume(self, client: Client, request: dict[str, Any]) -> None:
        run_id, since = request.get("runId"), request.get("since")
        if not isinstance(run_id, str) or not isinstance(since, int) or isinstance(since, bool) or \
                not 0 <= since <= MAX_SEQ:
            self._refuse(client, "INVALID_RESUME", "resume needs a string runId and an integer since from 0 to %d"
                         % MAX_SEQ)
            return
        if self._may_answer_now(client):
            self._replay_or_resync(client, run_id, since)
        else:
            self._coalesce(client, "resync")

    _HANDLERS: ClassVar[dict[str, Callable[[Hub, Client, dict[str, Any]], None]]] = {
        "ping": _on_ping, "pong": _on_pong, "subscribe": _on_subscribe, "resume": _on_resume}

    # -- liveness ---------------------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Protocol ping to everyone; close the peers silent for two intervals or stuck lagging too long."""
        now = self.loop.time()
        ping_due = now - self._last_ping_at >= self.heartbeat_s * 0.99
        if ping_due:
            self._last_ping_at = now
        for websocket, client in list(self.clients.items()):
            if not websocket.open:
                continue  # already closing: counted and logged once, gone when its TCP connection is
            # A peer not read for backpressure is not silent as far as we know: the rule below closes it.
            if not websocket.reading_paused and now - websocket.last_received > 2 * self.heartbeat_s:
                self.metrics.heartbeat_closed_total += 1
                logger.info("client %s sent nothing for %.0f s; closing", client.id, now - websocket.last_received)
                websocket.start_close(CloseCode.GOING_AWAY, "no response to heartbeat", timeout=1.0)
                continue
            stuck_since = websocket.over_mark_since
            if client.lagging_since is not None and (stuck_since is None or client.lagging_since < stuck_since):
                stuck_since = client.lagging_since
            if stuck_since is not None and now - stuck_since > self.lagging_close_s:
                self.metrics.lagging_closed_total += 1
                logger.info("client %s lagged for %.0f s; closing", client.id, now - stuck_since)
                websocket.start_close(CloseCode.POLICY_VIOLATION, "too slow to keep up", timeout=1.0)
                continue
            if ping_due:
                try:
                    websocket.send_ping()
                except ConnectionClosed:
                    pass
        self.streams.tick(ping_due)
        self._heartbeat_handle = self.loop.call_later(self._next_check_s(), self._heartbeat)

    def _next_check_s(self) -> float:
        # Lagging clients are checked more often than the heartbeat so the 30 s limit is kept closely.
        if any(client.lagging_since is not None or client.websocket.over_mark_since is not None
               for client in self.clients.values()) or any(s.lagging_since is not None for s in self.streams.streams):
            return min(self.heartbeat_s, 1.0)
        return self.heartbeat_s

    # -- reading from the HTTP thread -------------------------------------------------------------------------

    def recent_events(self, limit: int, brief: bool = False) -> list[Message]:
        """The newest `limit` events, newest first; `brief` leaves out each `stories_updated`'s story list."""
        events = self.activity()[-limit:] if limit > 0 else []
        return [event.brief if brief else event.message() for event in reversed(events)]

    def client_list(self) -> list[dict[str, Any]]:
        return [client.describe() for client in list(self.clients.values())]
