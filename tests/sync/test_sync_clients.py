"""Client behaviour over real sockets: slow consumers, heartbeats and what clients may send (README, "The WebSocket
protocol"): nothing a client sends is relayed, invalid JSON gets an `error`, a binary message closes with 1003."""

import asyncio
import json
import threading
import time

import pytest
import websockets

from madace_status.project.loader import ProjectPaths
from madace_status.sync.service import SyncService
from sync_helpers import (
    OP_CLOSE, OP_PING, OP_TEXT, RawWebSocket, client_for, close_payload, fence, recv_json, recv_welcome, run,
    send_text, story_board, ws_connect)


# -- what clients send ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spoofed_type", ["state_updated", "workflow_completed", "snapshot", "stories_updated"])
def test_spoofed_server_event_from_a_client_never_reaches_another_client(live, spoofed_type):
    async def scenario():
        async with ws_connect(live.ws_url()) as sender, client_for("own", live.ws_url()) as bystander:
            await recv_welcome(sender)
            await recv_welcome(bystander)
            spoof = {"type": spoofed_type, "timestamp": 1, "seq": 99,
                     "data": {"workflowName": "pm-planning", "state": {"status": "completed"}, "reason": "x"}}
            await send_text(sender, json.dumps(spoof))
            error = await recv_json(sender)
            assert error["type"] == "error"
            assert error["data"]["code"] == "UNSUPPORTED_TYPE"
            assert spoofed_type in error["data"]["message"]
            assert error["seq"] == 0  # an error does not advance seq
            assert await fence(bystander) == []  # the server handled the spoof before this ping: nothing relayed
            assert await fence(sender) == []
            assert live.get_json("/api/activity")["events"] == []
            assert live.get_json("/api/sync")["seq"] == 0
            assert live.get_json("/api/status/workflow/pm-planning")["result"]["data"]["status"] == "in_progress"

    run(scenario)


@pytest.mark.parametrize("client_kind", ["websockets", "own"])
def test_invalid_json_gets_an_error_and_the_connection_stays(live, client_kind):
    async def scenario():
        async with client_for(client_kind, live.ws_url()) as ws:
            await recv_welcome(ws)
            for text, code in (("{not json", "INVALID_JSON"), ("[1, 2]", "INVALID_MESSAGE"),
                               ('{"type": 5}', "INVALID_MESSAGE"), ('"ping"', "INVALID_MESSAGE"),
                               ('{"type": "resume", "runId": "x", "since": -1}', "INVALID_RESUME"),
                               ('{"type": "resume", "since": 1}', "INVALID_RESUME")):
                await send_text(ws, text)
                error = await recv_json(ws)
                assert (error["type"], error["data"]["code"]) == ("error", code), text
                assert set(error["data"]) == {"code", "message"}
            assert await fence(ws) == []  # still open and answering
        assert live.metrics()["madace_client_errors_total"] == 6

    run(scenario)


def test_json_ping_gets_pong_with_its_timestamp_and_pong_gets_nothing(live, project):
    async def scenario():
        async with ws_connect(live.ws_url()) as ws:
            await recv_welcome(ws)
            document = project.read_state("pm-planning")
            document["currentStep"] = 4
            project.write_state("pm-planning", document)
            assert (await recv_json(ws))["seq"] == 1
            await send_text(ws, json.dumps({"type": "ping", "timestamp": 1234567}))
            pong = await recv_json(ws)
            assert pong["type"] == "pong" and pong["data"] == {"timestamp": 1234567}
            assert pong["seq"] == 1  # the current seq, not advanced
            await send_text(ws, json.dumps({"type": "pong"}))
            assert await fence(ws) == []
            assert live.get_json("/api/sync")["seq"] == 1

    run(scenario)


@pytest.mark.parametrize("client_kind", ["websockets", "own"])
def test_binary_message_closes_the_connection_with_1003(live, client_kind):
    async def scenario():
        async with ws_connect(live.ws_url()) as bystander:
            await recv_welcome(bystander)
            if client_kind == "websockets":
                async with ws_connect(live.ws_url()) as ws:
                    await recv_welcome(ws)
                    await ws.send(b"\x00\x01binary")
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await asyncio.wait_for(ws.recv(), 5)
                    assert closed.value.rcvd.code == 1003
            else:
                async with client_for("own", live.ws_url()) as ws:
                    await recv_welcome(ws)
                    ws.send(b"\x00\x01binary")
                    await asyncio.wait_for(ws.wait_closed(), 5)
                    assert ws.close_code == 1003
            assert await fence(bystander) == []  # the others are untouched

    run(scenario)


def test_message_over_64_kib_closes_with_1009_and_64_kib_is_accepted(live):
    async def scenario():
        async with ws_connect(live.ws_url()) as ws:
            await recv_welcome(ws)
            head = '{"type": "ping", "timestamp": 7, "pad": "'
            exactly = head + "x" * (64 * 1024 - len(head) - 2) + '"}'
            assert len(exactly) == 64 * 1024
            await ws.send(exactly)
            assert (await recv_json(ws))["data"] == {"timestamp": 7}
            await ws.send(exactly[:-2] + 'x"}')
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd.code == 1009

    run(scenario)


# -- liveness ------------------------------------------------------------------------------------------------------

def test_silent_peer_is_closed_by_the_heartbeat_while_answering_peers_stay(project, serve):
    heartbeat = 0.2
    server = serve(project.root, "--heartbeat", str(heartbeat))

    async def scenario():
        async with ws_connect(server.ws_url()) as answers, client_for("own", server.ws_url()) as also_answers:
            welcome, _ = await recv_welcome(answers)
            assert welcome["data"]["heartbeatMs"] == 200
            await recv_welcome(also_answers)
            silent = RawWebSocket(server.ws_port)  # never answers a ping
            connected = time.monotonic()

            def watch_silent_peer():
                opcodes, close = [], None
                while close is None:
                    opcode, payload = silent.read_frame(timeout=5)
                    opcodes.append(opcode)
                    if opcode == OP_CLOSE:
                        close = (time.monotonic() - connected, close_payload(payload))
                try:
                    silent.read_frame(timeout=5)
                except EOFError:
                    return opcodes, close, time.monotonic() - connected
                raise AssertionError("data after the close frame")

            try:
                opcodes, (closed_after, (code, reason)), gone_after = await asyncio.to_thread(watch_silent_peer)
            finally:
                silent.close()
            assert OP_PING in opcodes  # it was pinged…
            assert code == 1001 and "heartbeat" in reason
            assert closed_after <= 3 * heartbeat + 0.3, closed_after  # …and dropped after two silent intervals
            assert closed_after >= 2 * heartbeat - 0.05, closed_after  # (the server heard it a little earlier)
            assert gone_after <= closed_after + 1.5  # TCP closed even though it never answered the close
            assert await fence(answers) == [] and await fence(also_answers) == []
            assert server.get_json("/api/sync")["clientCount"] == 2
            metrics = server.metrics()
            assert metrics["madace_heartbeat_closed_total"] == 1

    run(scenario)


# -- slow consumers ------------------------------------------------------------------------------------------------

def test_client_that_stops_reading_never_delays_others_and_later_gets_a_lagging_snapshot(project, serve):
    """A raw client completes the handshake and stops reading (with a 4 KiB receive buffer); ~0.5 MB story
    events pile up on the server until they pass the 1 MiB high-water mark. Meanwhile another client keeps
    getting every event; a small workflow event after each big one must reach it within 100 ms of its publication
    (the broadcaster never waits for the stuck client). When the slow one reads again it gets a `lagging`
    snapshot with the latest state, then live events."""
    project.write_stories(story_board(1000))
    server = serve(project.root)

    async def scenario():
        async with ws_connect(server.ws_url()) as fast:
            await recv_welcome(fast)
            slow = RawWebSocket(server.ws_port, receive_buffer=4096)
            received = []  # (message, ms from publication to arrival here)

            async def read_fast():
                while True:
                    message = await recv_json(fast, timeout=10)
                    received.append((message, time.time() * 1000 - message["timestamp"]))

            async def publish_and_wait(write, *args):
                count = len(received)
                await asyncio.to_thread(write, *args)  # nothing blocks this loop while the fast client reads
                while len(received) == count:
                    await asyncio.sleep(0.005)
                    assert not reader.done(), reader

            async def small_event(minute):
                document = project.read_state("pm-planning")
                document["lastUpdated"] = "2026-11-20T11:%02d:00.000Z" % minute
                await publish_and_wait(project.write_state, "pm-planning", document)

            reader = asyncio.ensure_future(read_fast())
            try:
                board = story_board(1000)
                lagging = False
                for round_number in range(60):
                    # Rename one story: each write is a ~0.5 MB stories_updated for everyone.
                    board = board.replace("[BIG-%d]" % round_number, "[MOVED-%d]" % round_number)
                    await publish_and_wait(project.write_stories, board, True)
                    await small_event(round_number)
                    clients = (await asyncio.to_thread(server.get_json, "/api/sync"))["clients"]
                    if any(c["lagging"] for c in clients):
                        lagging = True
                        break
                assert lagging, "the silent client never passed the high-water mark"
                for minute in (58, 59):  # more while it is stuck
                    await small_event(minute)
            finally:
                reader.cancel()
            small = [round(delay) for message, delay in received if message["type"] == "state_updated"]
            big = [round(delay) for message, delay in received if message["type"] == "stories_updated"]
            assert max(small) < 100, "with a client stuck, events took %s ms to reach another" % small
            # A 0.5 MB event also costs the fast client a JSON parse; on a loaded machine that alone may pass 100 ms.
            assert max(big) < 1000, "with a client stuck, big events took %s ms to reach another" % big
            received = [message for message, _ in received]
            assert [m["seq"] for m in received] == list(range(1, len(received) + 1))
            last_seq = received[-1]["seq"]
            last_stories = [m for m in received if m["type"] == "stories_updated"][-1]["data"]["stories"]
            metrics = server.metrics()
            assert metrics["madace_events_dropped_total"] >= 2

            def drain_slow():
                messages = []
                while True:
                    message = slow.read_message(timeout=10)
                    messages.append(message)
                    if message["type"] == "snapshot" and message["data"]["reason"] == "lagging":
                        return messages

            try:
                messages = await asyncio.to_thread(drain_slow)
                assert [m["type"] for m in messages[:2]] == ["ping", "snapshot"]
                queued = messages[2:-1]
                assert queued, "events were queued before it went over the mark"
                assert [m["seq"] for m in queued] == list(range(1, len(queued) + 1))  # no gap before the pause
                assert queued[-1]["seq"] < last_seq  # the rest was dropped, not queued
                snapshot = messages[-1]
                assert snapshot["seq"] == last_seq
                assert snapshot["data"]["stories"] == last_stories  # the latest state of everything
                workflows = {w["name"]: w for w in snapshot["data"]["workflows"]}
                assert workflows["pm-planning"]["updatedAt"] == "2026-11-20T11:59:00.000Z"
                assert not any(c["lagging"] for c in server.get_json("/api/sync")["clients"])

                document = project.read_state("pm-planning")
                document["status"] = "completed"
                project.write_state("pm-planning", document)
                live_again = await asyncio.to_thread(slow.read_message, 5)  # and it is live again
                assert (live_again["type"], live_again["seq"]) == ("state_updated", last_seq + 1)
            finally:
                slow.close()
            assert server.metrics()["madace_resyncs_total"] >= 1

    run(scenario, timeout=60)


def test_client_stuck_above_the_high_water_mark_too_long_is_closed_with_1008(project):
    """LAGGING_CLOSE_S (30 s) and HIGH_WATER_BYTES have no flags: this runs the service in-process and shortens
    both on its hub (0.5 s, 256 KiB) before anyone connects. The stuck client keeps sending pongs, so it is the
    lagging rule that closes it, not the heartbeat."""
    project.write_stories(story_board(1000))

    async def scenario():
        service = SyncService(ProjectPaths(root=project.root), ws_port=0, poll_interval=0.05, heartbeat_s=0.5)
        await service.start()
        hub = service.hub
        hub.high_water_bytes = 256 * 1024
        hub.lagging_close_s = 0.5
        stop_pongs = threading.Event()
        try:
            url = "ws://127.0.0.1:%d/ws" % service.bound_port
            async with ws_connect(url) as healthy:
                await recv_welcome(healthy)
                stuck = await asyncio.to_thread(RawWebSocket, service.bound_port, "/ws", 4096)

                def keep_talking():  # alive, but never reading; done once the server has closed it
                    while not stop_pongs.wait(0.1):
                        try:
                            stuck.send_frame(OP_TEXT, b'{"type": "pong"}')
                        except OSError:
                            return

                talker = threading.Thread(target=keep_talking, daemon=True)
                talker.start()
                board = story_board(1000)
                for round_number in range(60):
                    board = board.replace("[BIG-%d]" % round_number, "[MOVED-%d]" % round_number)
                    await asyncio.to_thread(project.write_stories, board, True)
                    assert (await recv_json(healthy))["type"] == "stories_updated"
                    lagging = [ws for ws, client in hub.clients.items() if client.lagging_since is not None]
                    if lagging:
                        break
                else:
                    raise AssertionError("the stuck client never passed the high-water mark")
                went_lagging = time.monotonic()
                while len(hub.clients) > 1:
                    assert time.monotonic() - went_lagging < 5, "the stuck client was never closed"
                    await asyncio.sleep(0.02)
                closed_after = time.monotonic() - went_lagging
                assert hub.metrics.lagging_closed_total == 1
                connection = lagging[0].connection
                assert (connection.sent_close_code, connection.sent_close_reason) == (1008, "too slow to keep up")
                assert hub.metrics.heartbeat_closed_total == 0
                assert closed_after >= 0.5, closed_after
                assert await fence(healthy) == []  # the healthy client is untouched
        finally:
            stop_pongs.set()
            await service.stop()

    run(scenario)
