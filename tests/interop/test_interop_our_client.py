"""Our asyncio client (`madace_status.websocket.connect`) against the `websockets` library's server, and
against a raw asyncio server where a test needs a peer that misbehaves."""

import asyncio
import contextlib

import pytest
from websockets.asyncio.server import serve as websockets_serve
from websockets.exceptions import ConnectionClosed as WebsocketsConnectionClosed

from interop_helpers import MIB, close_frame_payload, raw_websocket_server, run, url, websockets_options, within
from madace_status.websocket import ConnectionClosed, connect

UNICODE_TEXT = "héllo wörld — ✓ Ελληνικά 中文 😀 𝄞 \u0000 end"


async def websockets_echo(websocket):
    try:
        async for message in websocket:
            await websocket.send(message)
    except WebsocketsConnectionClosed:
        pass  # a close other than 1000/1001 ends `async for` with an exception in websockets


@contextlib.asynccontextmanager
async def websockets_server(handler, **options):
    """A `websockets` server on 127.0.0.1, port 0; yields the port it got."""
    async with websockets_serve(handler, "127.0.0.1", 0, **websockets_options(**options)) as server:
        yield server.sockets[0].getsockname()[1]


def test_text_and_binary_messages_echo_through_websockets_server():
    async def main():
        async with websockets_server(websockets_echo) as port:
            client = await connect(url(port))
            for message in ("hello", b"\x00\x01\xfe\xff", "", b""):
                client.send(message)
                reply = await within(client.recv())
                assert type(reply) is type(message)
                assert reply == message
            await within(client.close())
    run(main)


def test_unicode_text_with_multibyte_characters_round_trips_through_websockets_server():
    async def main():
        async with websockets_server(websockets_echo) as port:
            client = await connect(url(port))
            client.send(UNICODE_TEXT)
            assert await within(client.recv()) == UNICODE_TEXT
            await within(client.close())
    run(main)


def test_send_fragments_reaches_websockets_server_as_separate_frames_of_one_message():
    async def main():
        received = []

        async def handler(websocket):
            for _ in range(3):
                received.append([piece async for piece in websocket.recv_streaming()])
            await websocket.send("done")
            await websocket.wait_closed()

        async with websockets_server(handler) as port:
            client = await connect(url(port))
            client.send_fragments(["frag", "ment", "ëd"])
            client.send_fragments([b"\x00\x01", b"", b"\x02"], binary=True)
            client.send_fragments([b"\xf0\x9f\x98", b"\x80!"])  # one emoji split across two frames
            assert await within(client.recv()) == "done"
            await within(client.close())
        assert received[0] == ["frag", "ment", "ëd"]
        assert received[1] == [b"\x00\x01", b"", b"\x02"]
        assert "".join(received[2]) == "😀!"
        assert len(received[2]) == 2
    run(main)


def test_fragmented_messages_from_websockets_server_are_reassembled_by_our_client():
    async def fragments():
        for piece in (b"as", b"ync ", b"frag", b"ments"):
            yield piece

    async def handler(websocket):
        await websocket.send(["frag", "ment", "ed ", "tëxt ", "😀"])
        await websocket.send([b"\x01\x02", b"", b"\x03"])
        await websocket.send(fragments())
        await websocket.wait_closed()

    async def main():
        async with websockets_server(handler) as port:
            client = await connect(url(port))
            assert await within(client.recv()) == "fragmented tëxt 😀"
            assert await within(client.recv()) == b"\x01\x02\x03"
            assert await within(client.recv()) == b"async fragments"
            await within(client.close())
    run(main)


def test_16_mib_messages_cross_websockets_server_both_ways():
    size = 16 * MIB
    binary = bytes(range(256)) * (size // 256)
    text = "é" * (size // 2)

    async def main():
        async with websockets_server(websockets_echo, max_size=size) as port:
            client = await connect(url(port), max_message_bytes=size)
            client.send(binary)
            assert await within(client.recv(), 20) == binary
            client.send(text)
            assert await within(client.recv(), 20) == text
            await within(client.close())
    run(main, timeout=40)


def test_buffered_amount_reports_unsent_bytes_and_drain_waits_for_them():
    size = 16 * MIB  # more than the kernel takes at once (tcp_wmem), so some must stay in our buffer

    async def main():
        async with websockets_server(websockets_echo, max_size=size) as port:
            client = await connect(url(port), max_message_bytes=size)
            assert client.buffered_amount == 0
            client.send(b"z" * size)
            assert 0 < client.buffered_amount <= size + 14
            await within(client.drain())
            assert await within(client.recv(), 20) == b"z" * size
            assert client.buffered_amount == 0  # the echo came back, so every byte had gone out
            await within(client.close())
    run(main, timeout=40)


def test_our_client_ping_returns_round_trip_time_from_websockets_server():
    async def main():
        async with websockets_server(websockets_echo) as port:
            client = await connect(url(port))
            rtt = await within(client.ping())
            assert isinstance(rtt, float) and 0 <= rtt < 5
            rtt = await within(client.ping(b"custom payload"))
            assert 0 <= rtt < 5
            await within(client.close())
    run(main)


def test_websockets_server_ping_is_answered_by_our_client():
    async def main():
        latencies = []

        async def handler(websocket):
            latencies.append(await within(await websocket.ping(b"are you there")))
            latencies.append(await within(await websocket.ping()))
            await websocket.send("pinged")
            await websocket.wait_closed()

        async with websockets_server(handler) as port:
            client = await connect(url(port))
            assert await within(client.recv()) == "pinged"
            await within(client.close())
        assert len(latencies) == 2 and all(0 <= latency < 5 for latency in latencies)
    run(main)


def test_client_callbacks_receive_messages_in_order_and_on_close_fires_once():
    async def handler(websocket):
        for message in ("a", b"b", "c"):
            await websocket.send(message)
        await websocket.close(4000, "bye")

    async def main():
        messages, closes = [], []
        closed = asyncio.Event()

        def on_close(websocket):
            closes.append((websocket.close_code, websocket.close_reason))
            closed.set()

        async with websockets_server(handler) as port:
            client = await connect(url(port), on_message=lambda websocket, message: messages.append(message),
                                   on_close=on_close)
            await within(closed.wait())
            await within(client.wait_closed())
        assert messages == ["a", b"b", "c"]
        assert closes == [(4000, "bye")]
    run(main)


@pytest.mark.parametrize("code, reason", [(1000, ""), (4000, "bye")])
def test_our_client_close_code_and_reason_reach_websockets_server(code, reason):
    async def main():
        seen = asyncio.get_running_loop().create_future()

        async def handler(websocket):
            try:
                await websocket.recv()
            except WebsocketsConnectionClosed as error:
                seen.set_result((error.rcvd.code, error.rcvd.reason))

        async with websockets_server(handler) as port:
            client = await connect(url(port))
            await within(client.close(code, reason))
            assert await within(seen) == (code, reason)
            assert client.close_code == code  # the server echoed our code
    run(main)


@pytest.mark.parametrize("code, reason", [(1000, "done"), (4000, "bye"), (1011, "oops ✗")])
def test_websockets_server_close_code_and_reason_are_reported_by_our_client(code, reason):
    async def handler(websocket):
        await websocket.send("before close")
        await websocket.close(code, reason)

    async def main():
        async with websockets_server(handler) as port:
            client = await connect(url(port))
            messages = [message async for message in client]  # iteration ends at the close
            assert messages == ["before close"]
            with pytest.raises(ConnectionClosed) as caught:
                await within(client.recv())
            assert (caught.value.code, caught.value.reason) == (code, reason)
            await within(client.wait_closed())
            assert (client.close_code, client.close_reason) == (code, reason)
    run(main)


def test_websockets_handler_returning_closes_our_client_with_1000():
    async def handler(websocket):
        await websocket.send("bye")

    async def main():
        async with websockets_server(handler) as port:
            client = await connect(url(port))
            assert [message async for message in client] == ["bye"]
            await within(client.wait_closed())
            assert client.close_code == 1000
    run(main)


def test_server_dropping_tcp_without_close_frame_gives_our_client_close_code_1006():
    async def handler(websocket):
        await websocket.send("last words")
        websocket.transport.abort()

    async def main():
        async with websockets_server(handler) as port:
            client = await connect(url(port))
            assert [message async for message in client] == ["last words"]
            await within(client.wait_closed())
            assert client.close_code == 1006
            with pytest.raises(ConnectionClosed) as caught:
                await within(client.recv())
            assert caught.value.code == 1006
    run(main)


def test_sending_on_our_client_after_close_raises_connection_closed():
    async def main():
        async with websockets_server(websockets_echo) as port:
            client = await connect(url(port))
            await within(client.close())
            with pytest.raises(ConnectionClosed):
                client.send("late")
            with pytest.raises(ConnectionClosed):
                client.send(b"late")
            with pytest.raises(ConnectionClosed):
                client.send_fragments(["a", "b"])
            with pytest.raises(ConnectionClosed):
                await within(client.ping())
            with pytest.raises(ConnectionClosed):
                await within(client.recv())
    run(main)


def test_recv_after_our_client_started_closing_raises_connection_closed():
    async def main():
        async with websockets_server(websockets_echo) as port:
            client = await connect(url(port))
            client.start_close(4000, "bye")
            with pytest.raises(ConnectionClosed):
                await within(client.recv())
            await within(client.wait_closed())
            assert client.close_code == 4000  # the websockets server echoed our code
    run(main)


def test_close_returns_after_its_timeout_when_the_peer_never_answers():
    async def main():
        async def silent(peer):
            await asyncio.sleep(30)  # holds the connection open, reads nothing, never answers the close

        server = await raw_websocket_server(silent)
        async with server:
            client = await connect(url(server.sockets[0].getsockname()[1]))
            started = asyncio.get_running_loop().time()
            await within(client.close(timeout=0.3), 3)
            assert asyncio.get_running_loop().time() - started < 2
            assert client.closed
            assert client.close_code == 1006  # no close frame came back
    run(main)


def test_close_timeout_also_bounds_the_wait_for_the_server_to_close_tcp():
    async def main():
        async def echo_close_but_keep_tcp(peer):
            code, _ = await peer.read_close()
            peer.send_frame(0x8, close_frame_payload(code))
            await asyncio.sleep(30)  # never closes TCP

        server = await raw_websocket_server(echo_close_but_keep_tcp)
        async with server:
            client = await connect(url(server.sockets[0].getsockname()[1]))
            started = asyncio.get_running_loop().time()
            await within(client.close(timeout=0.3), 8)
            elapsed = asyncio.get_running_loop().time() - started
            assert client.close_code == 1000
            assert elapsed < 2, "close(timeout=0.3) took %.1f s" % elapsed
    run(main, timeout=15)


def test_pending_ping_raises_connection_closed_when_the_connection_drops():
    async def main():
        async def drop_on_ping(peer):
            fin, opcode, payload = await peer.read_frame()
            assert opcode == 0x9
            peer.abort()

        server = await raw_websocket_server(drop_on_ping)
        async with server:
            client = await connect(url(server.sockets[0].getsockname()[1]))
            with pytest.raises(ConnectionClosed) as caught:
                await within(client.ping())
            assert caught.value.code == 1006
    run(main)


def test_message_over_websockets_server_limit_gives_our_client_close_code_1009():
    async def main():
        async with websockets_server(websockets_echo, max_size=1024) as port:
            client = await connect(url(port))
            client.send(b"x" * 1025)
            with pytest.raises(ConnectionClosed) as caught:
                await within(client.recv())
            assert caught.value.code == 1009
            await within(client.wait_closed())
            assert client.close_code == 1009
    run(main)


async def over_limit_server(seen, websocket):
    """A websockets handler: one message at our client's 1024-byte limit, then one byte more."""
    await websocket.send(b"x" * 1024)
    assert await websocket.recv() == "next"  # so the big message arrives on its own, after the first was read
    await websocket.send(b"x" * 1025)
    try:
        await websocket.recv()
    except WebsocketsConnectionClosed as error:
        seen.set_result(error.rcvd.code)


def test_message_over_our_client_limit_closes_with_1009():
    async def main():
        seen = asyncio.get_running_loop().create_future()
        async with websockets_server(lambda websocket: over_limit_server(seen, websocket)) as port:
            client = await connect(url(port), max_message_bytes=1024)
            assert await within(client.recv()) == b"x" * 1024
            client.send("next")
            assert await within(seen) == 1009
            await within(client.wait_closed())
            assert client.close_code == 1009  # the server echoed our code
    run(main)


def test_recv_after_our_client_failed_the_connection_raises_connection_closed():
    async def main():
        loop = asyncio.get_running_loop()
        seen, release = loop.create_future(), asyncio.Event()

        async def bad_server(peer):
            peer.send_frame(0x1, b"\xff")
            seen.set_result(await peer.read_close())
            await release.wait()  # our client's close stays unanswered while it calls recv()
            peer.send_frame(0x8, close_frame_payload(1007))
            peer.close()

        server = await raw_websocket_server(bad_server)
        async with server:
            client = await connect(url(server.sockets[0].getsockname()[1]))
            code, _ = await within(seen)
            assert code == 1007
            try:
                with pytest.raises(ConnectionClosed):
                    await within(client.recv())
            finally:
                release.set()
            await within(client.wait_closed())
    run(main)


def test_invalid_utf8_from_the_server_makes_our_client_close_with_1007():
    async def main():
        seen = asyncio.get_running_loop().create_future()

        async def bad_server(peer):
            peer.send_frame(0x1, b"ok \xff bad")
            code, reason = await peer.read_close()
            peer.send_frame(0x8, close_frame_payload(code))
            peer.close()
            seen.set_result(code)

        server = await raw_websocket_server(bad_server)
        async with server:
            client = await connect(url(server.sockets[0].getsockname()[1]))
            assert await within(seen) == 1007
            await within(client.wait_closed())
    run(main)


def test_masked_server_frame_makes_our_client_close_with_1002():
    async def main():
        seen = asyncio.get_running_loop().create_future()

        async def bad_server(peer):
            peer.send_frame(0x1, b"masked", mask=True)
            code, _ = await peer.read_close()
            peer.close()
            seen.set_result(code)

        server = await raw_websocket_server(bad_server)
        async with server:
            client = await connect(url(server.sockets[0].getsockname()[1]))
            assert await within(seen) == 1002
            await within(client.wait_closed())
    run(main)


def test_websockets_server_closes_tcp_first_and_our_client_close_completes_without_timeout():
    async def main():
        server_closed = asyncio.get_running_loop().create_future()

        async def handler(websocket):
            await websocket.wait_closed()
            server_closed.set_result(websocket.close_code)

        async with websockets_server(handler) as port:
            client = await connect(url(port))
            started = asyncio.get_running_loop().time()
            # Well under CLOSE_TIMEOUT_S (5 s): the close is not ended by the abort timer.
            await within(client.close(), 2)
            assert asyncio.get_running_loop().time() - started < 2
            assert await within(server_closed, 2) == 1000
            assert client.close_code == 1000
    run(main)
