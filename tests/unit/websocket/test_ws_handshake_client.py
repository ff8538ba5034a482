"""Client side of the opening handshake (RFC 6455 §4.1): the request it sends and how it judges the answer."""

import base64

import pytest

import websocket_helpers  # noqa: F401  (puts the checkout on sys.path)
from madace_status.websocket.errors import HandshakeError
from madace_status.websocket.handshake import (
    ClientHandshake, RequestReader, accept_key, accept_response, check_upgrade_request)


def sent_request(handshake):
    """The client's request, parsed by the server-side reader."""
    reader = RequestReader()
    request = reader.feed(handshake.request())
    assert request is not None and reader.leftover == b""
    return request


def response_for(handshake, status_line="HTTP/1.1 101 Switching Protocols", headers=None, drop=(), extra=()):
    if headers is None:
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                   ("Sec-WebSocket-Accept", accept_key(handshake.key))]
    headers = [item for item in headers if item[0] not in drop] + list(extra)
    return ("\r\n".join([status_line] + ["%s: %s" % item for item in headers]) + "\r\n\r\n").encode("latin-1")


def handshake_error(handshake, *chunks):
    with pytest.raises(HandshakeError) as info:
        for chunk in chunks:
            handshake.feed(chunk)
    return info.value


# -- the request ---------------------------------------------------------------------------------------------

def test_request_is_a_get_of_the_path_and_query_over_http_1_1():
    request = sent_request(ClientHandshake("ws://example.com:8765/sync/ws?token=abc&x=1"))
    assert request.method == "GET" and request.version == "HTTP/1.1"
    assert request.target == "/sync/ws?token=abc&x=1"
    assert request.path == "/sync/ws" and request.query_value("token") == "abc"


def test_request_for_a_url_without_path_asks_for_root():
    assert sent_request(ClientHandshake("ws://example.com")).target == "/"


def test_request_passes_the_servers_own_upgrade_checks():
    handshake = ClientHandshake("ws://example.com/chat")
    assert check_upgrade_request(sent_request(handshake)) == handshake.key


@pytest.mark.parametrize("url, host", [
    ("ws://example.com/", "example.com"),
    ("ws://example.com:80/", "example.com"),
    ("wss://example.com:443/", "example.com"),
])
def test_host_header_omits_the_default_port(url, host):
    assert sent_request(ClientHandshake(url)).headers.get_all("Host") == [host]


@pytest.mark.parametrize("url, host", [
    ("ws://example.com:8765/", "example.com:8765"),
    ("ws://127.0.0.1:443/", "127.0.0.1:443"),
    ("wss://example.com:80/", "example.com:80"),
])
def test_host_header_carries_a_non_default_port(url, host):
    assert sent_request(ClientHandshake(url)).headers.get_all("Host") == [host]


def test_host_header_brackets_an_ipv6_address():
    assert sent_request(ClientHandshake("ws://[::1]:9000/")).headers.get("Host") == "[::1]:9000"


def test_request_has_upgrade_connection_and_version_13():
    headers = sent_request(ClientHandshake("ws://example.com/")).headers
    assert headers.tokens("Upgrade") == ["websocket"]
    assert headers.tokens("Connection") == ["upgrade"]
    assert headers.get_all("Sec-WebSocket-Version") == ["13"]


def test_key_is_16_random_bytes_in_base64_and_differs_per_handshake():
    keys = [ClientHandshake("ws://example.com/").key for _ in range(20)]
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 16
    assert len(set(keys)) == len(keys)


def test_key_sent_is_the_key_checked():
    handshake = ClientHandshake("ws://example.com/")
    assert sent_request(handshake).headers.get_all("Sec-WebSocket-Key") == [handshake.key]


def test_origin_and_authorization_are_sent_when_given():
    headers = sent_request(ClientHandshake("ws://example.com/", origin="http://localhost:8765",
                                           authorization="Bearer t0ken")).headers
    assert headers.get_all("Origin") == ["http://localhost:8765"]
    assert headers.get_all("Authorization") == ["Bearer t0ken"]


def test_origin_and_authorization_are_absent_when_not_given():
    headers = sent_request(ClientHandshake("ws://example.com/")).headers
    assert "Origin" not in headers and "Authorization" not in headers


@pytest.mark.parametrize("url", ["http://example.com/", "example.com", "ws:///path"])
def test_url_that_is_not_a_ws_url_with_a_host_is_refused_with_value_error(url):
    with pytest.raises(ValueError):
        ClientHandshake(url)


# -- the response --------------------------------------------------------------------------------------------

def test_valid_101_response_completes_the_handshake():
    handshake = ClientHandshake("ws://example.com/")
    assert handshake.feed(response_for(handshake)) is True
    assert handshake.leftover == b""


def test_servers_own_accept_response_completes_the_handshake():
    handshake = ClientHandshake("ws://example.com/chat")
    key = check_upgrade_request(sent_request(handshake))
    assert handshake.feed(accept_response(key)) is True


def test_101_response_split_into_one_byte_feeds_completes_at_the_last_byte():
    handshake = ClientHandshake("ws://example.com/")
    raw = response_for(handshake)
    for index in range(len(raw) - 1):
        assert handshake.feed(raw[index:index + 1]) is False
    assert handshake.feed(raw[-1:]) is True


def test_response_header_names_and_values_are_case_insensitive():
    handshake = ClientHandshake("ws://example.com/")
    raw = response_for(handshake, headers=[("upgrade", "WebSocket"), ("CONNECTION", "keep-alive, UPGRADE"),
                                           ("sec-websocket-accept", accept_key(handshake.key))])
    assert handshake.feed(raw) is True


def test_frame_bytes_after_the_101_are_kept_as_leftover():
    handshake = ClientHandshake("ws://example.com/")
    frame_bytes = b"\x81\x05hello\x89\x00"
    assert handshake.feed(response_for(handshake) + frame_bytes) is True
    assert handshake.leftover == frame_bytes


def test_wrong_accept_key_is_refused_naming_sec_websocket_accept():
    handshake = ClientHandshake("ws://example.com/")
    raw = response_for(handshake, drop=["Sec-WebSocket-Accept"],
                       extra=[("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")])
    error = handshake_error(handshake, raw)
    assert "Sec-WebSocket-Accept" in error.reason


def test_missing_accept_key_is_refused_naming_sec_websocket_accept():
    handshake = ClientHandshake("ws://example.com/")
    error = handshake_error(handshake, response_for(handshake, drop=["Sec-WebSocket-Accept"]))
    assert "Sec-WebSocket-Accept" in error.reason


def test_missing_upgrade_header_is_refused_naming_upgrade():
    handshake = ClientHandshake("ws://example.com/")
    error = handshake_error(handshake, response_for(handshake, drop=["Upgrade"]))
    assert "Upgrade" in error.reason


def test_upgrade_to_another_protocol_is_refused_naming_upgrade():
    handshake = ClientHandshake("ws://example.com/")
    error = handshake_error(handshake, response_for(handshake, drop=["Upgrade"], extra=[("Upgrade", "h2c")]))
    assert "Upgrade" in error.reason


def test_missing_connection_header_is_refused_naming_connection():
    handshake = ClientHandshake("ws://example.com/")
    error = handshake_error(handshake, response_for(handshake, drop=["Connection"]))
    assert "Connection" in error.reason


def test_non_101_status_is_refused_with_the_status_and_the_body_text():
    handshake = ClientHandshake("ws://example.com/")
    body = b"origin http://evil.example is not allowed\n"
    raw = response_for(handshake, "HTTP/1.1 403 Forbidden",
                       headers=[("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]) + body
    error = handshake_error(handshake, raw)
    assert error.status == 403
    assert "403" in error.reason
    assert "origin http://evil.example is not allowed" in error.reason


def test_non_101_status_waits_for_its_body_before_refusing():
    handshake = ClientHandshake("ws://example.com/")
    body = b"missing 'Upgrade: websocket'\n"
    raw = response_for(handshake, "HTTP/1.1 400 Bad Request", headers=[("Content-Length", str(len(body)))])
    assert handshake.feed(raw + body[:5]) is False
    error = handshake_error(handshake, body[5:])
    assert error.status == 400 and "missing 'Upgrade: websocket'" in error.reason


def test_non_101_status_without_content_length_is_refused_with_its_body_when_the_server_closes():
    handshake = ClientHandshake("ws://example.com/")
    raw = response_for(handshake, "HTTP/1.1 426 Upgrade Required", headers=[("Sec-WebSocket-Version", "13")])
    assert handshake.feed(raw + b"this server speaks version 13\n") is False
    with pytest.raises(HandshakeError) as info:
        handshake.refused()  # what the I/O layer calls at EOF
    assert info.value.status == 426
    assert "this server speaks version 13" in info.value.reason
    assert ("Sec-WebSocket-Version", "13") in info.value.headers


def test_connection_closed_before_any_response_is_a_handshake_error():
    handshake = ClientHandshake("ws://example.com/")
    with pytest.raises(HandshakeError) as info:
        handshake.refused()
    assert info.value.status == 0


def test_101_with_an_extension_that_was_not_offered_is_refused_naming_the_extension():
    handshake = ClientHandshake("ws://example.com/", compression=False)
    error = handshake_error(handshake, response_for(handshake, extra=[("Sec-WebSocket-Extensions",
                                                                       "permessage-deflate")]))
    assert "extension" in error.reason


def test_101_with_an_extension_other_than_the_offered_deflate_is_refused_naming_the_extension():
    handshake = ClientHandshake("ws://example.com/")
    error = handshake_error(handshake, response_for(handshake, extra=[("Sec-WebSocket-Extensions", "x-foo")]))
    assert "extension" in error.reason


def test_101_with_a_subprotocol_that_was_not_offered_is_refused_naming_the_subprotocol():
    handshake = ClientHandshake("ws://example.com/")
    error = handshake_error(handshake, response_for(handshake, extra=[("Sec-WebSocket-Protocol", "chat")]))
    assert "subprotocol" in error.reason


@pytest.mark.parametrize("status_line", ["garbage", "HTTP/1.1", "HTTP/1.1 abc Switching", "SSH-2.0-OpenSSH_9.6"])
def test_garbage_status_line_is_refused_naming_the_status_line(status_line):
    handshake = ClientHandshake("ws://example.com/")
    error = handshake_error(handshake, response_for(handshake, status_line))
    assert error.status == 0
    assert "status line" in error.reason


def test_response_header_line_over_8_kib_is_refused():
    handshake = ClientHandshake("ws://example.com/")
    error = handshake_error(handshake, response_for(handshake, extra=[("X-Big", "b" * 9000)]))
    assert error.status == 0
    assert "invalid handshake response" in error.reason


def test_status_or_content_length_that_is_not_a_short_ascii_number_is_a_handshake_error_not_a_crash():
    for status_line in ("HTTP/1.1 \u00b2\u00b2\u00b2 Odd", "HTTP/1.1 " + "4" * 5000 + " Long", "HTTP/1.1 40 Short"):
        handshake = ClientHandshake("ws://example.com/")
        error = handshake_error(handshake, response_for(handshake, status_line))
        assert error.status == 0 and "status line" in error.reason
    handshake = ClientHandshake("ws://example.com/")
    raw = response_for(handshake, "HTTP/1.1 403 Forbidden", headers=[("Content-Length", "\u00b2")]) + b"no"
    assert handshake.feed(raw) is False  # the length is ignored: the body is read up to the cap or the close
    try:
        handshake.refused()
    except HandshakeError as error:
        assert error.status == 403 and "no" in error.reason
    else:
        raise AssertionError("refused() did not raise")
