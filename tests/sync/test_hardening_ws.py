"""Hostile WebSocket peers against a real `serve` (issue 10 §3, §4, §8): a client that floods requests and never
reads, a peer that fills the output budget, descriptors exhausted by idle sockets, the stopped-service
responder held open, messages nested too deep, and `since` values that are not plain ASCII numbers.

Each test mounts the attack, asserts the refusal or the bound, and that a well-behaved client is still served.
"""

import asyncio
import json
import os
import resource
import select
import socket
import threading
import time
import urllib.parse

from madace_status.project.loader import ProjectPaths
from madace_status.websocket.inbound import InboundLimits
from madace_status.sync.clients.hub import MAX_SEQ, MAX_SEQ_DIGITS, SNAPSHOT_BURST
from madace_status.sync.service import STOPPED_MAX_CONNECTIONS, SyncService
from madace_status.websocket import ConnectionClosed, serve as ws_serve
from madace_status.websocket.flow import OUTPUT_HARD_CAP_BYTES, OUTPUT_HIGH_WATER_BYTES
from madace_status.websocket.protocol import CLOSE_TIMEOUT_S
from sync_helpers import (
    OP_CLOSE, OP_TEXT, WAIT_S, RawWebSocket, client_frame, close_payload, fence, raw_http, recv_json, recv_until, recv_welcome, run,
    send_text, story_board, upgrade_request, ws_connect)

TINY_RECEIVE_BUFFER = 4096  # the flooder's SO_RCVBUF: its TCP window stays small
FLOOD_MESSAGES = 20000  # of each kind, as in the report
RSS_GROWTH_BOUND_KIB = 32 * 1024  # without the budget, this flood grows the server by gigabytes
CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def masked(payload, opcode=OP_TEXT):
    return client_frame(opcode, payload)


def frame_of(document):
    return masked(json.dumps(document, separators=(",", ":")).encode())


def send_in_background(sock, data, timeout, repeat_until=None):
    """sendall(data) in a thread (again and again until the event `repeat_until` is set, if given); returns
    (thread, outcome dict: "done" or the exception's name, e.g. timeout once the server stopped reading)."""
    outcome = {}

    def send():
        sock.settimeout(timeout)
        try:
            sock.sendall(data)
            while repeat_until is not None and not repeat_until.is_set():
                sock.sendall(data)
            outcome["result"] = "done"
        except OSError as error:
            outcome["result"] = type(error).__name__
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, outcome


# -- §4: a client that never reads ---------------------------------------------------------------------------------

def test_flood_of_subscribe_and_resume_from_a_non_reader_is_cut_off_memory_bounded_and_others_served(project,
                                                                                                    serve):
    # Snapshots of ~0.5 MB: the flood asks for 40,000 of them (20 GB). The message rate lets a burst through
    # (of which the snapshot budget answers 5 and coalesces the rest), drops the rest with one RATE_LIMITED
    # error, and closes the flooder with 1008 once it goes on (issue 19); its socket is not read meanwhile.
    project.write_stories(story_board(1000, title_padding=100))
    server = serve(project.root)
    pid = server.process.pid

    async def scenario():
        async with ws_connect(server.ws_url()) as healthy:
            await recv_welcome(healthy)
            before = rss_kib(pid)
            flooder = await asyncio.to_thread(RawWebSocket, server.ws_port, "/ws", TINY_RECEIVE_BUFFER)
            try:
                flood = b"".join([frame_of({"type": "subscribe", "topics": ["stories", "workflows"]}),
                                  frame_of({"type": "resume", "runId": "not-this-run", "since": 0})]) * FLOOD_MESSAGES
                sender, outcome = send_in_background(flooder.sock, flood, timeout=3.0)
                peak = before
                while sender.is_alive():  # until the flood is sent, or blocked because the server stopped reading
                    peak = max(peak, rss_kib(pid))
                    await asyncio.sleep(0.05)
                for _ in range(20):  # and a while after it
                    peak = max(peak, rss_kib(pid))
                    await asyncio.sleep(0.05)
                assert peak - before < RSS_GROWTH_BOUND_KIB, (before, peak)

                # The well-behaved client still gets live events at once.
                document = project.read_state("pm-planning")
                document["currentStep"] = document.get("currentStep", 1) + 1
                project.write_state("pm-planning", document)
                live = await recv_until(healthy, lambda m: m["type"] == "state_updated")
                assert live[-1]["data"]["workflowName"] == "pm-planning"
                assert await fence(healthy) == []

                # The flooder was closed: what it can still read is a few snapshots, the one error, and the close.
                received = await asyncio.to_thread(flooder.read_until_closed, 15.0)
                texts = [json.loads(payload) for opcode, payload in received if opcode == 1]
                snapshots = [m for m in texts if m["type"] == "snapshot"]
                assert len(snapshots) <= SNAPSHOT_BURST + 1, len(snapshots)  # out of 40,000 asked for
                errors = [m["data"]["code"] for m in texts if m["type"] == "error"]
                assert errors in ([], ["RATE_LIMITED"]), errors  # [] when its full buffer held the error back
                closes = [payload for opcode, payload in received if opcode == 8]
                assert not closes or int.from_bytes(closes[0][:2], "big") == 1008
                assert server.metrics()["madace_rate_limited_total"] >= 1
                assert len(server.get_json("/api/sync")["clients"]) == 1  # the healthy one
            finally:
                flooder.close()
        assert "messages over the rate limit" in server.stderr_text
        assert "Traceback" not in server.stderr_text

    run(scenario, timeout=90)


def test_non_reader_over_the_mark_is_closed_with_1008_while_heartbeats_spare_it(project):
    """LAGGING_CLOSE_S (30 s) has no flag: the service runs in-process with it shortened to 3 s, and a heartbeat of
    1 s. The flooder sends JSON pings and never reads: the pongs pass the mark, the server stops reading it (so it
    hears nothing from it for longer than the heartbeat's two intervals — yet that rule must not be what closes
    it), and it is closed with 1008. The message rate would cut the flood before that (issue 19): it is turned
    off here, to reach the lagging rule."""
    async def scenario():
        service = SyncService(ProjectPaths(root=project.root), ws_port=0, poll_interval=0.05, heartbeat_s=1.0,
                              inbound_limits=InboundLimits(rate_per_s=None))
        await service.start()
        hub = service.hub
        hub.lagging_close_s = 3.0
        try:
            async with ws_connect("ws://127.0.0.1:%d/ws" % service.bound_port) as healthy:
                await recv_welcome(healthy)
                flooder = await asyncio.to_thread(RawWebSocket, service.bound_port, "/ws", TINY_RECEIVE_BUFFER)
                try:
                    stop = threading.Event()
                    pings = frame_of({"type": "ping", "timestamp": 1}) * 10000
                    sender, _ = send_in_background(flooder.sock, pings, timeout=1.0, repeat_until=stop)
                    websocket = None
                    deadline = time.monotonic() + 10
                    while websocket is None:
                        assert time.monotonic() < deadline, "the flooder never went over the mark"
                        over = [ws for ws in hub.clients if ws.over_mark_since is not None]
                        websocket = over[0] if over else None
                        await asyncio.sleep(0.01)
                    assert websocket.reading_paused  # backpressure: its socket is no longer read
                    assert websocket.buffered_amount <= OUTPUT_HIGH_WATER_BYTES + 1024  # over by one pong at most
                    deadline = time.monotonic() + 10
                    while websocket in hub.clients:
                        assert time.monotonic() < deadline, "the flooder was never closed"
                        assert websocket.buffered_amount <= OUTPUT_HARD_CAP_BYTES
                        await asyncio.sleep(0.02)
                    connection = websocket.connection
                    assert (connection.sent_close_code, connection.sent_close_reason) == (1008, "too slow to keep up")
                    assert hub.metrics.lagging_closed_total == 1
                    assert hub.metrics.heartbeat_closed_total == 0
                    await fence(healthy)  # the healthy client (answering pings) is still served
                finally:
                    stop.set()
                    flooder.close()
                    await asyncio.to_thread(sender.join, 15)
        finally:
            await service.stop()

    run(scenario)


def test_writes_beyond_the_hard_cap_close_with_1008_and_are_not_buffered():
    """The WebSocket layer on its own: a server that keeps sending to a peer that does not read is stopped at
    OUTPUT_HARD_CAP_BYTES (ConnectionClosed 1008), and the peer, reading at last, finds the close 1008 there."""
    async def scenario():
        connected = asyncio.get_running_loop().create_future()
        server = await ws_serve(on_connect=connected.set_result, on_message=lambda ws, message: None)
        try:
            peer = await asyncio.to_thread(RawWebSocket, server.port, "/", TINY_RECEIVE_BUFFER)
            websocket = await asyncio.wait_for(connected, WAIT_S)
            chunk = b"x" * 60000
            sent = 0
            highest = 0
            error = None
            while sent < 64 * OUTPUT_HARD_CAP_BYTES:
                try:
                    websocket.send(chunk)
                except ConnectionClosed as closed:
                    error = closed
                    break
                sent += len(chunk)
                highest = max(highest, websocket.buffered_amount)
            assert error is not None and error.code == 1008, error
            assert highest <= OUTPUT_HARD_CAP_BYTES
            assert sent < 2 * OUTPUT_HARD_CAP_BYTES + 8 * 1024 * 1024  # what the kernel took, plus the budget

            def read_to_close():
                while True:
                    opcode, payload = peer.read_frame(timeout=20)
                    if opcode == OP_CLOSE:
                        return close_payload(payload)
            code, reason = await asyncio.to_thread(read_to_close)
            assert (code, reason) == (1008, "output over budget")
            peer.close()
        finally:
            await server.close()

    run(scenario)


def test_handler_mode_echo_to_a_non_reader_stops_reading_it_instead_of_buffering():
    """The same budget in recv() mode: an echo handler that never awaits drain() answers a peer that floods and
    never reads; the server stops parsing and reading it at the mark, so the echoes stay within it."""
    async def scenario():
        handled = []
        seen = {}

        async def echo(websocket):
            seen["websocket"] = websocket
            async for message in websocket:
                handled.append(len(message))
                websocket.send(message)

        server = await ws_serve(echo)
        try:
            peer = await asyncio.to_thread(RawWebSocket, server.port, "/", TINY_RECEIVE_BUFFER)
            flood = masked(b"e" * 1000) * 20000  # 20 MB of echoes asked for, until the server stops reading
            stop = threading.Event()
            sender, _ = send_in_background(peer.sock, flood, timeout=1.0, repeat_until=stop)
            deadline = time.monotonic() + 10
            while "websocket" not in seen or not seen["websocket"].reading_paused:
                assert time.monotonic() < deadline, "the echo server never stopped reading the flooder"
                await asyncio.sleep(0.01)
            websocket = seen["websocket"]
            await asyncio.to_thread(sender.join, 20)  # it ends on a send timeout: the server no longer reads
            assert not sender.is_alive()
            count = len(handled)
            await asyncio.sleep(0.3)
            assert len(handled) == count  # nothing more handled while the peer does not read
            assert count < 40000
            assert websocket.buffered_amount <= OUTPUT_HIGH_WATER_BYTES + 2 * 1024
            stop.set()
            peer.close()
        finally:
            await server.close()

    run(scenario)


def test_peer_that_half_closes_with_output_pending_and_never_reads_is_dropped():
    """asyncio's close after EOF waits for the output to be flushed; a peer that shut down its sending side and never
    reads would hold the connection and its output forever. It is aborted after CLOSE_TIMEOUT_S instead."""
    async def scenario():
        server = await ws_serve(on_connect=lambda ws: ws.send(b"x" * 8 * 1024 * 1024))
        try:
            peer = await asyncio.to_thread(RawWebSocket, server.port, "/", TINY_RECEIVE_BUFFER)
            deadline = time.monotonic() + 10
            while not any(ws.buffered_amount for ws in server.connections):
                assert time.monotonic() < deadline, "the server never had output pending"
                await asyncio.sleep(0.01)
            peer.sock.shutdown(socket.SHUT_WR)
            started = time.monotonic()
            while server.connections:
                assert time.monotonic() - started < CLOSE_TIMEOUT_S + 10, "the half-closed peer was never dropped"
                await asyncio.sleep(0.05)
            peer.close()
        finally:
            await server.close()

    run(scenario)


# -- §8: input that must be refused, not crash --------------------------------------------------------------------

def test_message_nested_too_deep_gets_invalid_json_and_the_connection_stays(live):
    async def scenario():
        async with ws_connect(live.ws_url()) as ws:
            await recv_welcome(ws)
            # The 2 KB message: past the recursion limit where the server's stack is deeper (an array,
            # so INVALID_MESSAGE where it parses); 5,000 levels are past it everywhere.
            for text, codes in (("[" * 960 + "]" * 960, ("INVALID_JSON", "INVALID_MESSAGE")),
                                ('{"type": "subscribe", "topics": %s}' % ("[" * 5000 + "]" * 5000), ("INVALID_JSON",)),
                                ("[" * 30000, ("INVALID_JSON",))):
                await send_text(ws, text)
                error = await recv_json(ws)
                assert error["type"] == "error" and error["data"]["code"] in codes, (len(text), error)
            nested_timestamp = '{"type": "ping", "timestamp": %s}' % ("[" * 900 + "]" * 900)
            await send_text(ws, nested_timestamp)
            pong = await recv_json(ws)
            assert (pong["type"], pong["data"]["timestamp"]) == ("pong", None)  # only a scalar is echoed
            assert await fence(ws) == []
        assert "Traceback" not in live.stderr_text
        assert "RecursionError" not in live.stderr_text

    run(scenario)


def test_since_that_is_not_a_short_ascii_number_is_refused_400_at_the_handshake(live):
    for since in ("\u00b2", "\u0661\u0662", "9" * 5000, "1" * (MAX_SEQ_DIGITS + 1), "-1", "1e3", ""):
        target = "/ws?runId=abc&since=" + urllib.parse.quote(since)
        response = raw_http(live.ws_port, upgrade_request(live.ws_port, path=target))
        assert response.status == 400, (since[:20], response)
        assert b"since" in response.body, response.body

    malformed = raw_http(live.ws_port, upgrade_request(live.ws_port, path="//[x/ws"))  # urlsplit: Invalid IPv6 URL
    assert malformed.status == 400, malformed

    async def scenario():  # the longest valid since still connects (an unknown run: a resync snapshot)
        async with ws_connect(live.ws_url("runId=abc&since=" + "9" * MAX_SEQ_DIGITS)) as ws:
            await recv_welcome(ws, reason="resync")
    run(scenario)
    assert "Traceback" not in live.stderr_text


def test_resume_with_a_huge_or_non_integer_since_gets_invalid_resume_and_the_connection_stays(live):
    async def scenario():
        async with ws_connect(live.ws_url()) as ws:
            welcome, _ = await recv_welcome(ws)
            run_id = welcome["data"]["runId"]
            for since in (MAX_SEQ + 1, 10 ** 4000, "\u00b2", "12", 1.5, True, -1):
                await send_text(ws, json.dumps({"type": "resume", "runId": run_id, "since": since}))
                error = await recv_json(ws)
                assert (error["type"], error["data"]["code"]) == ("error", "INVALID_RESUME"), str(since)[:20]
            # 5,000 digits: past the int-parsing limit of Python 3.11+ (INVALID_JSON there), else INVALID_RESUME.
            await send_text(ws, '{"type": "resume", "runId": "%s", "since": %s}' % (run_id, "9" * 5000))
            error = await recv_json(ws)
            assert error["data"]["code"] in ("INVALID_JSON", "INVALID_RESUME")
            await send_text(ws, json.dumps({"type": "resume", "runId": run_id, "since": 0}))
            assert await fence(ws) == []  # a valid resume with nothing to replay: nothing sent
        assert "Traceback" not in live.stderr_text

    run(scenario)


# -- §3: descriptors exhausted --------------------------------------------------------------------------------------

NOFILE_LIMIT = 64
IDLE_SOCKETS = 120
CPU_BOUND_S = 0.4  # over 2 s; asyncio's own accept loop spent about 1 s of CPU in 2 s here


def test_out_of_descriptors_the_accept_loop_backs_off_and_recovers_by_itself(live):
    pid = live.process.pid
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (NOFILE_LIMIT, NOFILE_LIMIT))
    idle = []
    try:
        for _ in range(IDLE_SOCKETS):  # the kernel completes them into the backlog; the server accepts until EMFILE
            idle.append(socket.create_connection(("127.0.0.1", live.ws_port), timeout=WAIT_S))
        deadline = time.monotonic() + WAIT_S
        while open_fds(pid) < NOFILE_LIMIT:
            assert time.monotonic() < deadline, "the server never ran out of descriptors (%d)" % open_fds(pid)
            time.sleep(0.02)
        time.sleep(0.3)
        started = cpu_seconds(pid)
        time.sleep(2.0)
        spent = cpu_seconds(pid) - started
        assert spent < CPU_BOUND_S, "the server spent %.2f s of CPU in 2 s while out of descriptors" % spent
    finally:
        for sock in idle:
            sock.close()

    async def scenario():  # a new handshake works again, without restarting anything
        deadline = time.monotonic() + 15
        while True:
            try:
                async with ws_connect(live.ws_url()) as ws:
                    await recv_welcome(ws)
                    return
            except (OSError, asyncio.TimeoutError) as error:
                assert time.monotonic() < deadline, "no handshake after the descriptors came back: %r" % error
                await asyncio.sleep(0.2)
    run(scenario)
    backoffs = [line for line in live.stderr_lines if "cannot accept connections" in line]
    assert 1 <= len(backoffs) <= 20, len(backoffs)  # one line per back-off, not one per attempt
    assert not [line for line in live.stderr_lines if "socket.accept() out of system resource" in line]


def test_stopped_service_holds_a_bounded_number_of_connections(live):
    response = live.post_json("/api/sync", {"action": "stop"})
    assert response.status == 200, response
    assert live.get_json("/api/sync")["running"] is False
    extra = 30
    sockets = [socket.create_connection(("127.0.0.1", live.ws_port), timeout=WAIT_S)
               for _ in range(STOPPED_MAX_CONNECTIONS + extra)]
    try:
        dropped = set()
        deadline = time.monotonic() + WAIT_S
        while len(dropped) < extra and time.monotonic() < deadline:
            readable, _, _ = select.select([s for s in sockets if s not in dropped], [], [], 0.1)
            for sock in readable:
                dropped.add(sock)  # EOF or reset: dropped at once
        assert len(dropped) == extra, len(dropped)
        readable, _, _ = select.select([s for s in sockets if s not in dropped], [], [], 0.3)
        assert readable == []  # the others are held (until STOPPED_TIMEOUT_S or their request)
    finally:
        for sock in sockets:
            sock.close()
    deadline = time.monotonic() + WAIT_S
    while True:  # once they are gone, a handshake is told the service is stopped
        answer = raw_http(live.ws_port, upgrade_request(live.ws_port))
        if answer.status == 503:
            break
        assert time.monotonic() < deadline, answer
        time.sleep(0.05)
    assert b"stopped" in answer.body


def test_on_a_loop_without_add_reader_the_server_falls_back_to_asyncios_accept_loop():
    """The proactor loop of Windows has no add_reader: serve() then uses loop.create_server (stood in for here by
    a loop whose add_reader raises NotImplementedError, as the proactor's does)."""
    async def scenario():
        loop = asyncio.get_running_loop()

        def no_add_reader(*args):
            raise NotImplementedError
        loop.add_reader = no_add_reader
        try:
            server = await ws_serve(on_message=lambda ws, message: ws.send(message))
            try:
                async with ws_connect("ws://127.0.0.1:%d/" % server.port) as client:
                    await client.send("hello")
                    assert await asyncio.wait_for(client.recv(), WAIT_S) == "hello"
            finally:
                await server.close()
        finally:
            del loop.add_reader

    run(scenario)
