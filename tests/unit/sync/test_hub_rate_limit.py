"""The hub's snapshot rate limit (issue 10 §4): a burst of SNAPSHOT_BURST snapshot requests is answered at once,
the requests beyond it are coalesced into one snapshot sent when the bucket allows, events are held back
meanwhile, and a client over the high-water mark gets its due snapshot only once it has drained."""

import json
import types

from madace_status.sync.clients.hub import SNAPSHOT_BURST, SNAPSHOT_REFILL_S, Client, Hub


class FakeLoop:
    """A clock the test moves, and call_later handles it fires by hand."""

    def __init__(self):
        self.now = 1000.0
        self.timers = []

    def time(self):
        return self.now

    def call_later(self, delay, callback, *args):
        timer = FakeTimer(self.now + delay, callback, args)
        self.timers.append(timer)
        return timer

    def fire_due(self):
        due = [t for t in self.timers if t.when <= self.now and not t.cancelled]
        self.timers = [t for t in self.timers if t not in due]
        for timer in due:
            timer.callback(*timer.args)
        return len(due)


class FakeTimer:
    def __init__(self, when, callback, args):
        self.when, self.callback, self.args, self.cancelled = when, callback, args, False

    def cancel(self):
        self.cancelled = True


class FakeWebSocket:
    remote_address = ("127.0.0.1", 5000)
    open = True
    reading_paused = False
    buffered_amount = 0
    close_code = 1000
    connection = types.SimpleNamespace(deflate=None)  # no permessage-deflate negotiated

    def __init__(self):
        self.frames = []
        self.over_mark_since = None

    def send_frame(self, frame):
        self.frames.append(frame)

    def messages(self):
        return [json.loads(frame[2:] if frame[1] < 126 else frame[4:]) for frame in self.frames]


def hub_with_client():
    loop = FakeLoop()
    hub = Hub(loop, lambda topics, workflows: {"topics": sorted(topics)})
    websocket = FakeWebSocket()
    client = Client(websocket, "c1", "test", frozenset(("workflows", "stories", "epics")), None)
    hub.clients[websocket] = client
    return hub, loop, websocket, client


def subscribe(hub, websocket, topics):
    hub.client_message(websocket, json.dumps({"type": "subscribe", "topics": topics}))


def snapshots(websocket):
    return [m for m in websocket.messages() if m["type"] == "snapshot"]


def test_a_burst_is_answered_then_requests_are_coalesced_into_one_snapshot_of_the_last_subscription():
    hub, loop, websocket, client = hub_with_client()
    for _ in range(SNAPSHOT_BURST):
        subscribe(hub, websocket, ["workflows"])
    assert len(snapshots(websocket)) == SNAPSHOT_BURST
    for index in range(1000):
        subscribe(hub, websocket, ["stories"] if index % 2 else ["epics"])
    assert len(snapshots(websocket)) == SNAPSHOT_BURST  # nothing more yet
    assert client.topics == frozenset(["stories"])  # the subscription itself applies at once
    hub.publish("stories_updated", {"stories": []}, "stories")
    assert [m["type"] for m in websocket.messages()].count("stories_updated") == 0  # held: the snapshot shows it
    loop.now += SNAPSHOT_REFILL_S
    assert loop.fire_due() == 1
    last = snapshots(websocket)
    assert len(last) == SNAPSHOT_BURST + 1
    assert last[-1]["data"]["reason"] == "subscribed"
    assert last[-1]["data"]["topics"] == ["stories"]
    assert last[-1]["seq"] == hub.seq  # it shows the event held back
    assert client.snapshot_due is None and client.snapshot_timer is None
    hub.publish("stories_updated", {"stories": []}, "stories")
    assert websocket.messages()[-1]["type"] == "stories_updated"  # live again


def test_resume_requests_beyond_the_burst_become_one_resync_snapshot():
    hub, loop, websocket, _ = hub_with_client()
    for _ in range(SNAPSHOT_BURST + 50):
        hub.client_message(websocket, json.dumps({"type": "resume", "runId": "another-run", "since": 0}))
    assert [m["data"]["reason"] for m in snapshots(websocket)] == ["resync"] * SNAPSHOT_BURST
    loop.now += 10 * SNAPSHOT_REFILL_S
    loop.fire_due()
    assert [m["data"]["reason"] for m in snapshots(websocket)] == ["resync"] * (SNAPSHOT_BURST + 1)
    assert loop.fire_due() == 0


def test_a_due_snapshot_waits_for_the_client_to_drain():
    hub, loop, websocket, client = hub_with_client()
    for _ in range(SNAPSHOT_BURST + 3):
        subscribe(hub, websocket, ["workflows"])
    websocket.over_mark_since = loop.now  # the client stopped reading meanwhile
    loop.now += SNAPSHOT_REFILL_S
    loop.fire_due()
    assert len(snapshots(websocket)) == SNAPSHOT_BURST  # not written to a client over the mark
    websocket.over_mark_since = None
    hub._client_drained(websocket)
    assert len(snapshots(websocket)) == SNAPSHOT_BURST + 1
    assert client.snapshot_due is None


def test_the_timer_of_a_disconnected_client_sends_nothing():
    hub, loop, websocket, client = hub_with_client()
    for _ in range(SNAPSHOT_BURST + 1):
        subscribe(hub, websocket, ["workflows"])
    timer = client.snapshot_timer
    hub.client_disconnected(websocket)
    assert timer.cancelled and client.snapshot_timer is None


def test_token_bucket_allows_a_burst_then_one_per_refill_interval():
    from madace_status.websocket.ratelimit import TokenBucket
    bucket = TokenBucket(3, 0.5)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_s(10.0) == 0.5
    assert bucket.wait_s(10.25) == 0.25
    assert bucket.take(10.5) and not bucket.take(10.5)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # refilled to the burst, not beyond
