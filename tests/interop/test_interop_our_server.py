"""Our asyncio server (`madace_status.websocket.serve`) against the `websockets` library's client, and against
a raw socket where a test needs bytes no well-behaved client would send."""

import asyncio

import pytest
from websockets.asyncio.client import connect as websockets_connect
from websockets.exceptions import ConnectionClosed as WebsocketsConnectionClosed

from interop_helpers import MIB, RawPeer, run, url, websockets_options, within
from madace_status.websocket import ConnectionClosed, serve

UNICODE_TEXT = "héllo wörld — ✓ Ελληνικά 中文 😀 𝄞 \u0000 end"


async def echo(websocket):
    async for message in websocket:
        websocket.send(message)


def test_text_and_binary_messages_echo_through_our_server():
    async def main():
        async with await serve(echo) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                await client.send("hello")
                assert await within(client.recv()) == "hello"
                await client.send(b"\x00\x01\xfe\xff")
                assert await within(client.recv()) == b"\x00\x01\xfe\xff"
                await client.send("")
                assert await within(client.recv()) == ""
                await client.send(b"")
                assert await within(client.recv()) == b""
    run(main)


def test_unicode_text_with_multibyte_characters_round_trips_through_our_server():
    async def main():
        async with await serve(echo) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                await client.send(UNICODE_TEXT)
                reply = await within(client.recv())
                assert isinstance(reply, str)
                assert reply == UNICODE_TEXT
    run(main)


def test_fragmented_messages_from_websockets_client_are_reassembled_by_our_server():
    async def fragments():
        for piece in (b"as", b"ync ", b"frag", b"ments"):
            yield piece

    async def main():
        async with await serve(echo) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                await client.send(["frag", "ment", "ed ", "tëxt ", "😀"])
                assert await within(client.recv()) == "fragmented tëxt 😀"
                await client.send([b"\x01\x02", b"", b"\x03"])
                assert await within(client.recv()) == b"\x01\x02\x03"
                await client.send(fragments())
                assert await within(client.recv()) == b"async fragments"
    run(main)


def test_many_small_fragments_under_the_byte_limit_are_accepted_by_our_server():
    async def main():
        async with await serve(echo) as server:  # default limit 64 KiB: 1000 fragments of 64 bytes fit
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                pieces = [bytes([index % 256]) * 64 for index in range(1000)]
                await client.send(pieces)
                assert await within(client.recv()) == b"".join(pieces)
    run(main)


def test_send_fragments_reaches_websockets_client_as_separate_frames_of_one_message():
    async def handler(websocket):
        await websocket.recv()
        websocket.send_fragments(["ab", "cd", "ëf"])
        websocket.send_fragments([b"\x00", b"\x01\x02"], binary=True)
        websocket.send_fragments([b"\xf0\x9f", b"\x98\x80"])  # one emoji split across two frames
        await websocket.recv()

    async def main():
        async with await serve(handler) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                await client.send("go")
                text_pieces = [piece async for piece in client.recv_streaming()]
                assert text_pieces == ["ab", "cd", "ëf"]
                binary_pieces = [piece async for piece in client.recv_streaming()]
                assert binary_pieces == [b"\x00", b"\x01\x02"]
                assert await within(client.recv()) == "😀"
    run(main)


def test_16_mib_messages_cross_our_server_both_ways():
    size = 16 * MIB
    binary = bytes(range(256)) * (size // 256)
    text = "é" * (size // 2)  # 16 MiB of UTF-8, every character two bytes

    async def main():
        async with await serve(echo, max_message_bytes=size) as server:
            options = websockets_options(max_size=size)
            async with websockets_connect(url(server.port), **options) as client:
                await client.send(binary)
                assert await within(client.recv(), 20) == binary
                await client.send(text)
                assert await within(client.recv(), 20) == text
    run(main, timeout=40)


def test_websockets_client_ping_is_answered_by_our_server():
    async def main():
        async with await serve(echo) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                pong_waiter = await client.ping(b"payload")
                latency = await within(pong_waiter)
                assert 0 <= latency < 5
                pong_waiter = await client.ping()
                assert await within(pong_waiter) >= 0
    run(main)


def test_our_server_ping_returns_round_trip_time_from_websockets_client():
    rtts = []

    async def handler(websocket):
        rtts.append(await websocket.ping())
        rtts.append(await websocket.ping(b"custom payload"))
        websocket.send("pinged")
        await websocket.recv()

    async def main():
        async with await serve(handler) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                assert await within(client.recv()) == "pinged"
        assert len(rtts) == 2
        assert all(isinstance(rtt, float) and 0 <= rtt < 5 for rtt in rtts)
    run(main)


def test_handler_async_for_yields_every_message_then_ends_when_client_closes():
    async def main():
        received = []
        finished = asyncio.get_running_loop().create_future()

        async def handler(websocket):
            async for message in websocket:
                received.append(message)
            finished.set_result((websocket.close_code, websocket.close_reason))

        async with await serve(handler) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                for message in ("one", b"two", "three"):
                    await client.send(message)
            assert await within(finished) == (1000, "")
            assert received == ["one", b"two", "three"]
    run(main)


def test_callback_mode_calls_on_connect_and_on_close_once_and_on_message_in_order():
    async def main():
        calls = []
        closed = asyncio.Event()

        def on_connect(websocket):
            calls.append("connect")

        def on_message(websocket, message):
            calls.append(message)
            websocket.send(message)

        def on_close(websocket):
            calls.append(("close", websocket.close_code))
            closed.set()

        server = await serve(on_connect=on_connect, on_message=on_message, on_close=on_close)
        try:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                for message in ("a", b"b", "c"):
                    await client.send(message)
                    assert await within(client.recv()) == message
            await within(closed.wait())
        finally:
            await within(server.close())
        assert calls == ["connect", "a", b"b", "c", ("close", 1000)]
    run(main)


def test_callbacks_fire_once_for_a_connection_closed_by_server_shutdown():
    async def main():
        connects, closes = [], []
        server = await serve(on_connect=connects.append, on_message=lambda ws, m: ws.send(m), on_close=closes.append)
        async with websockets_connect(url(server.port), **websockets_options()) as client:
            await client.send("x")
            assert await within(client.recv()) == "x"
            await within(server.close())
            await within(client.wait_closed())
        assert len(connects) == 1
        assert closes == connects
    run(main)


@pytest.mark.parametrize("code, reason", [(1000, ""), (4000, "bye")])
def test_our_server_close_code_and_reason_reach_websockets_client(code, reason):
    async def main():
        server_done = asyncio.get_running_loop().create_future()

        async def handler(websocket):
            await websocket.recv()
            await websocket.close(code, reason)
            server_done.set_result(websocket.close_code)

        async with await serve(handler) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                await client.send("close please")
                with pytest.raises(WebsocketsConnectionClosed) as caught:
                    await within(client.recv())
                assert caught.value.rcvd.code == code
                assert caught.value.rcvd.reason == reason
                await within(client.wait_closed())
            assert await within(server_done) == code  # the client echoed our code
    run(main)


@pytest.mark.parametrize("code, reason", [(1000, "done"), (4000, "bye")])
def test_websockets_client_close_code_and_reason_are_reported_by_our_server(code, reason):
    async def main():
        outcome = asyncio.get_running_loop().create_future()

        async def handler(websocket):
            try:
                await websocket.recv()
            except ConnectionClosed as error:
                outcome.set_result((error.code, error.reason, websocket.close_code, websocket.close_reason))

        async with await serve(handler) as server:
            client = await websockets_connect(url(server.port), **websockets_options())
            await within(client.close(code, reason))
            assert await within(outcome) == (code, reason, code, reason)
            assert client.close_code == code  # our server echoed the peer's code
    run(main)


def test_server_shutdown_closes_every_client_with_1001():
    async def main():
        server = await serve(echo)
        clients = []
        for index in range(4):
            client = await websockets_connect(url(server.port), **websockets_options())
            await client.send("hi %d" % index)
            assert await within(client.recv()) == "hi %d" % index
            clients.append(client)
        await within(server.close())
        for client in clients:
            await within(client.wait_closed())
            assert client.close_code == 1001
            assert client.close_reason == "server shutting down"
        assert not server.connections
    run(main)


def test_message_at_our_server_limit_is_accepted_and_one_byte_more_closes_with_1009():
    limit = 64 * 1024  # the server's default

    async def main():
        async with await serve(echo) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                await client.send(b"x" * limit)
                assert await within(client.recv()) == b"x" * limit
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                await client.send(b"x" * (limit + 1))
                with pytest.raises(WebsocketsConnectionClosed) as caught:
                    await within(client.recv())
                assert caught.value.rcvd.code == 1009
    run(main)


def test_fragments_adding_up_past_our_server_limit_close_with_1009():
    async def main():
        async with await serve(echo) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                await client.send([b"y" * 1024] * 64 + [b"y"])  # 64 KiB + 1 in 65 frames
                with pytest.raises(WebsocketsConnectionClosed) as caught:
                    await within(client.recv())
                assert caught.value.rcvd.code == 1009
    run(main)


def test_invalid_utf8_in_a_text_frame_fails_with_1007_and_server_closes_tcp():
    async def main():
        async with await serve(echo) as server:
            peer = await RawPeer.connect(server.port)
            peer.send_frame(0x1, b"ok \xff bad")
            code, reason = await peer.read_close()
            assert code == 1007
            assert "UTF-8" in reason
            peer.send_frame(0x8, code.to_bytes(2, "big"))
            assert await peer.read_eof() == b""
    run(main)


async def assert_message_before_protocol_error_is_answered_first(server):
    peer = await RawPeer.connect(server.port)
    peer.send_frame(0x1, b"first")
    peer.send_frame(0x1, b"\xc3\x28")  # invalid UTF-8, arriving together with "first"
    # Well within CLOSE_TIMEOUT_S (5 s): the reply and the close must not wait for a timer.
    assert await within(peer.read_frame(), 2) == (True, 0x1, b"first")
    code, _ = await within(peer.read_close(), 2)
    assert code == 1007
    peer.close()


def test_message_before_a_protocol_error_is_answered_before_the_failing_close_in_callback_mode():
    async def main():
        async with await serve(on_message=lambda websocket, message: websocket.send(message)) as server:
            await assert_message_before_protocol_error_is_answered_first(server)
    run(main)


def test_message_before_a_protocol_error_is_answered_before_the_failing_close_in_handler_mode():
    async def main():
        async with await serve(echo) as server:
            await assert_message_before_protocol_error_is_answered_first(server)
    run(main)


@pytest.mark.parametrize("rsv", [0b100, 0b010, 0b001])
def test_frame_with_rsv_bits_fails_with_1002(rsv):
    async def main():
        async with await serve(echo) as server:
            peer = await RawPeer.connect(server.port)
            peer.send_frame(0x1, b"hello", rsv=rsv)
            code, _ = await peer.read_close()
            assert code == 1002
            peer.send_frame(0x8, code.to_bytes(2, "big"))
            assert await peer.read_eof() == b""
    run(main)


def test_unmasked_client_frame_fails_with_1002():
    async def main():
        async with await serve(echo) as server:
            peer = await RawPeer.connect(server.port)
            peer.send_frame(0x2, b"not masked", mask=False)
            code, _ = await peer.read_close()
            assert code == 1002
            peer.close()
    run(main)


def test_handler_async_for_ends_cleanly_when_called_after_the_server_failed_the_connection():
    async def main():
        loop = asyncio.get_running_loop()
        gate, outcome = asyncio.Event(), loop.create_future()

        async def handler(websocket):
            await gate.wait()  # busy elsewhere while the bad frame arrives and fails the connection
            try:
                outcome.set_result([message async for message in websocket])
            except Exception as error:
                outcome.set_result(error)

        async with await serve(handler) as server:
            peer = await RawPeer.connect(server.port)
            peer.send_frame(0x1, b"\xff")
            code, _ = await peer.read_close()  # the peer does not answer it yet
            assert code == 1007
            gate.set()
            assert await within(outcome) == []
            peer.close()
    run(main)


def test_client_dropping_tcp_without_close_frame_gives_close_code_1006():
    async def main():
        outcome = asyncio.get_running_loop().create_future()

        async def handler(websocket):
            messages = [message async for message in websocket]
            outcome.set_result((messages, websocket.close_code))
            with pytest.raises(ConnectionClosed) as caught:
                await websocket.recv()
            assert caught.value.code == 1006

        async with await serve(handler) as server:
            peer = await RawPeer.connect(server.port)
            peer.send_frame(0x1, b"last words")
            peer.abort()
            assert await within(outcome) == (["last words"], 1006)
    run(main)


def test_sending_on_our_server_connection_after_close_raises_connection_closed():
    async def main():
        outcome = asyncio.get_running_loop().create_future()

        async def handler(websocket):
            async for _ in websocket:
                pass
            await within(websocket.wait_closed())
            errors = []
            for attempt in (lambda: websocket.send("late"), lambda: websocket.send(b"late"),
                            lambda: websocket.send_fragments(["a", "b"])):
                try:
                    attempt()
                except ConnectionClosed as error:
                    errors.append(error.code)
            try:
                await websocket.ping()
            except ConnectionClosed as error:
                errors.append(error.code)
            outcome.set_result(errors)

        async with await serve(handler) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                await client.send("x")
            assert await within(outcome) == [1000, 1000, 1000, 1000]
    run(main)


def test_our_server_closes_tcp_first_after_a_client_initiated_close():
    async def main():
        server_side = asyncio.get_running_loop().create_future()

        async def handler(websocket):
            server_side.set_result(websocket)
            async for _ in websocket:
                pass

        async with await serve(handler) as server:
            peer = await RawPeer.connect(server.port)
            websocket = await within(server_side)
            peer.send_frame(0x8, (4001).to_bytes(2, "big") + b"client leaving")
            assert await peer.read_close() == (4001, "")  # the echo carries the code
            # The raw client never closes its side: the EOF proves the server closed TCP first.
            assert await peer.read_eof() == b""
            await within(websocket.wait_closed(), 2)
            assert (websocket.close_code, websocket.close_reason) == (4001, "client leaving")
            peer.close()
    run(main)


def test_handler_that_raises_closes_the_connection_with_1011():
    async def handler(websocket):
        await websocket.recv()
        raise RuntimeError("handler bug")

    async def main():
        async with await serve(handler) as server:
            async with websockets_connect(url(server.port), **websockets_options()) as client:
                await client.send("trigger")
                with pytest.raises(WebsocketsConnectionClosed) as caught:
                    await within(client.recv())
                assert caught.value.rcvd.code == 1011
    run(main)


def test_server_shutdown_returns_within_its_timeout_when_a_client_never_answers_the_close():
    async def main():
        server = await serve(echo)
        peer = await RawPeer.connect(server.port)  # reads nothing, never answers the close
        started = asyncio.get_running_loop().time()
        await within(server.close(timeout=0.3), 3)
        assert asyncio.get_running_loop().time() - started < 1.5
        assert await peer.read_close() == (1001, "server shutting down")
        assert await peer.read_eof() == b""
        assert not server.connections
    run(main)


@pytest.mark.parametrize("payload, expected_code", [
    (b"\x03", 1002),  # a 1-byte close payload
    ((1005).to_bytes(2, "big"), 1002),  # 1005 may never be on the wire
    ((2999).to_bytes(2, "big"), 1002),  # unassigned range
    ((1000).to_bytes(2, "big") + b"\xff\xfe", 1007),  # reason is not UTF-8
], ids=["one-byte-payload", "code-1005", "code-2999", "reason-not-utf8"])
def test_invalid_close_frame_from_client_fails_the_connection(payload, expected_code):
    async def main():
        async with await serve(echo) as server:
            peer = await RawPeer.connect(server.port)
            peer.send_frame(0x8, payload)
            code, _ = await peer.read_close()
            assert code == expected_code
            # The peer already sent its (only) close frame: nothing more will come, so the server closes TCP
            # now rather than when its CLOSE_TIMEOUT_S (5 s) abort timer fires.
            assert await peer.read_eof(timeout=2) == b""
    run(main)


def test_close_in_the_middle_of_a_fragmented_message_is_echoed_and_drops_the_partial_message():
    async def main():
        outcome = asyncio.get_running_loop().create_future()

        async def handler(websocket):
            outcome.set_result([message async for message in websocket])

        async with await serve(handler) as server:
            peer = await RawPeer.connect(server.port)
            peer.send_frame(0x1, b"par", fin=False)
            peer.send_frame(0x8, (4002).to_bytes(2, "big") + b"mid-message")
            assert await peer.read_close() == (4002, "")
            assert await peer.read_eof() == b""
            assert await within(outcome) == []
    run(main)


def test_ping_between_fragments_is_answered_and_the_message_still_reassembles():
    async def main():
        async with await serve(echo) as server:
            peer = await RawPeer.connect(server.port)
            peer.send_frame(0x1, "frag".encode(), fin=False)
            peer.send_frame(0x9, b"ping-data")
            peer.send_frame(0x0, "ment ✓".encode(), fin=True)
            assert await peer.read_frame() == (True, 0xA, b"ping-data")
            assert await peer.read_frame() == (True, 0x1, "fragment ✓".encode())
            peer.close()
    run(main)
