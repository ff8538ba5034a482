"""The opening handshake over real sockets: our server's refusals (raw HTTP requests), its limits, and our
client's errors for servers that are not there or answer wrongly."""

import asyncio
import socket

import pytest
from websockets.asyncio.client import connect as websockets_connect
from websockets.exceptions import InvalidStatus

from interop_helpers import (
    HttpResponse, RawPeer, accept_for, frame_bytes, http_exchange, run, upgrade_request, url, websockets_options,
    within)
from madace_status.websocket import HandshakeError, connect, serve


async def echo(websocket):
    async for message in websocket:
        websocket.send(message)


def refusal(request_for_port, **serve_options):
    """Serve, send the raw request built by `request_for_port(port)`, return the HttpResponse."""
    async def main():
        async with await serve(echo, **serve_options) as server:
            return await http_exchange(server.port, request_for_port(server.port))
    return run(main)


def assert_plain_text_refusal(response, status):
    assert response.status == status, response
    assert response.headers["content-type"].startswith("text/plain")
    assert int(response.headers["content-length"]) == len(response.body)
    assert response.body.strip(), "a refusal carries its reason in the body"


def test_request_without_websocket_key_is_refused_with_400():
    response = refusal(lambda port: upgrade_request(port, omit=("Sec-WebSocket-Key",)))
    assert_plain_text_refusal(response, 400)
    assert b"Sec-WebSocket-Key" in response.body


@pytest.mark.parametrize("key", ["abc", "dG9vIHNob3J0", "not base64 at all!!!!!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_request_with_a_key_that_is_not_16_bytes_of_base64_is_refused_with_400(key):
    response = refusal(lambda port: upgrade_request(port, key=key))
    assert_plain_text_refusal(response, 400)
    assert b"Sec-WebSocket-Key" in response.body


@pytest.mark.parametrize("method", ["POST", "PUT", "HEAD"])
def test_request_with_a_method_other_than_get_is_refused_with_400(method):
    response = refusal(lambda port: upgrade_request(port, method=method))
    assert_plain_text_refusal(response, 400)
    assert b"GET" in response.body


def test_request_without_upgrade_header_is_refused_with_400():
    response = refusal(lambda port: upgrade_request(port, omit=("Upgrade",)))
    assert_plain_text_refusal(response, 400)


def test_request_for_version_8_is_refused_with_426_naming_version_13():
    response = refusal(lambda port: upgrade_request(port, version="8"))
    assert_plain_text_refusal(response, 426)
    assert response.headers["sec-websocket-version"] == "13"


def test_header_line_over_8_kib_is_refused_with_431():
    response = refusal(lambda port: upgrade_request(port, extra_lines=["X-Big: " + "a" * (8 * 1024 + 1)]))
    assert_plain_text_refusal(response, 431)


def test_request_with_101_headers_is_refused_with_431():
    fillers = ["X-Filler-%d: x" % index for index in range(96)]  # + the 5 WebSocket headers = 101
    response = refusal(lambda port: upgrade_request(port, extra_lines=fillers))
    assert_plain_text_refusal(response, 431)


def test_request_with_100_headers_is_accepted():
    fillers = ["X-Filler-%d: x" % index for index in range(95)]  # + the 5 WebSocket headers = 100

    async def main():
        async with await serve(echo) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(upgrade_request(server.port, extra_lines=fillers))
            status_line = await within(reader.readline())
            assert status_line.startswith(b"HTTP/1.1 101 "), status_line
            writer.close()
    run(main)


def origin_check(websocket):
    if websocket.request.origin != "https://allowed.example":
        raise HandshakeError("origin refused", status=403)


def test_process_request_refusal_is_a_403_response_carrying_the_reason():
    response = refusal(lambda port: upgrade_request(port, extra_lines=["Origin: https://evil.example"]),
                       process_request=origin_check)
    assert_plain_text_refusal(response, 403)
    assert b"origin refused" in response.body


def test_our_client_reports_a_403_refusal_with_status_and_reason():
    async def main():
        async with await serve(echo, process_request=origin_check) as server:
            with pytest.raises(HandshakeError) as caught:
                await within(connect(url(server.port), origin="https://evil.example"))
            assert caught.value.status == 403
            assert "origin refused" in str(caught.value)
            client = await within(connect(url(server.port), origin="https://allowed.example"))
            client.send("let in")
            assert await within(client.recv()) == "let in"
            await within(client.close())
    run(main)


def test_websockets_client_sees_the_403_refusal_status():
    async def main():
        async with await serve(echo, process_request=origin_check) as server:
            with pytest.raises(InvalidStatus) as caught:
                await within(websockets_connect(url(server.port), origin="https://evil.example",
                                                **websockets_options()))
            assert caught.value.response.status_code == 403
            assert b"origin refused" in caught.value.response.body
    run(main)


def test_process_request_sees_path_and_query_and_its_headers_reach_the_client():
    async def main():
        seen = []

        def process_request(websocket):
            seen.append((websocket.request.path, websocket.request.query_value("token")))
            return [("X-Served-By", "madace")]

        async with await serve(echo, process_request=process_request) as server:
            async with websockets_connect(url(server.port, "/live?token=s3cret"), **websockets_options()) as client:
                assert client.response.headers["X-Served-By"] == "madace"
        assert seen == [("/live", "s3cret")]
    run(main)


def test_third_connection_over_max_connections_2_is_refused_with_503():
    async def main():
        async with await serve(echo, max_connections=2) as server:
            first = await connect(url(server.port))
            second = await connect(url(server.port))
            response = await http_exchange(server.port, upgrade_request(server.port))
            assert_plain_text_refusal(response, 503)
            with pytest.raises(HandshakeError) as caught:
                await within(connect(url(server.port)))
            assert caught.value.status == 503
            await within(first.close())
            # A slot is free again once the first connection is gone.
            third = await within(connect(url(server.port)))
            third.send("in")
            assert await within(third.recv()) == "in"
            for client in (second, third):
                await within(client.close())
    run(main)


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n"])
def test_client_that_does_not_finish_its_request_is_dropped_after_handshake_timeout(sent):
    async def main():
        async with await serve(echo, handshake_timeout=0.3) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(sent)
            started = asyncio.get_running_loop().time()
            try:
                data = await within(reader.read(), 3)
            except ConnectionResetError:
                data = b""
            assert data == b""
            assert asyncio.get_running_loop().time() - started >= 0.25
            assert not server.connections
            writer.close()
    run(main)


def test_upgrade_and_first_frame_in_one_write_are_both_handled():
    async def main():
        async with await serve(echo) as server:
            peer = await RawPeer.connect(server.port)
            peer.send_frame(0x1, b"warm-up")
            assert await peer.read_frame() == (True, 0x1, b"warm-up")
            peer.close()
            # Now the request and a frame in the same TCP write: the frame is the handshake's leftover.
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            key = "dGhlIHNhbXBsZSBub25jZQ=="
            writer.write(upgrade_request(server.port, key=key) + frame_bytes(0x1, b"eager"))
            response = HttpResponse(await within(reader.readuntil(b"\r\n\r\n")))
            assert response.status == 101
            assert response.headers["sec-websocket-accept"] == accept_for(key)
            assert await within(reader.readexactly(7)) == b"\x81\x05eager"
            writer.close()
    run(main)


def test_connect_to_a_port_with_nothing_listening_raises_oserror():
    async def main():
        with socket.socket() as placeholder:  # bound, never listening: connections to it are refused
            placeholder.bind(("127.0.0.1", 0))
            port = placeholder.getsockname()[1]
            with pytest.raises(OSError):
                await within(connect(url(port)))
    run(main)


def test_server_answering_with_a_wrong_accept_key_makes_connect_raise_handshake_error():
    async def main():
        async def wrong_accept(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
            await reader.read()

        server = await asyncio.start_server(wrong_accept, "127.0.0.1", 0)
        async with server:
            with pytest.raises(HandshakeError) as caught:
                await within(connect(url(server.sockets[0].getsockname()[1])))
            assert "Sec-WebSocket-Accept" in str(caught.value)
    run(main)


def test_server_that_never_answers_makes_connect_raise_after_open_timeout():
    async def main():
        async def silent(reader, writer):
            await reader.read()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        async with server:
            with pytest.raises(HandshakeError) as caught:
                await within(connect(url(server.sockets[0].getsockname()[1]), open_timeout=0.3), 3)
            assert caught.value.status == 0
    run(main)


@pytest.mark.parametrize("bad_url", ["http://127.0.0.1:8080/", "ws:///no-host", "ws://", "127.0.0.1:8080",
                                     "ws://127.0.0.1:notaport/"])
def test_malformed_url_makes_connect_raise_value_error(bad_url):
    async def main():
        with pytest.raises(ValueError):
            await within(connect(bad_url))
    run(main)
