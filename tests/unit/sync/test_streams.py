"""The event streams' bounds and ids (sync/clients/streams.py; README, "Server-Sent Events"), with a fake
transport standing for the socket: what a stream that does not read makes the server hold."""

import asyncio

import pytest

from madace_status.sync.clients.hub import TOPICS, Hub
from madace_status.sync.clients.streams import STREAM_HARD_CAP_BYTES, EventStream, parse_last_event_id


class FakeTransport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.written = []
        self.unsent = 0  # bytes "in the kernel buffer": grows with writes, as for a peer that does not read
        self.aborted = False

    def set_write_buffer_limits(self, high=None, low=None):
        self.high = high

    def get_write_buffer_size(self):
        return self.unsent

    def is_closing(self):
        return self.aborted

    def write(self, data):
        self.written.append(data)
        self.unsent += len(data)

    def abort(self):
        self.aborted = True


@pytest.fixture
def hub():
    loop = asyncio.new_event_loop()
    yield Hub(loop, lambda topics, workflows: {"summary": {"x": 1}}, high_water_bytes=1000)
    loop.close()


def open_stream(hub):
    stream = EventStream(hub.streams, "s1", TOPICS, None)
    transport = FakeTransport()
    stream.connection_made(transport)
    hub.streams.streams.add(stream)
    return stream, transport


def test_a_lagging_stream_gets_no_events_then_one_snapshot_once_drained(hub):
    stream, transport = open_stream(hub)
    hub.publish("workflow_removed", {"workflowName": "a"}, "workflows", "a")
    assert transport.written[-1].startswith(b"id: %s:1\ndata: {" % hub.run_id.encode())
    stream.pause_writing()  # the transport's high-water mark: the peer does not read
    hub.publish("workflow_removed", {"workflowName": "b"}, "workflows", "b")
    assert len(transport.written) == 1  # held back
    stream.resume_writing()
    assert b'"type":"snapshot"' in transport.written[-1] and b'"reason":"lagging"' in transport.written[-1]
    assert transport.written[-1].startswith(b"id: %s:2\n" % hub.run_id.encode())  # the snapshot's seq: up to date


def test_a_stream_is_closed_rather_than_grow_past_its_hard_cap(hub):
    stream, transport = open_stream(hub)
    transport.unsent = STREAM_HARD_CAP_BYTES - 10
    hub.publish("workflow_removed", {"workflowName": "a"}, "workflows", "a")
    assert transport.aborted and transport.written == []


def test_a_stream_stuck_lagging_is_closed_at_the_check_after_the_limit(hub):
    stream, transport = open_stream(hub)
    stream.pause_writing()
    stream.lagging_since -= hub.streams.lagging_close_s + 1
    hub.streams.tick(heartbeat_due=True)
    assert transport.aborted and hub.metrics.lagging_closed_total == 1


def test_heartbeat_comments_go_only_when_due(hub):
    stream, transport = open_stream(hub)
    hub.streams.tick(heartbeat_due=False)
    assert transport.written == []
    hub.streams.tick(heartbeat_due=True)
    assert transport.written == [b": heartbeat\n\n"]


@pytest.mark.parametrize("value, parsed", [
    ("abc123:7", ("abc123", 7)), (" abc:0 ", ("abc", 0)), (None, None), ("abc", None), (":5", None),
    ("abc:-1", None), ("abc:²", None), ("ab c:1", None), ("a" * 70 + ":1", None), ("abc:1e3", None),
])
def test_last_event_id_is_only_what_we_wrote(value, parsed):
    assert parse_last_event_id(value) == parsed
