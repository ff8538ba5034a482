"""The hub's ring of recent events is bounded in events and in bytes, keeps no decoded story lists, and a resume
from an event it dropped gets a resync snapshot while one from a kept event replays."""

import asyncio
import json

from madace_status.sync.clients.hub import TOPICS, Hub
from madace_status.sync.clients.subscribers import Event


class RecordingWebSocket:
    over_mark_since = None

    def __init__(self):
        self.frames = []

    def send_frame(self, frame):
        self.frames.append(frame)

    def messages(self):
        decoded = []
        for frame in self.frames:
            length = frame[1] & 0x7F
            offset = 2 if length < 126 else 4 if length == 126 else 10
            decoded.append(json.loads(frame[offset:]))
        return decoded


class FakeClient:
    topics = frozenset(TOPICS)
    workflows = None
    deflate = None

    def __init__(self):
        self.websocket = RecordingWebSocket()

    def wants(self, event):
        return event.topic in self.topics


def closed_loop():
    loop = asyncio.new_event_loop()
    loop.close()  # the hub only reads its clock here; nothing is scheduled
    return loop


def stories_data(count, marker):
    stories = [{"id": "S-%d" % index, "title": "story %d %s" % (index, marker), "status": "TODO"}
               for index in range(count)]
    return {"summary": {"total": count}, "changes": [{"id": "S-0", "from": "BACKLOG", "to": "TODO"}],
            "stories": stories}


def make_hub(**limits):
    return Hub(closed_loop(), lambda topics, workflows: {"summary": {}}, **limits)


def test_the_ring_drops_the_oldest_events_beyond_its_byte_budget_and_keeps_the_newest():
    hub = make_hub(ring_max_bytes=50_000)
    for index in range(40):
        hub.publish("stories_updated", stories_data(100, index), "stories")
    kept = list(hub.ring)
    assert 1 < len(kept) < 40
    assert kept[-1].seq == 40 and [event.seq for event in kept] == list(range(kept[0].seq, 41))
    assert hub.ring_bytes == sum(event.payload_bytes for event in kept) <= 50_000

    hub.publish("stories_updated", stories_data(2_000, "huge"), "stories")  # alone over the budget: still kept
    assert [event.seq for event in hub.ring] == [41]


def test_the_ring_still_holds_at_most_its_event_count():
    hub = make_hub(ring_size=5)
    for index in range(12):
        hub.publish("workflow_removed", {"workflowName": "w%d" % index}, "workflows", "w%d" % index)
    assert [event.seq for event in hub.ring] == [8, 9, 10, 11, 12]
    assert hub.ring_bytes == sum(event.payload_bytes for event in hub.ring)


def test_an_event_keeps_its_story_list_only_encoded_and_recent_events_gives_both_forms():
    hub = make_hub()
    data = stories_data(3, "x")
    hub.publish("stories_updated", data, "stories")
    hub.publish("workflow_removed", {"workflowName": "w"}, "workflows", "w")
    event = hub.ring[0]
    assert "stories" not in event.brief["data"] and event.brief["data"]["storyCount"] == 3
    full = hub.recent_events(10)
    assert [message["seq"] for message in full] == [2, 1]
    assert full[1]["data"]["stories"] == data["stories"] and full[1]["data"]["changes"] == data["changes"]
    brief = hub.recent_events(10, brief=True)
    assert "stories" not in brief[1]["data"] and brief[1]["data"]["changes"] == data["changes"]
    assert brief[0] == full[0] == {"type": "workflow_removed", "timestamp": full[0]["timestamp"], "seq": 2,
                                   "data": {"workflowName": "w"}}
    assert "stories" in data  # the caller's data is left alone


def test_a_resume_from_a_dropped_event_gets_a_resync_and_from_a_kept_one_replays():
    hub = make_hub(ring_max_bytes=30_000)
    for index in range(30):
        hub.publish("stories_updated", stories_data(100, index), "stories")
    oldest_kept = hub.ring[0].seq
    assert oldest_kept > 2

    dropped = FakeClient()
    assert hub._replay_or_resync(dropped, hub.run_id, oldest_kept - 2) is False
    (snapshot,) = dropped.websocket.messages()
    assert (snapshot["type"], snapshot["data"]["reason"]) == ("snapshot", "resync")

    kept = FakeClient()
    assert hub._replay_or_resync(kept, hub.run_id, oldest_kept - 1) is True
    assert [message["seq"] for message in kept.websocket.messages()] == list(range(oldest_kept, 31))


def test_event_payload_bytes_is_the_encoded_size():
    event = Event(1, "workflow_removed", "workflows", "w", {"type": "workflow_removed", "seq": 1, "data": {}})
    assert event.payload_bytes == len(event.outgoing.payload) == len(json.dumps(event.message(),
                                                                                 separators=(",", ":")))


def test_an_event_of_no_topic_reaches_every_client_live_and_on_resume():
    """notices_updated (topic None) is for every client, whatever it subscribed to."""
    from madace_status.sync.clients.broadcast import fan_out
    from madace_status.sync.clients.subscribers import Client, Metrics

    class Socket(RecordingWebSocket):
        buffered_amount = 0

    stories_only = FakeClient()
    stories_only.topics = frozenset(["stories"])
    stories_only.snapshot_due = None
    stories_only.websocket = Socket()
    hub = make_hub()
    hub.publish("notices_updated", {"warnings": ["w"], "errors": []}, None)
    workflows_event = hub.publish("state_updated", {"workflowName": "x"}, "workflows", "x")
    held = fan_out(hub.ring[0], [stories_only], 1024, Metrics())
    fan_out(workflows_event, [stories_only], 1024, Metrics())
    assert held == [] and [m["type"] for m in stories_only.websocket.messages()] == ["notices_updated"]
    assert Client.wants(stories_only, hub.ring[0]) and not Client.wants(stories_only, workflows_event)


def test_a_successor_lists_the_earlier_runs_events_after_its_own_and_they_give_way_as_its_ring_fills():
    before = make_hub(ring_size=4)
    for index in range(3):
        before.publish("workflow_removed", {"workflowName": "old%d" % index}, "workflows", "old%d" % index)
    after = make_hub(ring_size=4, earlier_activity=before.activity())
    assert after.run_id != before.run_id and after.seq == 0 and list(after.ring) == []
    assert [m["data"]["workflowName"] for m in after.recent_events(10)] == ["old2", "old1", "old0"]
    for index in range(2):
        after.publish("workflow_removed", {"workflowName": "new%d" % index}, "workflows", "new%d" % index)
    # Together they hold at most one ring: the oldest earlier event went.
    assert [m["data"]["workflowName"] for m in after.recent_events(10)] == ["new1", "new0", "old2", "old1"]
    assert after.earlier_bytes == sum(event.payload_bytes for event in after.earlier)
    for index in range(2, 6):
        after.publish("workflow_removed", {"workflowName": "new%d" % index}, "workflows", "new%d" % index)
    assert list(after.earlier) == [] and after.earlier_bytes == 0
    assert [m["seq"] for m in after.recent_events(10)] == [6, 5, 4, 3]
