"""Server-Sent Events (README, "Server-Sent Events"): `GET /api/events` against a real `serve`, read by a raw
socket the way any SSE client reads it, and by `curl -N` as the README shows."""

import json
import os
import socket
import subprocess
import time

import pytest

from sync_helpers import WAIT_S

STREAM_HEAD_MAX = 64 * 1024


class SseReader:
    """One event stream over a plain socket: the response head, then events as {id, data} dicts."""

    def __init__(self, port, path="/api/events", headers=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port, "Accept: text/event-stream"]
        lines += ["%s: %s" % item for item in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {name.lower(): value.strip() for name, _, value in
                        (line.partition(":") for line in header_lines)}

    def _until(self, marker, deadline=None):
        deadline = deadline or time.monotonic() + WAIT_S
        while marker not in self.buffer:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the stream ended; received: %r" % self.buffer[-500:])
            self.buffer += chunk
        block, self.buffer = self.buffer.split(marker, 1)
        return block

    def body(self):
        """The rest of a non-stream answer (an error envelope)."""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            self.buffer += chunk
        return json.loads(self.buffer.decode())

    def next_event(self, timeout=WAIT_S):
        """The next event, comments (heartbeats) skipped."""
        deadline = time.monotonic() + timeout
        while True:
            block = self._until(b"\n\n", deadline).decode("utf-8")
            fields = [line.partition(": ") for line in block.split("\n") if line and not line.startswith(":")]
            if fields:
                event = {name: value for name, _, value in fields}
                event["data"] = json.loads(event["data"])
                return event

    def close(self):
        self.sock.close()


@pytest.fixture
def streams():
    opened = []

    def open_(*args, **kwargs):
        reader = SseReader(*args, **kwargs)
        opened.append(reader)
        return reader

    yield open_
    for reader in opened:
        reader.close()


def step_to(project, step):
    document = project.read_state("pm-planning")
    document["currentStep"] = step
    project.write_state("pm-planning", document, atomic=True)


def test_welcome_snapshot_then_each_event_with_its_id_exactly_as_over_websocket(live, project, streams):
    stream = streams(live.http_port)
    assert stream.status == 200 and stream.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert stream.headers["cache-control"] == "no-store"
    run_id = live.get_json("/api/sync")["runId"]
    welcome, snapshot = stream.next_event(), stream.next_event()
    assert welcome["id"] == "%s:0" % run_id and welcome["data"]["type"] == "ping"
    assert welcome["data"]["data"]["runId"] == run_id and welcome["data"]["data"]["project"]["name"] == "project"
    assert snapshot["data"]["type"] == "snapshot" and snapshot["data"]["data"]["reason"] == "connected"
    assert snapshot["data"]["data"]["summary"] == live.get_json("/api/status")["data"]
    step_to(project, 4)
    event = stream.next_event()
    assert event["id"] == "%s:1" % run_id
    assert event["data"]["type"] == "state_updated" and event["data"]["seq"] == 1
    assert event["data"]["data"]["state"]["currentStep"] == 4
    assert live.get_json("/api/activity")["events"][0] == event["data"]  # the very envelope the log keeps


def test_topics_filter_a_stream_as_they_filter_a_websocket(live, project, streams):
    stories_only = streams(live.http_port, "/api/events?topics=stories")
    stories_only.next_event(), stories_only.next_event()  # welcome, snapshot
    step_to(project, 4)  # a workflow event: not for this stream
    path = os.path.join(project.root, "docs", "workflow-status.md")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text.replace("Integrate WebSocket for real-time updates", "Integrate WebSocket, renamed"))
    event = stories_only.next_event()
    assert event["data"]["type"] == "stories_updated" and event["data"]["seq"] == 2  # seq 1 was not for it
    assert streams(live.http_port, "/api/events?topics=nonsense").status == 400


def test_last_event_id_resumes_losslessly_or_resyncs_with_a_snapshot(live, project, streams):
    first = streams(live.http_port)
    first.next_event(), first.next_event()
    step_to(project, 4)
    seen = first.next_event()["id"]
    first.close()
    step_to(project, 5)  # while away
    live.wait_seq(2)
    resumed = streams(live.http_port, headers={"Last-Event-ID": seen})
    event = resumed.next_event()
    assert event["data"]["type"] == "state_updated" and event["data"]["seq"] == 2  # no welcome, no snapshot
    assert live.metrics()["madace_resyncs_total"] == 0
    stale = streams(live.http_port, headers={"Last-Event-ID": "0123456789abcdef:1"})  # another run
    assert stale.next_event()["data"]["type"] == "ping"  # the new run's welcome first, as on a fresh start
    resync = stale.next_event()
    assert resync["data"]["type"] == "snapshot" and resync["data"]["data"]["reason"] == "resync"
    assert live.metrics()["madace_resyncs_total"] == 1


def test_a_stream_needs_the_token_like_the_api_and_a_stopped_service_is_a_clear_503(project, serve, streams):
    server = serve(project.root, "--token", "s3cret")
    refused = streams(server.http_port)
    assert refused.status == 401 and refused.body()["code"] == "UNAUTHORIZED"
    assert streams(server.http_port, "/api/events?token=s3cret").status == 200
    bearer = streams(server.http_port, headers={"Authorization": "Bearer s3cret"})
    assert bearer.status == 200 and bearer.next_event()["data"]["type"] == "ping"
    server.post_json("/api/sync", {"action": "stop"}, headers={"Authorization": "Bearer s3cret"})
    stopped = streams(server.http_port, "/api/events?token=s3cret")
    assert stopped.status == 503 and "sync service is stopped" in stopped.body()["error"]


def thread_count(pid):
    with open("/proc/%d/status" % pid, encoding="ascii") as status:
        return int(next(line for line in status if line.startswith("Threads:")).split()[1])


def test_fifty_streams_cost_no_thread_and_all_get_the_event(live, project, streams):
    before = thread_count(live.process.pid)
    opened = [streams(live.http_port) for _ in range(50)]
    for stream in opened:
        stream.next_event(), stream.next_event()
    step_to(project, 4)
    assert all(stream.next_event()["data"]["seq"] == 1 for stream in opened)
    # The handler threads that wrote the heads (at most HTTP_WORKERS, started on demand) are all the growth.
    assert thread_count(live.process.pid) - before <= 32
    assert live.get("/healthz").status == 200


def test_curl_dash_n_as_the_readme_shows(live, project):
    curl = subprocess.Popen(["curl", "-sN", "http://127.0.0.1:%d/api/events" % live.http_port],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = iter(curl.stdout.readline, b"")
        assert next(lines).startswith(b"id: ") and b'"type":"ping"' in next(lines)
        next(lines), next(lines), next(lines)  # blank, the snapshot's id and data
        step_to(project, 4)
        received = b""
        while b'"type":"state_updated"' not in received:
            received += next(lines)
    finally:
        curl.kill()
        curl.wait(WAIT_S)
        curl.stdout.close()
        curl.stderr.close()


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}])
def test_another_sites_page_cannot_hold_a_stream_open(live, streams, headers):
    refused = streams(live.http_port, headers=headers)
    assert refused.status == 403 and refused.body()["code"] == "CROSS_SITE_REFUSED"
    own = streams(live.http_port, headers={"Origin": "http://127.0.0.1:%d" % live.http_port,
                                           "Sec-Fetch-Site": "same-origin"})
    assert own.status == 200 and own.next_event()["data"]["type"] == "ping"
