"""What the hub keeps per event and per client, the subscription parameters a client sends (README, "The
WebSocket protocol"), and the counters behind /metrics."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, Optional

from madace_status.project.render.envelope import compact_json, utc_timestamp
from madace_status.websocket import DeflateParams, PreparedMessage

if TYPE_CHECKING:
    import asyncio

    from madace_status.websocket import ServerWebSocket, TokenBucket

__all__ = [
    "MAX_SEQ", "MAX_SEQ_DIGITS", "MAX_SUBSCRIBED_WORKFLOWS", "TOPICS", "Client", "Event", "Message", "Metrics",
    "SubscriptionError", "Topics", "Workflows", "brief_message", "now_ms", "parse_since", "parse_topics",
    "parse_workflows", "source_from_user_agent", "subscribed",
]

TOPICS = ("workflows", "stories", "epics")
MAX_SUBSCRIBED_WORKFLOWS = 1000
MAX_SEQ_DIGITS = 16  # `since` in ASCII digits: a seq stays below 2**53, which a JavaScript number holds exactly
MAX_SEQ = 10 ** MAX_SEQ_DIGITS - 1

Message = Dict[str, Any]  # a JSON message as sent (an envelope: type, timestamp, seq, data)
Topics = FrozenSet[str]
Workflows = Optional[FrozenSet[str]]  # None: every workflow


def now_ms() -> int:
    return int(time.time() * 1000)


def brief_message(message: Message) -> Message:
    """An event as an activity feed needs it: a `stories_updated` without its full story list (about 0.5 MB
    for a 2,000-story project), counted in `storyCount` instead; any other event as it is."""
    data = message.get("data")
    if not isinstance(data, dict) or "stories" not in data:
        return message
    data = dict(data)
    data["storyCount"] = len(data.pop("stories") or ())
    return dict(message, data=data)


class Event:
    """One published event: its brief form and the frame that carries it (built once for every client, and
    compressed at most once per window size). The full message is not kept as objects: a `stories_updated` of
    2,000 stories is megabytes of dicts, while its encoded payload is about 0.5 MB and decodes on demand."""

    __slots__ = ("seq", "type", "topic", "workflow", "brief", "outgoing", "frame", "payload_bytes", "_brief_is_whole")

    def __init__(self, seq: int, event_type: str, topic: str | None, workflow: str | None, message: Message) -> None:
        self.seq = seq
        self.type = event_type
        self.topic = topic
        self.workflow = workflow
        self.brief = brief_message(message)
        self._brief_is_whole = self.brief is message
        self.outgoing = PreparedMessage(compact_json(message).encode())
        self.frame = self.outgoing.frame
        self.payload_bytes = len(self.outgoing.payload)

    def message(self) -> Message:
        """The whole event as it was sent."""
        if self._brief_is_whole:
            return self.brief
        whole: Message = json.loads(self.outgoing.payload.decode("utf-8"))
        return whole


def subscribed(topics: Topics, workflows: Workflows, event: Event) -> bool:
    """Whether a subscription to `topics` (and `workflows`, None: all) gets `event` — a WebSocket client's or an
    event stream's (broadcast.fan_out has the same test inlined: it runs once per recipient)."""
    if event.topic not in topics and event.topic is not None:  # topic None: every client's
        return False
    return event.workflow is None or workflows is None or event.workflow in workflows


class Client:
    """What the hub knows of one connected WebSocket."""

    __slots__ = ("websocket", "id", "source", "topics", "workflows", "connected_at", "last_seen", "lagging_since",
                 "remote", "snapshot_due", "snapshot_timer", "snapshot_budget", "deflate")

    def __init__(self, websocket: ServerWebSocket, client_id: str, source: str, topics: Topics,
                 workflows: Workflows) -> None:
        self.websocket = websocket
        self.id = client_id
        self.source = source
        self.topics = topics
        self.workflows = workflows  # None: every workflow
        self.connected_at = time.time()
        self.last_seen = self.connected_at
        self.lagging_since: float | None = None  # loop time at which it went over the high-water mark
        # The reason of the snapshot it will get next; events are held back meanwhile.
        self.snapshot_due: str | None = None
        self.snapshot_timer: asyncio.TimerHandle | None = None  # sends the coalesced snapshot when the rate allows
        self.snapshot_budget: TokenBucket | None = None  # the snapshot rate limit, made at the first request
        address = websocket.remote_address
        # host:port; a client a trusted proxy named has no port of ours to show (its address only).
        self.remote = ("%s:%s" % (address[0], address[1]) if address[1] else str(address[0])) if address else ""
        # The permessage-deflate DeflateParams, None without.
        self.deflate: DeflateParams | None = websocket.connection.deflate

    def wants(self, event: Event) -> bool:
        return subscribed(self.topics, self.workflows, event)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "connectedAt": utc_timestamp(self.connected_at),
                "lastSeen": utc_timestamp(self.last_seen), "remote": self.remote, "topics": sorted(self.topics),
                "workflows": sorted(self.workflows) if self.workflows is not None else None,
                "lagging": self.lagging_since is not None or self.websocket.over_mark_since is not None,
                "compression": self.deflate is not None}


class SubscriptionError(ValueError):
    """A subscription that names an unknown topic or is malformed."""


def parse_topics(value: object) -> Topics:
    """A topics list (or comma-separated string) → frozenset; empty means every topic."""
    if value is None or value == "" or value == []:
        return frozenset(TOPICS)
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SubscriptionError("topics must be a list of strings")
    unknown = sorted(set(value) - set(TOPICS))
    if unknown:
        raise SubscriptionError("unknown topic %s (known: %s)" % (", ".join(unknown)[:80], ", ".join(TOPICS)))
    return frozenset(value) or frozenset(TOPICS)


def parse_workflows(value: object) -> Workflows:
    if value is None or value == []:
        return None
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SubscriptionError("workflows must be a list of workflow names")
    if len(value) > MAX_SUBSCRIBED_WORKFLOWS:
        raise SubscriptionError("more than %d workflows" % MAX_SUBSCRIBED_WORKFLOWS)
    return frozenset(value)


def parse_since(value: str | None) -> int | None:
    """A `since` query value → int (None when absent): ASCII digits only (str.isdigit also takes '²'), at most
    MAX_SEQ_DIGITS of them."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_SEQ_DIGITS):
        raise SubscriptionError("since must be a sequence number: 1 to %d ASCII digits" % MAX_SEQ_DIGITS)
    return int(value)


def source_from_user_agent(user_agent: str | None) -> str:
    if not user_agent:
        return "unknown"
    if "mozilla" in user_agent.lower():
        return "browser"
    return user_agent.split()[0].split("/")[0][:40] or "unknown"


class Metrics:
    """Counters for /metrics (read from the HTTP thread; plain ints and floats, updated on the loop)."""

    def __init__(self) -> None:
        self.connections_total = 0
        self.messages_sent_total = 0
        self.bytes_sent_total = 0
        self.events_total = 0
        self.dropped_total = 0
        self.resyncs_total = 0
        self.lagging_closed_total = 0
        self.heartbeat_closed_total = 0
        self.client_messages_total = 0
        self.client_errors_total = 0
        self.rate_limited_total = 0  # times a peer went over its message rate (told RATE_LIMITED once each time)
        self.broadcast_seconds_total = 0.0
        self.broadcasts_total = 0
        self.poll_seconds_total = 0.0
        self.polls_total = 0
        self.looks_failed_total = 0  # looks that raised: the next one reads the whole project again
        self.rescans_total = 0  # whole-project reads after a failed look or a lost event queue
        # Frames sent to clients that negotiated permessage-deflate: their bytes uncompressed, and as sent.
        self.compression_in_bytes_total = 0
        self.compression_out_bytes_total = 0

    def count_sent(self, messages: int, wire_bytes: int, deflate_plain_bytes: int = 0,
                   deflate_wire_bytes: int = 0) -> None:
        """The one place sent messages are counted: `messages` frames of `wire_bytes` in all, of which the frames
        to permessage-deflate clients were `deflate_plain_bytes` uncompressed and `deflate_wire_bytes` as sent."""
        self.messages_sent_total += messages
        self.bytes_sent_total += wire_bytes
        self.compression_in_bytes_total += deflate_plain_bytes
        self.compression_out_bytes_total += deflate_wire_bytes
