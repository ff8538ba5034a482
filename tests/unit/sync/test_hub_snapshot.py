"""Hub.send_snapshot: the project part is encoded once per project version and subscription, and every
snapshot is still a complete, valid message with its own reason, timestamp and seq."""

import asyncio
import json

from madace_status.sync.clients.hub import TOPICS, Hub
from madace_status.websocket import deflate
from madace_status.websocket.connection import CLIENT, Connection
from madace_status.websocket.deflate import DeflateParams


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


def deflate_messages(websocket):
    """The messages a permessage-deflate client decodes from the recorded frames, with one inflater kept across
    messages (as Chromium does even when the server takes over no context)."""
    connection = Connection(CLIENT, deflate=DeflateParams(receive_no_context_takeover=False))
    connection.receive_data(b"".join(websocket.frames))
    return [json.loads(event.data) for event in connection.events()]


def test_deflate_clients_share_one_compressed_project_part_per_window_size(monkeypatch):
    project = {"version": 1}
    hub, calls = make_hub(project)
    compressed = []
    real_compress_chunk = deflate.compress_chunk
    monkeypatch.setattr(deflate, "compress_chunk",
                        lambda data, bits: compressed.append(bits) or real_compress_chunk(data, bits))
    clients = [FakeClient() for _ in range(3)] + [FakeClient(), FakeClient()]
    for client in clients[:3]:
        client.deflate = DeflateParams(min_compress_bytes=0)
    clients[3].deflate = DeflateParams(send_window_bits=10, min_compress_bytes=0)
    for reason, client in zip(("connected", "lagging", "resync", "connected", "connected"), clients):
        hub.send_snapshot(client, reason)
    assert compressed == [15, 10] and len(calls) == 1  # one compression per window size, one encoding
    for client in clients[:4]:
        assert client.websocket.frames[0][0] & 0x40  # RSV1: compressed
    plain = clients[4].websocket.messages()[0]
    for client, reason in zip(clients[:4], ("connected", "lagging", "resync", "connected")):
        hub.send_snapshot(client, "subscribed")  # a second compressed message on the same stream
        first, second = deflate_messages(client.websocket)
        assert first["data"] == dict(plain["data"], reason=reason)
        assert second["data"] == dict(plain["data"], reason="subscribed")
