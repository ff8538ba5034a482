"""Issue 10 §1, §2 and §8 against a real `serve`: DNS rebinding (the Host check on HTTP and on the WebSocket
handshake), CSRF on POST /api/sync, and hostile numbers and bodies that must get a 400, never a 500.

Each test mounts the attack, asserts the refusal, and shows that a well-behaved client is still served."""

import json
import re
import socket

import pytest

from sync_helpers import WAIT_S, clean_env, raw_http, upgrade_request

EVIL = "evil.example"
TOKEN = "s3cret-token"
ROUTES = [("GET", "/"), ("GET", "/status"), ("GET", "/sync-status"), ("GET", "/healthz"), ("GET", "/metrics"),
          ("GET", "/api/status"), ("GET", "/api/activity"), ("GET", "/api/sync"), ("POST", "/api/sync")]


def handshake_status(port, host):
    """The status code a WebSocket upgrade with `Host: host` gets (the status line is read, then we hang up)."""
    request = upgrade_request(port, omit=("Host",), extra_lines=["Host: " + host])
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, "the server hung up without answering: %r" % head
            head += chunk
    return int(head.split(b" ", 2)[1]), head


def assert_envelope(response, status, code):
    assert response.status == status, response
    document = response.json()
    assert document["success"] is False and document["code"] == code, document
    assert "\n" not in document["error"] and "\r" not in document["error"]
    return document


# -- §1 DNS rebinding ----------------------------------------------------------------------------------------------

def test_a_rebound_host_name_is_refused_on_every_route_and_the_handshake(project, serve):
    server = serve(project.root, "--allowed-host", "dev.example", "--allowed-host", "other.test:8080")
    for method, path in ROUTES:
        body = b'{"action": "stop"}' if method == "POST" else None
        response = server.http(method, path, body, {"Host": EVIL + ":%d" % server.http_port})
        document = assert_envelope(response, 403, "HOST_NOT_ALLOWED")
        assert "--allowed-host" in document["error"] and EVIL in document["error"]
    assert server.get_json("/api/sync")["running"] is True, "the refused POST stopped the service"

    allowed = ["localhost:%d" % server.http_port, "LOCALHOST", "localhost.:1", "127.0.0.1:%d" % server.http_port,
               "[::1]:%d" % server.http_port, "10.1.2.3", "192.168.0.7:3000", "[fe80::1]:80", "dev.example",
               "Dev.Example:9999", "other.test"]
    for host in allowed:
        assert server.get("/api/status", headers={"Host": host}).status == 200, host
    refused = [EVIL, "localhost.evil.example", "127.0.0.1.evil.example", "dev.example.evil", "localhost:abc",
               "::1", "", "a" * 400, "sub.dev.example"]
    for host in refused:
        assert_envelope(server.get("/api/status", headers={"Host": host}), 403, "HOST_NOT_ALLOWED")

    # HTTP/1.1 without a Host (no browser sends that) is refused; HTTP/1.0 may leave it out.
    missing = raw_http(server.http_port, b"GET /api/status HTTP/1.1\r\n\r\n")
    assert_envelope(missing, 403, "HOST_NOT_ALLOWED")
    assert raw_http(server.http_port, b"GET /api/status HTTP/1.0\r\n\r\n").status == 200
    # Two Host headers: which one is meant cannot be told (RFC 9112 §3.2: 400), in either order.
    for hosts in (b"Host: localhost\r\nHost: evil.example", b"Host: evil.example\r\nHost: localhost"):
        two = raw_http(server.http_port, b"GET /api/status HTTP/1.1\r\n" + hosts + b"\r\n\r\n")
        assert_envelope(two, 400, "BAD_REQUEST")
    # An absolute-form target names the host itself (RFC 9112 §3.2.2): that one is checked, the Host is ignored.
    absolute = raw_http(server.http_port, b"GET http://evil.example/api/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert_envelope(absolute, 403, "HOST_NOT_ALLOWED")
    fine = raw_http(server.http_port, b"GET http://localhost:1/api/status HTTP/1.1\r\nHost: evil.example\r\n\r\n")
    assert fine.status == 200, fine

    # The WebSocket handshake: the same rule, from the same function.
    status, head = handshake_status(server.ws_port, EVIL + ":%d" % server.ws_port)
    assert status == 403, head
    for host in ("localhost:%d" % server.ws_port, "dev.example", "10.0.0.9:1"):
        assert handshake_status(server.ws_port, host)[0] == 101, host
    refusal = raw_http(server.ws_port, upgrade_request(server.ws_port, omit=("Host",), extra_lines=["Host: " + EVIL]))
    assert refusal.status == 403 and b"--allowed-host" in refusal.body, refusal
    two = raw_http(server.ws_port, upgrade_request(server.ws_port, extra_lines=["Host: " + EVIL]))
    assert two.status == 400, two
    absolute = raw_http(server.ws_port, upgrade_request(server.ws_port).replace(
        b"GET /ws ", b"GET http://%s/ws " % EVIL.encode(), 1))
    assert absolute.status == 403 and b"--allowed-host" in absolute.body, absolute


def test_allowed_hosts_from_the_environment_and_star_turns_the_check_off(project, serve):
    listed = serve(project.root, env=clean_env(MADACE_STATUS_ALLOWED_HOSTS=" a.test , b.test "))
    assert listed.get("/healthz", headers={"Host": "b.test:1"}).status == 200
    assert listed.get("/healthz", headers={"Host": EVIL}).status == 403
    everything = serve(project.root, "--allowed-host", "*")
    assert everything.get("/api/status", headers={"Host": EVIL}).status == 200
    assert handshake_status(everything.ws_port, EVIL)[0] == 101


# -- §2 CSRF -------------------------------------------------------------------------------------------------------

def post_sync(server, action, headers=None, content_type="application/json"):
    body = json.dumps({"action": action}).encode()
    return server.http("POST", "/api/sync", body, dict({"Content-Type": content_type}, **(headers or {})))


def test_cross_site_writes_are_refused_and_curl_and_the_dashboard_still_work(project, serve):
    server = serve(project.root, "--allow-origin", "http://dash.example:8080")
    run_id = server.get_json("/api/sync")["runId"]
    own = "http://127.0.0.1:%d" % server.http_port
    attacks = [
        {"Origin": "http://" + EVIL},  # a no-cors fetch from any site
        {"Origin": "http://127.0.0.1:%d" % (server.http_port + 1)},  # another local port: same site
        {"Origin": "http://localhost:%d" % server.ws_port},
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": own, "Sec-Fetch-Site": "same-site"},
    ]
    for headers in attacks:
        for content_type in ("text/plain", "application/json"):
            response = post_sync(server, "stop", headers, content_type)
            assert_envelope(response, 403, "CROSS_SITE_REFUSED")
    info = server.get_json("/api/sync")
    assert info["running"] is True and info["runId"] == run_id, "a refused write changed the service"

    # No Origin (curl, a script), exactly as the README shows; the dashboard's own origin; an --allow-origin.
    curl = raw_http(server.http_port, b"POST /api/sync HTTP/1.1\r\nHost: localhost:3000\r\nUser-Agent: curl/8\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 20\r\n\r\n"
                    b'{"action":"restart"}')
    assert curl.status == 200 and curl.json()["running"] is True, curl
    assert server.get_json("/api/sync")["runId"] != run_id
    assert post_sync(server, "stop", {"Origin": own, "Sec-Fetch-Site": "same-origin"}).status == 200
    assert post_sync(server, "start", {"Origin": "http://dash.example:8080"}).status == 200
    assert post_sync(server, "restart", {"Origin": "http://localhost:%d" % server.http_port}).status == 200


def page_csrf(page_response):
    match = re.search(rb'<meta name="madace-csrf" content="([^"]*)">', page_response.body)
    assert match, "the sync page carries no anti-CSRF meta tag"
    return match.group(1).decode()


def test_with_a_token_the_cookie_alone_never_authorises_a_write(project, serve):
    server = serve(project.root, "--token", TOKEN)
    own = {"Origin": "http://127.0.0.1:%d" % server.http_port, "Sec-Fetch-Site": "same-origin"}
    page = server.get("/sync-status?token=" + TOKEN)
    cookie = page.headers["set-cookie"].split(";", 1)[0]
    csrf = page_csrf(page)
    assert len(csrf) == 64 and TOKEN not in csrf and TOKEN not in cookie
    assert page_csrf(server.get("/sync-status")) == "", "a page for someone without the token holds no CSRF token"
    assert page_csrf(server.get("/sync-status", headers={"Cookie": cookie})) == csrf

    # The cookie a browser attaches by itself: refused, even from the dashboard's own origin.
    assert_envelope(post_sync(server, "stop", dict(own, Cookie=cookie)), 403, "CSRF_TOKEN_REQUIRED")
    assert_envelope(post_sync(server, "stop", dict(own, Cookie=cookie, **{"X-Madace-CSRF": "0" * 64})), 403,
                    "CSRF_TOKEN_REQUIRED")
    assert_envelope(post_sync(server, "stop", {"X-Madace-CSRF": csrf}), 401, "UNAUTHORIZED")  # no cookie
    assert_envelope(post_sync(server, "stop", {"Cookie": "madace_token=" + TOKEN}), 401, "UNAUTHORIZED")
    assert server.get_json("/api/sync?token=" + TOKEN)["running"] is True

    # The page (cookie + its CSRF token) and a script (the bearer header) may write.
    answer = post_sync(server, "stop", dict(own, Cookie=cookie, **{"X-Madace-CSRF": csrf}))
    assert answer.status == 200 and answer.json()["running"] is False, answer
    answer = post_sync(server, "start", {"Authorization": "Bearer " + TOKEN})
    assert answer.status == 200 and answer.json()["running"] is True, answer
    # The cookie still opens the reads and the WebSocket (read-only) as before.
    assert server.get("/api/status", headers={"Cookie": cookie}).status == 200


# -- §8 hostile numbers and bodies ------------------------------------------------------------------------------

HOSTILE_QUERIES = ["limit=%C2%B2", "limit=%D9%A3", "limit=" + "9" * 5000, "limit=1" + "0" * 12, "limit=-1",
                   "limit=1e3", "limit=0x10", "limit=+5", "limit=%205", "limit="]


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=lambda q: q[:20])
def test_hostile_activity_limits_get_400_not_500(live, query):
    assert_envelope(live.get("/api/activity?" + query), 400, "VALIDATION_ERROR")


def test_hostile_bodies_and_lengths_get_400_and_nothing_reaches_a_traceback(live):
    nested = b"[" * 30000 + b"]" * 30000  # RecursionError in json.loads, under the 64 KiB body limit
    deep_object = b'{"action": ' + b'{"a": ' * 6000 + b"1" + b"}" * 6000 + b"}"
    for body in (nested, deep_object, b'{"action": "stop"' + b"," * 100, b"\xff\xfe", b"NaN"):
        response = live.http("POST", "/api/sync", body, {"Content-Type": "application/json"})
        assert response.status == 400, (body[:20], response)
        assert response.json()["code"] in ("INVALID_JSON", "INVALID_ACTION"), response
    for length in ("\xb2".encode("latin-1"), "²".encode("utf-8"), b"9" * 5000, b"-1", b"1e3", b" "):
        request = b"POST /api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + length + b"\r\n\r\n{}"
        response = raw_http(live.http_port, request)
        assert_envelope(response, 400, "VALIDATION_ERROR")
    with socket.create_connection(("127.0.0.1", live.http_port), timeout=WAIT_S) as sock:
        sock.sendall(b"POST /api/sync HTTP/1.0\r\nContent-Length: 10\r\n\r\n{}")
        sock.shutdown(socket.SHUT_WR)  # the body ends before its Content-Length
        assert sock.recv(4096).startswith(b"HTTP/1.0 400 ")
    assert live.get_json("/api/activity?limit=5")["success"] is True
    assert live.get_json("/api/sync")["running"] is True
    assert "Traceback" not in live.stderr_text and "INTERNAL_ERROR" not in live.stderr_text


NASTY_REQUESTS = [
    b"GET //[x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # urlsplit raises ValueError
    b"GET http://evil.example/api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /api/status?%ff%fe=%00&&&=&token HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /api/status/story/%ff%fe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /api/status/story/" + b"%2e" * 3000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nbroken header line\r\n\r\n",
    b"PUT /api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",  # a TLS hello
]


@pytest.mark.parametrize("request_bytes", NASTY_REQUESTS, ids=range(len(NASTY_REQUESTS)))
def test_malformed_requests_get_an_answer_never_a_500_or_a_traceback(live, request_bytes):
    response = raw_http(live.http_port, request_bytes)
    assert response.status < 500 or response.status in (501, 505), response  # never a 500
    assert response.status != 0, "the server hung up without an answer"
    assert live.get("/healthz").status == 200
    assert "Traceback" not in live.stderr_text and "INTERNAL_ERROR" not in live.stderr_text


def test_put_with_a_foreign_host_is_refused_by_the_host_check(live):
    response = live.http("PUT", "/api/sync", b"{}", {"Host": EVIL})
    assert_envelope(response, 403, "HOST_NOT_ALLOWED")
