"""Hub.send_snapshot: the project part is encoded once per project version and subscription, and every
snapshot is still a complete, valid message with its own reason, timestamp and seq."""

import asyncio
import json

from madace_status.sync.hub import TOPICS, Hub


class RecordingWebSocket:
    def __init__(self):
        self.frames = []

    def send_frame(self, frame):
        self.frames.append(frame)

    def messages(self):
        return [json.loads(frame[2:] if frame[1] < 126 else frame[4:]) for frame in self.frames]


def closed_loop():
    loop = asyncio.new_event_loop()
    loop.close()  # the hub only reads its clock here; nothing is scheduled
    return loop


class FakeClient:
    def __init__(self, topics=frozenset(TOPICS), workflows=None):
        self.topics = topics
        self.workflows = workflows
        self.websocket = RecordingWebSocket()
        self.deflate = None  # no permessage-deflate


def make_hub(project):
    calls = []

    def snapshot_data(topics, workflows):
        calls.append((topics, workflows))
        return {"summary": {"version": project["version"]}, "topics": sorted(topics)}

    return Hub(closed_loop(), snapshot_data), calls


def test_snapshot_is_encoded_once_per_subscription_until_the_project_changes():
    project = {"version": 1}
    hub, calls = make_hub(project)
    everything, stories_only = FakeClient(), FakeClient(topics=frozenset(["stories"]))
    for reason in ("connected", "lagging"):
        hub.send_snapshot(everything, reason)
        hub.send_snapshot(stories_only, reason)
    assert len(calls) == 2  # one per subscription
    assert [m["data"]["reason"] for m in everything.websocket.messages()] == ["connected", "lagging"]
    assert stories_only.websocket.messages()[0]["data"]["topics"] == ["stories"]

    project["version"] = 2
    hub.project_changed()
    hub.send_snapshot(everything, "resync")
    assert len(calls) == 3
    latest = everything.websocket.messages()[-1]
    assert set(latest) == {"type", "timestamp", "seq", "data"}
    assert latest["type"] == "snapshot" and latest["seq"] == hub.seq
    assert latest["data"] == {"summary": {"version": 2}, "topics": sorted(TOPICS), "reason": "resync"}


def test_snapshot_of_an_empty_project_part_is_still_valid_json():
    hub = Hub(closed_loop(), lambda topics, workflows: {})
    client = FakeClient()
    hub.send_snapshot(client, "connected")
    assert client.websocket.messages()[0]["data"] == {"reason": "connected"}
