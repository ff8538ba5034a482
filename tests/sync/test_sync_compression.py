"""permessage-deflate on a real `serve` process: who gets it (--compression auto|off and its variable), the
same compressed frame for every deflate client of an event, snapshots that inflate to what plain clients get, and
the /metrics byte counters."""

import zlib

import pytest

from madace_status.websocket.deflate import MIN_COMPRESS_BYTES
from sync_helpers import (
    OP_TEXT, ProjectFiles, RawWebSocket, ServeProcess, clean_env, own_client, recv_json, recv_welcome, run, serve_args,
    ws_connect)

DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
TAIL = b"\x00\x00\xff\xff"


@pytest.fixture
def project(tmp_path):
    return ProjectFiles.copy_of_sample(tmp_path / "project")


def inflate(payload):
    return zlib.decompressobj(-15).decompress(payload + TAIL)


def read_text(peer):
    """(the text payload as the peer would use it, whether it came compressed), skipping pings."""
    while True:
        opcode, payload = peer.read_frame()
        if opcode == OP_TEXT:
            return (inflate(payload) if peer.last_rsv1 else payload), peer.last_rsv1, payload


def change_workflow(project):
    document = project.read_state("pm-planning")
    document["currentStep"] = document.get("currentStep", 0) + 1
    project.write_state("pm-planning", document)


def test_every_deflate_client_gets_the_same_compressed_event_frame_and_snapshots_inflate_to_the_plain_ones(project):
    server = ServeProcess(serve_args(project.root)).wait_started()
    try:
        peers = [RawWebSocket(server.ws_port, extra_lines=[DEFLATE_OFFER]) for _ in range(2)]
        plain = RawWebSocket(server.ws_port)
        for peer in peers:
            assert "permessage-deflate; server_no_context_takeover; client_no_context_takeover" in peer.response_head
        assert "permessage-deflate" not in plain.response_head.lower()
        snapshots = []
        for peer in peers + [plain]:
            read_text(peer)  # the welcome
            text, compressed, wire = read_text(peer)
            assert compressed == (peer is not plain)
            snapshots.append((text, wire))
        for (text, wire), (plain_text, _) in zip(snapshots[:2], [snapshots[2]] * 2):
            assert b'"data":' + plain_text.split(b'"data":', 1)[1] == b'"data":' + text.split(b'"data":', 1)[1]
            assert len(wire) * 3 < len(text)
        change_workflow(project)
        events = [read_text(peer) for peer in peers + [plain]]
        assert len(events[2][0]) >= MIN_COMPRESS_BYTES
        assert events[0][2] == events[1][2] and events[0][1] and events[1][1]  # one compressed frame for both
        assert events[0][0] == events[1][0] == events[2][0]
        metrics = server.metrics()
        assert metrics["madace_compression_in_bytes_total"] > 3 * metrics["madace_compression_out_bytes_total"] > 0
        clients = server.get_json("/api/sync")["clients"]
        assert sorted(client["compression"] for client in clients) == [False, True, True]
        for peer in peers + [plain]:
            peer.close()
    finally:
        server.stop()


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_compression_off_declines_every_offer(project, how):
    if how == "flag":
        server = ServeProcess(serve_args(project.root, "--compression", "off"))
    else:
        server = ServeProcess(serve_args(project.root), env=clean_env(MADACE_STATUS_COMPRESSION="off"))
    server.wait_started()
    try:
        async def scenario():
            async with ws_connect(server.ws_url(), compression="deflate") as client:
                assert "Sec-WebSocket-Extensions" not in client.response.headers
                await recv_welcome(client)
        run(scenario)
        assert server.metrics()["madace_compression_out_bytes_total"] == 0
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["websockets", "own"])
def test_deflate_clients_follow_events(project, kind):
    server = ServeProcess(serve_args(project.root)).wait_started()
    try:
        async def scenario():
            if kind == "websockets":
                connection = ws_connect(server.ws_url(), compression="deflate")
            else:
                connection = own_client(server.ws_url())
            async with connection as client:
                if kind == "websockets":
                    assert client.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
                else:
                    assert client.connection.deflate is not None
                _, snapshot = await recv_welcome(client)
                assert snapshot["data"]["reason"] == "connected"
                change_workflow(project)
                event = await recv_json(client)
                assert event["seq"] == 1
        run(scenario)
    finally:
        server.stop()
