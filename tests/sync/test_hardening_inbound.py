"""Fair under attack (issue 19; README, "Security"): what one peer sends cannot slow, starve or bloat the others.
Each defence of websocket/inbound.py is mounted against a real server: the WebSocket server in this process
with its limits shortened where a default would make the test wait, and a real `serve` with the defaults."""

import asyncio
import json
import socket
import time
import zlib

from madace_status.websocket import serve as ws_serve
from madace_status.websocket.inbound import MAX_FRAMES_PER_MESSAGE, MESSAGE_BURST, InboundLimits
from sync_helpers import (OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, WAIT_S, RawWebSocket, client_frame, close_payload,
                          fence, recv_until, recv_welcome, run, upgrade_request, ws_connect)

OP_CONTINUATION = 0
DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate"


def close_of(frames):
    closes = [payload for opcode, payload in frames if opcode == OP_CLOSE]
    assert closes, "no close frame: %r" % [opcode for opcode, _ in frames]
    return close_payload(closes[0])


class EchoServer:
    """A WebSocket echo server in this process with the given inbound limits; records rate-limit notices."""

    def __init__(self, limits):
        self.limits = limits
        self.rate_limited = []
        self.server = None

    async def __aenter__(self):
        def echo(websocket, message):
            websocket.send(message)
        self.server = await ws_serve(on_message=echo, inbound_limits=self.limits,
                                     on_rate_limited=self.rate_limited.append)
        return self

    async def __aexit__(self, *exc_info):
        await self.server.close()

    @property
    def port(self):
        return self.server.port

    def raw(self, *extra_lines):
        return RawWebSocket(self.port, "/", extra_lines=extra_lines)


def test_a_message_flood_is_dropped_with_one_notice_then_closed_with_1008_and_others_are_served():
    async def scenario():
        async with EchoServer(InboundLimits(rate_per_s=10, burst=5, close_after_drops=20)) as echo:
            async with ws_connect("ws://127.0.0.1:%d/" % echo.port) as good:
                flooder = await asyncio.to_thread(echo.raw)
                try:
                    flood = b"".join(client_frame(OP_TEXT, b"m%d" % index) for index in range(200))
                    await asyncio.to_thread(flooder.sock.sendall, flood)
                    frames = await asyncio.to_thread(flooder.read_until_closed)
                    echoes = [payload for opcode, payload in frames if opcode == OP_TEXT]
                    assert echoes == [b"m%d" % index for index in range(len(echoes))] and len(echoes) <= 6
                    assert close_of(frames) == (1008, "messages over the rate limit")
                    assert len(echo.rate_limited) == 1  # told once, not once per dropped message
                finally:
                    flooder.close()
                await good.send("still here")
                assert await asyncio.wait_for(good.recv(), WAIT_S) == "still here"

    run(scenario)


def test_pings_over_the_rate_get_one_pong_for_the_last_of_them():
    async def scenario():
        async with EchoServer(InboundLimits(rate_per_s=5, burst=3, close_after_drops=10 ** 6)) as echo:
            peer = await asyncio.to_thread(echo.raw)
            try:
                pings = b"".join(client_frame(OP_PING, b"p%d" % index) for index in range(50))
                await asyncio.to_thread(peer.sock.sendall, pings)
                pongs = []
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    try:
                        opcode, payload = await asyncio.to_thread(peer.read_frame, 0.3)
                    except OSError:
                        continue
                    assert opcode == OP_PONG
                    pongs.append(payload)
                # RFC 6455 §5.5.3: the pongs held over the rate are answered once, for the most recent ping.
                assert pongs == [b"p0", b"p1", b"p2", b"p49"], pongs
                assert echo.rate_limited == []  # a ping over the rate is not a message dropped
            finally:
                peer.close()

    run(scenario)


def test_one_read_full_of_messages_yields_to_the_loop_every_few_messages():
    async def scenario():
        order = []
        loop = asyncio.get_running_loop()

        def record(websocket, message):
            if not order:
                loop.call_soon(order.append, "the loop ran")
            order.append(message)
        limits = InboundLimits(rate_per_s=None, yield_every=8)
        server = await ws_serve(on_message=record, inbound_limits=limits)
        try:
            peer = await asyncio.to_thread(RawWebSocket, server.port, "/")
            try:
                await asyncio.to_thread(peer.sock.sendall, b"".join(client_frame(OP_TEXT, b"%d" % index)
                                                                    for index in range(100)))
                deadline = time.monotonic() + WAIT_S
                while len(order) < 101:
                    assert time.monotonic() < deadline, order[-3:]
                    await asyncio.sleep(0.01)
                # 100 messages in one read: other callbacks ran after at most 8 of them, not after all 100.
                assert order.index("the loop ran") <= 8, order[:12]
                assert [m for m in order if m != "the loop ran"] == ["%d" % index for index in range(100)]
            finally:
                peer.close()
        finally:
            await server.close()

    run(scenario)


def test_a_compressed_message_never_finished_is_closed_at_its_deadline_and_frees_what_it_held():
    async def scenario():
        limits = InboundLimits(assembly_timeout_s=0.3)
        async with EchoServer(limits) as echo:
            peer = await asyncio.to_thread(echo.raw, DEFLATE_OFFER)
            try:
                assert "permessage-deflate" in peer.response_head
                start = zlib.compressobj(6, zlib.DEFLATED, -15)
                started = start.compress(b"a" * 65536) + start.flush(zlib.Z_SYNC_FLUSH)  # inflates to 64 KiB
                await asyncio.to_thread(peer.sock.sendall, client_frame(OP_TEXT, started, fin=False, rsv1=True))
                began = time.monotonic()
                await asyncio.sleep(0.1)
                assert limits.assembly_budget.total == len(started)  # what it sent, not 64 KiB or a window
                frames = await asyncio.to_thread(peer.read_until_closed)
                assert close_of(frames) == (1008, "message not completed within 0.3 s")
                assert 0.25 < time.monotonic() - began < 3.0
                assert limits.assembly_budget.total == 0
            finally:
                peer.close()

    run(scenario)


def test_more_frames_in_one_message_than_the_cap_is_closed_with_1008_with_or_without_deflate():
    async def scenario():
        empty_block = b"\x00\x00\x00\xff\xff"  # an empty stored deflate block: inflates to nothing
        for offer, first, piece in ((), client_frame(OP_TEXT, b"x", fin=False), b""), \
                ((DEFLATE_OFFER,), client_frame(OP_TEXT, empty_block, fin=False, rsv1=True), empty_block):
            async with EchoServer(InboundLimits()) as echo:
                peer = await asyncio.to_thread(echo.raw, *offer)
                try:
                    flood = first + client_frame(OP_CONTINUATION, piece, fin=False) * (MAX_FRAMES_PER_MESSAGE + 50)
                    await asyncio.to_thread(peer.sock.sendall, flood)
                    frames = await asyncio.to_thread(peer.read_until_closed)
                    assert close_of(frames) == (1008, "more than %d frames in one message" % MAX_FRAMES_PER_MESSAGE)
                    assert echo.limits.assembly_budget.total == 0
                finally:
                    peer.close()

    run(scenario)


def test_unfinished_messages_share_one_budget_and_the_peer_past_it_is_closed():
    async def scenario():
        limits = InboundLimits(assembly_budget_bytes=10000)
        async with EchoServer(limits) as echo:
            peers = [await asyncio.to_thread(echo.raw) for _ in range(3)]
            try:
                for peer in peers:
                    await asyncio.to_thread(peer.sock.sendall, client_frame(OP_TEXT, b"a" * 4000, fin=False))
                    await asyncio.sleep(0.05)
                frames = await asyncio.to_thread(peers[2].read_until_closed)
                assert close_of(frames) == (1008, "the server holds too many unfinished messages")
                assert limits.assembly_budget.total == 8000  # the two others' halves
                for peer in peers[:2]:
                    await asyncio.to_thread(peer.sock.sendall, client_frame(OP_CONTINUATION, b"b" * 10))
                    opcode, payload = await asyncio.to_thread(peer.read_frame)
                    assert (opcode, payload) == (OP_TEXT, b"a" * 4000 + b"b" * 10)
                assert limits.assembly_budget.total == 0
            finally:
                for peer in peers:
                    peer.close()

    run(scenario)


# -- against a real `serve`, default limits --------------------------------------------------------------------------

def test_a_json_ping_flood_is_cut_while_a_good_client_gets_its_events(live, project):
    async def scenario():
        async with ws_connect(live.ws_url()) as good:
            await recv_welcome(good)
            flooder = await asyncio.to_thread(RawWebSocket, live.ws_port)
            try:
                ping = client_frame(OP_TEXT, json.dumps({"type": "ping", "timestamp": 1}).encode())
                await asyncio.to_thread(flooder.sock.sendall, ping * 5000)
                frames = await asyncio.to_thread(flooder.read_until_closed)
                texts = [json.loads(payload) for opcode, payload in frames if opcode == OP_TEXT]
                pongs = [m for m in texts if m["type"] == "pong"]
                assert len(pongs) <= MESSAGE_BURST + 2, len(pongs)  # out of 5,000
                assert [m["data"]["code"] for m in texts if m["type"] == "error"] == ["RATE_LIMITED"]
                assert close_of(frames) == (1008, "messages over the rate limit")
            finally:
                flooder.close()
            document = project.read_state("pm-planning")
            document["currentStep"] = 4
            project.write_state("pm-planning", document)
            assert (await recv_until(good, lambda m: m["type"] == "state_updated"))[-1]["seq"]
            assert await fence(good) == []
        assert live.metrics()["madace_rate_limited_total"] == 1
        assert "Traceback" not in live.stderr_text

    run(scenario)


def test_a_window_size_of_thousands_of_digits_is_declined_with_an_answer_not_a_traceback(live):
    offer = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=%s, permessage-deflate" % ("1" * 5000)
    sock = socket.create_connection(("127.0.0.1", live.ws_port), timeout=WAIT_S)
    try:
        sock.sendall(upgrade_request(live.ws_port, extra_lines=[offer]))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, head
            head += chunk
    finally:
        sock.close()
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 101")
    # The first offer is declined (RFC 7692 §5), the second one taken.
    assert "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover" \
        in lines
    assert "Traceback" not in live.stderr_text
