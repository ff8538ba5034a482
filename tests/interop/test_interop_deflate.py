"""permessage-deflate with the `websockets` library, both ways: its client against our server, our client
against its server, each with compression on (websockets' defaults, and its other parameters)."""

import asyncio

import pytest
from websockets.asyncio.client import connect as websockets_connect
from websockets.asyncio.server import serve as websockets_serve
from websockets.exceptions import ConnectionClosed as WebsocketsConnectionClosed
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory

from interop_helpers import MIB, run, url, websockets_options, within
from madace_status.websocket import connect, serve

JSON_TEXT = '{"type":"event","data":{"stories":[%s]}}' % ",".join('{"id":"S-%d","state":"done"}' % i
                                                                    for i in range(600))
MESSAGES = ["", "short", JSON_TEXT, JSON_TEXT[:5000] + " ✓ 中文 😀", b"\x00" * 3000, bytes(range(256)) * 40]


async def echo(websocket):
    async for message in websocket:
        websocket.send(message)


async def round_trips(send, recv):
    for message in MESSAGES:
        await send(message)
        reply = await within(recv())
        assert type(reply) is type(message) and reply == message


@pytest.mark.parametrize("factory_options", [
    {},  # websockets' default offer: client_max_window_bits
    {"server_max_window_bits": 10},
    {"client_no_context_takeover": True, "server_no_context_takeover": True},
    {"client_max_window_bits": 9, "server_max_window_bits": 9, "client_no_context_takeover": True},
])
def test_websockets_client_with_compression_negotiates_it_with_our_server_and_messages_round_trip(factory_options):
    async def main():
        connections = []

        async with await serve(echo, on_connect=connections.append) as server:
            extensions = [ClientPerMessageDeflateFactory(**factory_options)]
            async with websockets_connect(url(server.port), **websockets_options(compression=None,
                                                                                  extensions=extensions)) as client:
                answer = client.response.headers["Sec-WebSocket-Extensions"]
                assert answer.startswith("permessage-deflate") and "server_no_context_takeover" in answer
                assert client.protocol.extensions[0].remote_no_context_takeover
                await round_trips(client.send, client.recv)
                ours = connections[0].connection
                assert ours.deflate is not None
                assert ours.deflate.send_window_bits == factory_options.get("server_max_window_bits", 15)
                assert ours._inflater is not None  # its compressed messages were inflated
    run(main)


def test_websockets_client_sees_our_large_messages_compressed():
    async def main():
        async with await serve(echo) as server:
            async with websockets_connect(url(server.port), **websockets_options(compression="deflate")) as client:
                await client.send(JSON_TEXT)
                assert await within(client.recv()) == JSON_TEXT
                extension = client.protocol.extensions[0]
                assert extension.name == "permessage-deflate"
                assert extension.remote_no_context_takeover  # what our answer promised
    run(main)


def test_a_compressed_message_inflating_past_our_limit_closes_websockets_client_with_1009():
    async def main():
        async with await serve(echo) as server:  # 64 KiB limit
            async with websockets_connect(url(server.port), **websockets_options(compression="deflate",
                                                                                  max_size=None)) as client:
                await client.send(b"\x00" * MIB)  # about 1 KiB on the wire
                with pytest.raises(WebsocketsConnectionClosed) as info:
                    await within(client.recv())
                assert info.value.rcvd.code == 1009
    run(main)


@pytest.mark.parametrize("factory_options", [
    {},  # websockets' server defaults: 12-bit windows both ways, context taken over
    {"server_no_context_takeover": True, "client_no_context_takeover": True},
    {"server_max_window_bits": 9, "client_max_window_bits": 10},
    {"client_max_window_bits": 8},  # a window zlib cannot compress with: our client sends uncompressed
])
def test_our_client_negotiates_deflate_with_websockets_server_and_messages_round_trip(factory_options):
    async def main():
        async def websockets_echo(websocket):
            try:
                async for message in websocket:
                    await websocket.send(message)
            except WebsocketsConnectionClosed:
                pass

        options = websockets_options(compression=None, extensions=[ServerPerMessageDeflateFactory(**factory_options)])
        async with websockets_serve(websockets_echo, "127.0.0.1", 0, **options) as server:
            client = await connect(url(server.sockets[0].getsockname()[1]))
            agreed = client.connection.deflate
            assert agreed is not None
            assert agreed.send_window_bits == factory_options.get("client_max_window_bits", 15)

            async def send(message):
                client.send(message)
            await round_trips(send, client.recv)
            await within(client.close())
    run(main)


def test_our_client_without_compression_offers_nothing():
    async def main():
        seen = []

        async def handler(websocket):
            seen.append(websocket.request.headers.get("Sec-WebSocket-Extensions"))
            await websocket.close()

        async with websockets_serve(handler, "127.0.0.1", 0, **websockets_options(compression="deflate")) as server:
            client = await connect(url(server.sockets[0].getsockname()[1]), compression=False)
            assert client.connection.deflate is None
            await within(client.wait_closed())
        assert seen == [None]
    run(main)


def test_our_server_with_compression_off_declines_websockets_offer():
    async def main():
        async with await serve(echo, compression=False) as server:
            async with websockets_connect(url(server.port), **websockets_options(compression="deflate")) as client:
                assert "Sec-WebSocket-Extensions" not in client.response.headers
                await client.send(JSON_TEXT)
                assert await within(client.recv()) == JSON_TEXT
    run(main)


def test_both_of_ours_with_deflate_exchange_16_mib_messages():
    async def main():
        async with await serve(echo, max_message_bytes=32 * MIB) as server:
            client = await connect(url(server.port), max_message_bytes=32 * MIB)
            big = (JSON_TEXT * (16 * MIB // len(JSON_TEXT) + 1))[:16 * MIB]
            client.send(big)
            assert await within(client.recv(), timeout=30) == big
            await within(client.close())
    run(main, timeout=60)


def test_fragmented_compressed_message_from_websockets_reaches_our_server_whole():
    async def main():
        async def fragments():
            for piece in (JSON_TEXT[:1000], JSON_TEXT[1000:5000], JSON_TEXT[5000:]):
                yield piece
                await asyncio.sleep(0)

        async with await serve(echo) as server:
            async with websockets_connect(url(server.port), **websockets_options(compression="deflate")) as client:
                await client.send(fragments())
                assert await within(client.recv()) == JSON_TEXT
    run(main)
