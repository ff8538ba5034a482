"""Handshake refusals, origin and token checks, and the connection limit (README, "The WebSocket protocol" and
"Security"), over real sockets: each refusal is a real HTTP response with its status and a reason."""

import asyncio
import json

import pytest
from websockets.exceptions import InvalidStatus

from madace_status.project.loader import ProjectPaths
from madace_status.sync.service import SyncService
from madace_status.websocket import HandshakeError
from sync_helpers import (
    ProjectFiles, ServeProcess, client_for, fence, own_connect, raw_http, recv_welcome, run, serve_args,
    upgrade_request, ws_connect)

ALLOWED_ELSEWHERE = "http://dash.example:8080"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """One server for the read-only handshake tests of this module (no token, one extra allowed origin)."""
    project = ProjectFiles.copy_of_sample(tmp_path_factory.mktemp("open") / "project")
    server = ServeProcess(serve_args(project.root, "--allow-origin", ALLOWED_ELSEWHERE)).wait_started()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    project = ProjectFiles.copy_of_sample(tmp_path_factory.mktemp("token") / "project")
    server = ServeProcess(serve_args(project.root, "--token", TOKEN)).wait_started()
    yield server
    server.stop()


# -- refusals ------------------------------------------------------------------------------------------------------

REFUSALS = [
    ("no-upgrade-header", dict(omit=("Upgrade",)), 400),
    ("no-connection-header", dict(omit=("Connection",)), 400),
    ("bad-key", dict(key="dG9vIHNob3J0"), 400),
    ("post", dict(method="POST"), 400),
    ("wrong-path", dict(path="/socket"), 404),
    ("version-8", dict(version="8"), 426),
    ("header-over-8-kib", dict(extra_lines=["X-Big: " + "a" * (8 * 1024 + 1)]), 431),
    ("over-100-headers", dict(extra_lines=["X-Extra-%d: 1" % i for i in range(101)]), 431),
    ("foreign-origin", dict(extra_lines=["Origin: http://evil.example"]), 403),
    ("two-host-headers", dict(extra_lines=["Host: other.example"]), 400),  # the host cannot be told: not a 500
]


@pytest.mark.parametrize("options,status", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_bad_handshake_gets_a_real_http_refusal_with_a_reason(open_server, options, status):
    port = open_server.ws_port
    response = raw_http(port, upgrade_request(port, **options))
    assert response.status == status, response
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["connection"] == "close"
    assert int(response.headers["content-length"]) == len(response.body)
    assert len(response.body.strip()) > 5, "the refusal says why"
    if status == 426:
        assert response.headers["sec-websocket-version"] == "13"


def test_garbage_instead_of_a_handshake_gets_400(open_server):
    response = raw_http(open_server.ws_port, b"hello there\r\n\r\n")
    assert response.status == 400, response


def test_refusals_reach_both_client_libraries_as_their_status(open_server):
    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            async with ws_connect(open_server.ws_url(path="/elsewhere")):
                pass
        assert refused.value.response.status_code == 404
        with pytest.raises(HandshakeError) as refused:
            await own_connect(open_server.ws_url(), origin="http://evil.example")
        assert refused.value.status == 403
        assert "origin" in refused.value.reason

    run(scenario)


def test_root_path_and_ws_path_are_both_websocket_endpoints(open_server):
    async def scenario():
        for path in ("/", "/ws"):
            async with ws_connect(open_server.ws_url(path=path)) as ws:
                await recv_welcome(ws)

    run(scenario)


# -- origin --------------------------------------------------------------------------------------------------------

def test_allowed_origins_are_the_dashboards_own_and_allow_origin_values(open_server):
    http_port = open_server.http_port
    allowed = [None, "http://127.0.0.1:%d" % http_port, "http://localhost:%d" % http_port,
               "http://[::1]:%d" % http_port, ALLOWED_ELSEWHERE]
    refused = ["http://evil.example", "http://127.0.0.1:%d" % (http_port + 1),
               "http://127.0.0.1:%d" % open_server.ws_port, "https://127.0.0.1:%d" % http_port,
               "http://dash.example:8081", "null", "http://127.0.0.1:%d.evil.example" % http_port]

    async def scenario():
        for origin in allowed:
            async with ws_connect(open_server.ws_url(), origin=origin) as ws:
                await recv_welcome(ws)
            async with client_for("own", open_server.ws_url(), origin=origin) as ws:
                await recv_welcome(ws)
        for origin in refused:
            with pytest.raises(InvalidStatus) as error:
                async with ws_connect(open_server.ws_url(), origin=origin):
                    pass
            assert error.value.response.status_code == 403, origin

    run(scenario)


# -- token ---------------------------------------------------------------------------------------------------------

TOKEN_OFFERS = [
    ("query", "token=" + TOKEN, {}, True),
    ("bearer", "", {"Authorization": "Bearer " + TOKEN}, True),
    ("cookie", "", {"Cookie": "theme=dark; {cookie}; other=1"}, True),
    ("token-itself-in-a-cookie", "", {"Cookie": "madace_token=%s; madace_token_{port}=%s" % (TOKEN, TOKEN)}, False),
    ("missing", "", {}, False),
    ("wrong-query", "token=guess", {}, False),
    ("wrong-bearer", "", {"Authorization": "Bearer guess"}, False),
    ("wrong-cookie", "", {"Cookie": "madace_token_{port}=guess"}, False),
    ("another-ports-cookie", "", {"Cookie": "{other_port_cookie}"}, False),
    ("prefix-only", "token=" + TOKEN[:-1], {}, False),
]


def dashboard_cookie(server):
    """`name=value` of the cookie the dashboard link sets: named for the HTTP port, an HMAC of the token."""
    cookie = server.get("/status?token=" + TOKEN).headers["set-cookie"].split(";", 1)[0]
    name, _, value = cookie.partition("=")
    assert name == "madace_token_%d" % server.http_port and TOKEN not in value and len(value) == 64
    return cookie


def fill_cookies(server, headers):
    cookie = dashboard_cookie(server)
    other_port = cookie.replace("_%d=" % server.http_port, "_%d=" % (server.http_port + 1))
    return {name: value.replace("{cookie}", cookie).replace("{port}", str(server.http_port)).replace(
        "{other_port_cookie}", other_port) for name, value in headers.items()}


@pytest.mark.parametrize("query,headers,accepted", [t[1:] for t in TOKEN_OFFERS], ids=[t[0] for t in TOKEN_OFFERS])
def test_websocket_token_by_query_bearer_or_cookie(token_server, query, headers, accepted):
    headers = fill_cookies(token_server, headers)
    async def scenario():
        if accepted:
            async with ws_connect(token_server.ws_url(query), additional_headers=headers) as ws:
                await recv_welcome(ws)
        else:
            with pytest.raises(InvalidStatus) as refused:
                async with ws_connect(token_server.ws_url(query), additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 403
            assert b"token" in refused.value.response.body

    run(scenario)


@pytest.mark.parametrize("query,headers,accepted", [t[1:] for t in TOKEN_OFFERS], ids=[t[0] for t in TOKEN_OFFERS])
def test_api_token_by_query_bearer_or_cookie(token_server, query, headers, accepted):
    headers = fill_cookies(token_server, headers)
    for path in ("/api/status", "/api/sync", "/api/activity", "/metrics", "/api/status/story/STORY-V3-020"):
        response = token_server.get(path + ("?" + query if query else ""), headers=headers)
        if accepted:
            assert response.status == 200, (path, response)
        else:
            assert response.status == 401, (path, response)
            document = response.json()
            assert document["success"] is False and document["code"] == "UNAUTHORIZED"
    refused = token_server.post_json("/api/sync", {"action": "stop"})
    assert refused.status == 401
    assert token_server.get_json("/api/sync?token=" + TOKEN)["running"] is True


def test_health_and_pages_need_no_token_and_the_dashboard_sets_the_cookie(token_server):
    assert token_server.get("/healthz").status == 200
    assert token_server.get("/status").status == 200
    assert "set-cookie" not in token_server.get("/status").headers
    assert "set-cookie" not in token_server.get("/status?token=guess").headers
    page = token_server.get("/status?token=" + TOKEN)
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("madace_token_%d=" % token_server.http_port) and TOKEN not in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie


def test_printed_dashboard_url_with_token_sets_a_cookie_that_opens_the_api_and_websocket(project, serve):
    token = "a+b/c=d&e f"  # characters a generated or typed token may well contain
    server = serve(project.root, "--token", token)
    path = server.dashboard_url.split("/", 3)[3]
    page = server.get("/" + path)
    assert page.status == 200
    assert "set-cookie" in page.headers, "the printed URL %s does not carry the token" % server.dashboard_url
    cookie = page.headers["set-cookie"].split(";", 1)[0]  # what the browser sends back
    assert server.get("/api/status", headers={"Cookie": cookie}).status == 200

    async def scenario():
        async with ws_connect(server.ws_url(), additional_headers={"Cookie": cookie}) as ws:
            await recv_welcome(ws)
        query = path.split("?", 1)[1]  # the same token, encoded as the dashboard URL carries it
        async with ws_connect(server.ws_url(query)) as ws:
            await recv_welcome(ws)

    run(scenario)


# -- connection limit ----------------------------------------------------------------------------------------------

def test_connection_limit_refuses_with_503_and_frees_places_on_close(project):
    """MAX_CONNECTIONS (10,000) has no flag: the limit is checked in-process on a SyncService built with 2."""
    async def scenario():
        service = SyncService(ProjectPaths(root=project.root), ws_port=0, poll_interval=0.05, max_connections=2)
        await service.start()
        try:
            port = service.bound_port
            url = "ws://127.0.0.1:%d/ws" % port
            async with ws_connect(url) as first, client_for("own", url) as second:
                await recv_welcome(first)
                await recv_welcome(second)
                refused = await asyncio.to_thread(raw_http, port, upgrade_request(port))
                assert refused.status == 503, refused
                assert b"too many connections" in refused.body
                with pytest.raises(HandshakeError) as error:
                    await own_connect(url)
                assert error.value.status == 503
                assert await fence(first) == []  # the ones inside are untouched
            for _ in range(200):  # both closed: their places are free again
                if not service.hub.clients:
                    break
                await asyncio.sleep(0.01)
            async with ws_connect(url) as third:
                await recv_welcome(third)
        finally:
            await service.stop()

    run(scenario)


def test_server_ignores_what_a_client_sends_about_writing_files(live, project):
    """Nothing a client sends is executed or written: a client cannot make the server touch the project."""
    before = {name: project.read_state(name) for name in ("pm-planning", "code-review")}

    async def scenario():
        async with ws_connect(live.ws_url()) as ws:
            await recv_welcome(ws)
            for message in ({"type": "state_updated", "data": {"workflowName": "pm-planning",
                                                               "workflow": {"status": "completed"}}},
                            {"type": "write", "path": project.state_path("pm-planning"), "content": "{}"},
                            {"type": "subscribe", "topics": ["workflows"], "workflows": ["../../etc/passwd"]}):
                await ws.send(json.dumps(message))
            await fence(ws)

    run(scenario)
    assert {name: project.read_state(name) for name in before} == before
    assert live.get_json("/api/sync")["seq"] == 0


def test_service_without_a_dashboard_refuses_browser_origins_with_403_not_a_dropped_connection(project):
    """A SyncService used on its own (no serve command, so no dashboard port) still answers every handshake."""
    async def scenario():
        service = SyncService(ProjectPaths(root=project.root), ws_port=0, allowed_origins=[ALLOWED_ELSEWHERE])
        await service.start()
        try:
            port = service.bound_port
            refused = await asyncio.to_thread(
                raw_http, port, upgrade_request(port, extra_lines=["Origin: http://localhost:3000"]))
            assert refused.status == 403, refused
            async with ws_connect("ws://127.0.0.1:%d/ws" % port, origin=ALLOWED_ELSEWHERE) as ws:
                await recv_welcome(ws)
        finally:
            await service.stop()

    run(scenario)
