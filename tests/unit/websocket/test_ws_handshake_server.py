"""Server side of the opening handshake (RFC 6455 §4.2): reading the request with its limits, validating it,
the accept key, and refusals as real HTTP responses."""

import base64
import io
from http.client import HTTPResponse

import pytest

import websocket_helpers  # noqa: F401  (puts the checkout on sys.path)
from madace_status.websocket.errors import HandshakeError
from madace_status.websocket.handshake import (
    MAX_HEADERS, MAX_LINE_BYTES, RequestReader, accept_key, accept_response, check_upgrade_request,
    refusal_response)

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
DEFAULT_HEADERS = (
    ("Host", "example.com:8765"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", RFC_KEY),
    ("Sec-WebSocket-Version", "13"),
)


def build_request(request_line="GET /chat HTTP/1.1", replace=None, drop=(), extra=()):
    """Raw request bytes: the default headers, with `replace` {name: value}, `drop` names, `extra` appended."""
    replace = replace or {}
    headers = [(name, replace.get(name, value)) for name, value in DEFAULT_HEADERS if name not in drop]
    headers.extend(extra)
    lines = [request_line] + ["%s: %s" % item for item in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_request(raw):
    request = RequestReader().feed(raw)
    assert request is not None, "the request was not complete"
    return request


def refusal(raw):
    """The HandshakeError that reading then checking `raw` raises."""
    with pytest.raises(HandshakeError) as info:
        check_upgrade_request(read_request(raw))
    return info.value


def reader_refusal(*chunks):
    """The HandshakeError the RequestReader raises while reading `chunks`."""
    reader = RequestReader()
    with pytest.raises(HandshakeError) as info:
        for chunk in chunks:
            reader.feed(chunk)
    return info.value


def parse_http_response(raw):
    """Parse bytes with the standard library's own HTTP client, as a browser would."""

    class FakeSocket:
        def makefile(self, mode, *args, **kwargs):
            return io.BytesIO(raw)

    response = HTTPResponse(FakeSocket())
    response.begin()
    return response, response.read()


# -- a valid request -----------------------------------------------------------------------------------------

def test_valid_upgrade_request_is_accepted_and_its_key_returned():
    assert check_upgrade_request(read_request(build_request())) == RFC_KEY


def test_accept_key_matches_the_rfc_6455_example():
    assert accept_key(RFC_KEY) == RFC_ACCEPT


def test_accept_response_is_101_with_upgrade_connection_and_accept_headers():
    response, body = parse_http_response(accept_response(RFC_KEY))
    assert response.status == 101
    assert response.getheader("Upgrade").lower() == "websocket"
    assert response.getheader("Connection").lower() == "upgrade"
    assert response.getheader("Sec-WebSocket-Accept") == RFC_ACCEPT


def test_accept_response_ends_with_the_blank_line_and_has_no_body():
    assert accept_response(RFC_KEY).endswith(b"\r\n\r\n")


def test_request_exposes_path_query_origin_and_headers():
    raw = build_request("GET /sync/ws?token=s3cret&project=a%20b&flag= HTTP/1.1",
                        extra=[("Origin", "http://localhost:8765"), ("X-Custom", "yes")])
    request = read_request(raw)
    assert request.method == "GET"
    assert request.path == "/sync/ws"
    assert request.query_value("token") == "s3cret"
    assert request.query_value("project") == "a b"
    assert request.query_value("flag") == ""
    assert request.query_value("absent", "default") == "default"
    assert request.origin == "http://localhost:8765"
    assert request.headers.get("x-custom") == "yes"
    assert request.headers.get("HOST") == "example.com:8765"


def test_request_without_origin_reports_origin_none():
    assert read_request(build_request()).origin is None


def test_request_without_path_reports_root_path():
    assert read_request(build_request("GET ?a=1 HTTP/1.1")).path == "/"


# -- GET, HTTP/1.1, Host -------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "HEAD", "get"])
def test_method_other_than_get_is_refused_with_400_naming_get(method):
    error = refusal(build_request("%s /chat HTTP/1.1" % method))
    assert error.status == 400
    assert "GET" in error.reason


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/2.0"])
def test_http_version_other_than_1_1_is_refused_with_400(version):
    error = refusal(build_request("GET /chat %s" % version))
    assert error.status == 400
    assert "HTTP/1.1" in error.reason


def test_missing_host_is_refused_with_400_naming_host():
    error = refusal(build_request(drop=["Host"]))
    assert error.status == 400
    assert "Host" in error.reason


def test_two_host_headers_are_refused_with_400():
    error = refusal(build_request(extra=[("Host", "other.example")]))
    assert error.status == 400


@pytest.mark.parametrize("line", [b"GET /chat\r\n", b"GET  /chat HTTP/1.1\r\n", b"GET /chat FTP/1.1\r\n"])
def test_malformed_request_line_is_refused_with_400(line):
    raw = line + build_request().split(b"\r\n", 1)[1]
    error = reader_refusal(raw)
    assert error.status == 400


def test_header_line_without_colon_is_refused_with_400():
    error = reader_refusal(build_request(extra=[("NoColonHere", "")]).replace(b"NoColonHere: ", b"NoColonHere"))
    assert error.status == 400


# -- Upgrade and Connection token lists ----------------------------------------------------------------------

def test_missing_upgrade_header_is_refused_with_400_naming_upgrade():
    error = refusal(build_request(drop=["Upgrade"]))
    assert error.status == 400
    assert "Upgrade" in error.reason


def test_upgrade_to_another_protocol_is_refused_with_400():
    error = refusal(build_request(replace={"Upgrade": "h2c"}))
    assert error.status == 400


@pytest.mark.parametrize("value", ["WebSocket", "WEBSOCKET", "websocket"])
def test_upgrade_value_is_case_insensitive(value):
    assert check_upgrade_request(read_request(build_request(replace={"Upgrade": value}))) == RFC_KEY


def test_upgrade_is_a_comma_separated_token_list():
    raw = build_request(replace={"Upgrade": "h2c, WebSocket"})
    assert check_upgrade_request(read_request(raw)) == RFC_KEY


def test_connection_keep_alive_upgrade_token_list_is_accepted():
    raw = build_request(replace={"Connection": "keep-alive, Upgrade"})
    assert check_upgrade_request(read_request(raw)) == RFC_KEY


@pytest.mark.parametrize("value", ["upgrade", "UPGRADE", "keep-alive,upgrade", "Upgrade , keep-alive"])
def test_connection_value_is_case_insensitive_and_whitespace_tolerant(value):
    assert check_upgrade_request(read_request(build_request(replace={"Connection": value}))) == RFC_KEY


def test_connection_tokens_spread_over_two_header_fields_are_accepted():
    raw = build_request(replace={"Connection": "keep-alive"}, extra=[("Connection", "Upgrade")])
    assert check_upgrade_request(read_request(raw)) == RFC_KEY


def test_header_names_are_case_insensitive():
    raw = build_request().replace(b"Connection:", b"connection:").replace(b"Sec-WebSocket-Key:", b"SEC-WEBSOCKET-KEY:")
    assert check_upgrade_request(read_request(raw)) == RFC_KEY


@pytest.mark.parametrize("value", ["keep-alive", "Upgraded", "upgrade-insecure-requests"])
def test_connection_without_an_upgrade_token_is_refused_with_400(value):
    error = refusal(build_request(replace={"Connection": value}))
    assert error.status == 400
    assert "Connection" in error.reason


def test_missing_connection_header_is_refused_with_400():
    assert refusal(build_request(drop=["Connection"])).status == 400


# -- Sec-WebSocket-Key and -Version --------------------------------------------------------------------------

def test_missing_key_is_refused_with_400_naming_the_key():
    error = refusal(build_request(drop=["Sec-WebSocket-Key"]))
    assert error.status == 400
    assert "Sec-WebSocket-Key" in error.reason


@pytest.mark.parametrize("raw_key", [b"\x00" * 15, b"\x01" * 17, b"", b"\xff" * 32])
def test_key_that_does_not_decode_to_16_bytes_is_refused_with_400(raw_key):
    key = base64.b64encode(raw_key).decode("ascii")
    error = refusal(build_request(replace={"Sec-WebSocket-Key": key}))
    assert error.status == 400
    assert "Sec-WebSocket-Key" in error.reason


@pytest.mark.parametrize("key", ["not base64 at all!!!!!!!", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ==="])
def test_key_that_is_not_valid_base64_is_refused_with_400(key):
    assert refusal(build_request(replace={"Sec-WebSocket-Key": key})).status == 400


def test_any_random_16_byte_key_is_accepted():
    key = base64.b64encode(bytes(range(16))).decode("ascii")
    assert check_upgrade_request(read_request(build_request(replace={"Sec-WebSocket-Key": key}))) == key


def test_two_key_headers_are_refused_with_400():
    assert refusal(build_request(extra=[("Sec-WebSocket-Key", RFC_KEY)])).status == 400


@pytest.mark.parametrize("version", ["8", "12", "14", "13, 8"])
def test_version_other_than_13_is_refused_with_426_and_version_13_header(version):
    error = refusal(build_request(replace={"Sec-WebSocket-Version": version}))
    assert error.status == 426
    assert ("Sec-WebSocket-Version", "13") in error.headers


def test_missing_version_is_refused_naming_the_version_header():
    error = refusal(build_request(drop=["Sec-WebSocket-Version"]))
    assert error.status in (400, 426)
    assert "Sec-WebSocket-Version" in error.reason


# -- size limits (431) ---------------------------------------------------------------------------------------

def test_request_line_over_8_kib_is_refused_with_431():
    target = "/" + "a" * MAX_LINE_BYTES
    error = reader_refusal(build_request("GET %s HTTP/1.1" % target))
    assert error.status == 431


def test_request_line_of_exactly_8_kib_is_accepted():
    prefix, suffix = "GET /", " HTTP/1.1"
    line = prefix + "a" * (MAX_LINE_BYTES - len(prefix) - len(suffix)) + suffix
    assert len(line) == MAX_LINE_BYTES
    assert read_request(build_request(line)).path.startswith("/aaa")


def test_request_line_over_8_kib_is_refused_with_431_while_still_arriving():
    # No line end and no blank line yet: the reader must not wait for more of an already oversized line.
    error = reader_refusal(b"GET /" + b"a" * (MAX_LINE_BYTES + 1 - 5))
    assert error.status == 431


def test_request_line_far_over_8_kib_is_refused_with_431_while_still_arriving():
    reader = RequestReader()
    with pytest.raises(HandshakeError) as info:
        for _ in range(64):
            reader.feed(b"a" * 1024)
    assert info.value.status == 431


def test_header_line_over_8_kib_is_refused_with_431():
    error = reader_refusal(build_request(extra=[("X-Big", "b" * MAX_LINE_BYTES)]))
    assert error.status == 431


def test_header_line_of_exactly_8_kib_is_accepted():
    value = "b" * (MAX_LINE_BYTES - len("X-Big: "))
    request = read_request(build_request(extra=[("X-Big", value)]))
    assert request.headers.get("X-Big") == value


def test_header_line_over_8_kib_is_refused_with_431_while_still_arriving():
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
    error = reader_refusal(head + b"b" * (MAX_LINE_BYTES + 1 - len("X-Big: ")))
    assert error.status == 431


def test_header_line_of_exactly_8_kib_is_accepted_when_split_between_its_cr_and_lf():
    value = "b" * (MAX_LINE_BYTES - len("X-Big: "))
    raw = build_request(extra=[("X-Big", value)])
    cut = raw.index(b"\r\n", raw.index(b"X-Big")) + 1  # just after the CR that ends the 8 KiB line
    reader = RequestReader()
    assert reader.feed(raw[:cut]) is None
    request = reader.feed(raw[cut:])
    assert request is not None and request.headers.get("X-Big") == value


def test_100_headers_are_accepted():
    extra = [("X-H%d" % i, "v") for i in range(MAX_HEADERS - len(DEFAULT_HEADERS))]
    request = read_request(build_request(extra=extra))
    assert len(request.headers.items) == MAX_HEADERS
    assert check_upgrade_request(request) == RFC_KEY


def test_101_headers_are_refused_with_431():
    extra = [("X-H%d" % i, "v") for i in range(MAX_HEADERS + 1 - len(DEFAULT_HEADERS))]
    error = reader_refusal(build_request(extra=extra))
    assert error.status == 431


def test_101_headers_are_refused_with_431_before_the_blank_line_arrives():
    raw = build_request(extra=[("X-H%d" % i, "v") for i in range(MAX_HEADERS + 1 - len(DEFAULT_HEADERS))])
    error = reader_refusal(raw[:-2])  # everything but the final blank line
    assert error.status == 431


def test_endless_stream_of_headers_is_refused_with_431():
    reader = RequestReader()
    reader.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(HandshakeError) as info:
        for i in range(10000):
            reader.feed(b"X-H%d: v\r\n" % i)
    assert info.value.status == 431


# -- arrival in pieces, leftover bytes -----------------------------------------------------------------------

def test_request_split_into_one_byte_feeds_is_parsed_at_the_last_byte():
    raw = build_request("GET /chat?x=1 HTTP/1.1", extra=[("Origin", "http://o")])
    reader = RequestReader()
    for index in range(len(raw) - 1):
        assert reader.feed(raw[index:index + 1]) is None
    request = reader.feed(raw[-1:])
    assert request.path == "/chat" and request.query_value("x") == "1" and request.origin == "http://o"
    assert check_upgrade_request(request) == RFC_KEY
    assert reader.leftover == b""


def test_request_split_at_the_blank_line_is_parsed():
    raw = build_request()
    reader = RequestReader()
    assert reader.feed(raw[:-3]) is None
    assert reader.feed(raw[-3:-1]) is None
    assert reader.feed(raw[-1:]) is not None


def test_bytes_after_the_header_block_are_kept_as_leftover():
    frame_bytes = b"\x81\x85\x01\x02\x03\x04" + bytes(b ^ m for b, m in zip(b"hello", b"\x01\x02\x03\x04\x01"))
    reader = RequestReader()
    assert reader.feed(build_request() + frame_bytes) is not None
    assert reader.leftover == frame_bytes


# -- refusals as HTTP responses ------------------------------------------------------------------------------

def test_refusal_response_is_a_complete_http_response_with_the_reason_as_body():
    response, body = parse_http_response(refusal_response(400, "missing 'Upgrade: websocket'"))
    assert response.status == 400
    assert response.reason == "Bad Request"
    assert body.decode("utf-8").strip() == "missing 'Upgrade: websocket'"
    assert int(response.getheader("Content-Length")) == len(body)
    assert response.getheader("Connection").lower() == "close"


def test_426_refusal_response_carries_the_sec_websocket_version_13_header():
    error = refusal(build_request(replace={"Sec-WebSocket-Version": "8"}))
    response, body = parse_http_response(refusal_response(error.status, error.reason, error.headers))
    assert response.status == 426
    assert response.getheader("Sec-WebSocket-Version") == "13"
    assert b"8" in body


def test_431_refusal_response_is_a_complete_http_response():
    error = reader_refusal(build_request(extra=[("X-Big", "b" * MAX_LINE_BYTES)]))
    response, body = parse_http_response(refusal_response(error.status, error.reason, error.headers))
    assert response.status == 431
    assert body.strip() == error.reason.encode("utf-8")


def test_refusal_response_body_carries_a_non_ascii_reason_as_utf8():
    response, body = parse_http_response(refusal_response(403, "origin “evil” refused"))
    assert response.status == 403
    assert body.decode("utf-8").strip() == "origin “evil” refused"


def test_a_request_head_over_max_head_bytes_is_431_even_in_valid_lines_and_at_the_limit_it_is_read():
    from madace_status.websocket.handshake import MAX_HEAD_BYTES
    line_value = "c" * 4000
    too_many = [("X-Fill-%d" % index, line_value) for index in range(MAX_HEAD_BYTES // 4000 + 1)]
    raw = build_request(extra=too_many)
    error = reader_refusal(*[raw[i:i + 1000] for i in range(0, len(raw), 1000)])  # refused while it arrives
    assert error.status == 431 and str(MAX_HEAD_BYTES) in error.reason
    fits = build_request(extra=too_many[:MAX_HEAD_BYTES // 4020 - 1])
    assert MAX_HEAD_BYTES - 8000 < len(fits) <= MAX_HEAD_BYTES
    assert read_request(fits).headers.get("X-Fill-0") == line_value


def test_a_request_target_urlsplit_rejects_is_a_400():
    error = reader_refusal(build_request("GET //[x/chat HTTP/1.1"))
    assert error.status == 400


def test_a_request_dripped_one_byte_at_a_time_reads_as_the_whole_one_and_keeps_its_limits():
    # Each byte is searched a bounded number of times (issue 19: the search restarted from the start at every
    # read, so a head dripped a byte at a time cost its length squared).
    data = build_request(extra=[("X-Pad-%d" % index, "v" * 60) for index in range(50)])
    reader = RequestReader()
    results = [reader.feed(data[index:index + 1]) for index in range(len(data))]
    assert results[:-1] == [None] * (len(data) - 1) and results[-1] is not None
    assert results[-1].headers.items == RequestReader().feed(data).headers.items
    too_many = build_request(extra=[("X-%d" % index, "v") for index in range(MAX_HEADERS + 1)])
    reader = RequestReader()
    with pytest.raises(HandshakeError) as refused:
        for index in range(len(too_many)):
            reader.feed(too_many[index:index + 1])
    assert refused.value.status == 431
    long_line = b"GET / HTTP/1.1\r\nX-Long: " + b"v" * (MAX_LINE_BYTES + 1)
    reader = RequestReader()
    with pytest.raises(HandshakeError) as refused:
        for index in range(len(long_line)):
            reader.feed(long_line[index:index + 1])
    assert refused.value.status == 431
