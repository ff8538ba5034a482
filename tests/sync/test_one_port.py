"""The WebSocket on the HTTP port (README, "The WebSocket protocol"): `GET /ws` with an upgrade on the dashboard's
port is the sync service's WebSocket, with the same checks, served by the same event loop, against a real `serve`
with the `websockets` library as the client."""

import asyncio
import json
import os

import pytest
import websockets

from sync_helpers import WAIT_S, run


def http_ws_url(server, query=""):
    return "ws://127.0.0.1:%d/ws%s" % (server.http_port, "?" + query if query else "")


def test_the_http_ports_ws_is_the_sync_service_events_and_all(live, project):
    async def scenario():
        async with websockets.connect(http_ws_url(live, "source=cli")) as ws:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            snapshot = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            assert welcome["type"] == "ping" and snapshot["type"] == "snapshot"
            assert welcome["data"]["runId"] == live.get_json("/api/sync")["runId"]
            document = project.read_state("pm-planning")
            document["currentStep"] = 4
            project.write_state("pm-planning", document, atomic=True)
            event = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            assert event["type"] == "state_updated" and event["data"]["state"]["currentStep"] == 4
            await ws.send(json.dumps({"type": "ping", "timestamp": 1}))
            assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["type"] == "pong"
            return ws.response.headers.get("Sec-WebSocket-Extensions")

    assert run(scenario) is not None  # permessage-deflate negotiated, as on the WebSocket port
    assert live.metrics()["madace_connections_total"] >= 1


@pytest.mark.parametrize("headers, status", [({"Origin": "http://evil.example"}, 403)])
def test_the_same_checks_refuse_the_same_requests(live, headers, status):
    async def scenario():
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(http_ws_url(live), additional_headers=headers):
                pass
        return refused.value.response.status_code

    assert run(scenario) == status


def test_a_token_is_needed_there_too_and_a_stopped_service_is_503(project, serve):
    server = serve(project.root, "--token", "s3cret")

    async def scenario(query):
        try:
            async with websockets.connect(http_ws_url(server, query)) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["type"]
        except websockets.exceptions.InvalidStatus as refused:
            return refused.response.status_code

    assert run(lambda: scenario("")) == 403
    assert run(lambda: scenario("token=s3cret")) == "ping"
    server.post_json("/api/sync", {"action": "stop"}, headers={"Authorization": "Bearer s3cret"})
    # Stopped: the HTTP server itself answers (HTTP/1.0, the JSON error envelope), as for every route.
    refused = server.get("/ws?token=s3cret", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                                      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                      "Sec-WebSocket-Version": "13"})
    assert refused.status == 503 and refused.json()["code"] == "SYNC_STOPPED"


def listening_ports(pid):
    """The TCP ports process `pid` listens on (from /proc: its socket inodes, then the kernel's tables)."""
    inodes = set()
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_one_port_listens_on_the_http_port_only_and_serves_the_websocket_there(project, serve):
    server = serve(project.root, "--one-port")
    assert listening_ports(server.process.pid) == {server.http_port}
    assert server.get_json("/api/sync")["wsUrl"] == "ws://127.0.0.1:%d/ws" % server.http_port

    async def scenario():
        async with websockets.connect(http_ws_url(server)) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["type"]

    assert run(scenario) == "ping"
    two_ports = serve(project.root)
    assert len(listening_ports(two_ports.process.pid)) == 2  # without it: the HTTP port and the WebSocket port
