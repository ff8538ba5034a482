"""`serve --base-path` and `--trust-proxy` against a real `serve` (README, "Behind a reverse proxy"): every route
under the base path, and what a proxy's forwarding headers change — only when it is a trusted peer. The test itself
plays the proxy here (it connects from 127.0.0.1); tests/deploy runs real nginx and Caddy in front."""

import asyncio
import json
import re
import subprocess
import sys
import time

import pytest
import websockets

from sync_helpers import REPO_ROOT, WAIT_S, clean_env, raw_http, run, upgrade_request

PUBLIC = "madace.test:8443"
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": PUBLIC, "X-Forwarded-For": "6.6.6.6, 203.0.113.7"}


@pytest.fixture
def proxied(project, serve):
    """A server that trusts this test (127.0.0.1) as its proxy, under /madace, with the WebSocket on its one port."""
    return serve(project.root, "--one-port", "--base-path", "/madace", "--trust-proxy", "127.0.0.1",
                 "--allowed-host", "madace.test")


@pytest.fixture
def untrusting(project, serve):
    """The same, but trusting another address only: this test's forwarding headers are a stranger's."""
    return serve(project.root, "--one-port", "--base-path", "/madace", "--trust-proxy", "10.9.9.9")


def ws_url(server, query="source=cli"):
    return "ws://127.0.0.1:%d/madace/ws?%s" % (server.http_port, query)


def test_every_route_is_under_the_base_path(proxied):
    assert proxied.dashboard_url.endswith(":%d/madace/status" % proxied.http_port)
    for path in ("/", "/madace", "/madace/"):
        response = proxied.get(path)
        assert response.status == 302 and response.headers["location"] == "/madace/status", path
    page = proxied.get("/madace/status")
    assert page.status == 200 and b'src="static/status.js"' in page.body  # relative: resolves under /madace/
    assert proxied.get("/madace/static/status.js").status == 200
    assert proxied.get("/madace/api/status").status == 200
    for outside in ("/status", "/api/status", "/static/status.js", "/madacex/status"):
        response = proxied.get(outside)
        assert response.status == 404 and "this server is under /madace/" in response.json()["error"], outside
    assert proxied.get("/madace/../api/status").status == 404  # no dot-segment climbs out of the base path
    # Direct, without forwarding headers: the WebSocket URL is this port's /madace/ws.
    assert proxied.get_json("/madace/api/sync")["wsUrl"] == "ws://127.0.0.1:%d/madace/ws" % proxied.http_port


def test_the_websocket_is_at_the_base_path_and_nowhere_else_on_the_http_port(proxied):
    async def scenario():
        async with websockets.connect(ws_url(proxied)) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["type"]

    assert run(scenario) == "ping"
    assert raw_http(proxied.http_port, upgrade_request(proxied.http_port, "/ws")).status == 404


def test_a_trusted_proxy_names_the_public_url_origin_and_client(proxied):
    info = proxied.get_json("/madace/api/sync", FORWARDED)
    assert info["wsUrl"] == "wss://%s/madace/ws" % PUBLIC
    page = proxied.get("/madace/status", FORWARDED)
    assert b'content="wss://madace.test:8443/madace/ws"' in page.body
    assert "connect-src 'self' wss://madace.test:8443;" in page.headers["content-security-policy"]
    # A write from the public origin is the dashboard's own: not refused as cross-site (it gets to the action).
    response = proxied.post_json("/madace/api/sync", {"action": "nope"}, dict(FORWARDED, Origin="https://" + PUBLIC))
    assert response.status == 400 and response.json()["code"] == "INVALID_ACTION"

    async def scenario():
        headers = dict(FORWARDED, Origin="https://" + PUBLIC)
        async with websockets.connect(ws_url(proxied), additional_headers=headers) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["type"] == "ping"
            return [client["remote"] for client in proxied.get_json("/madace/api/sync")["clients"]]

    # The client's address is the rightmost one the trusted proxy did not write itself (not the forged 6.6.6.6).
    assert run(scenario) == ["203.0.113.7"]
    deadline = time.monotonic() + WAIT_S
    while "connected from 203.0.113.7" not in proxied.stderr_text:  # the log names it too
        assert time.monotonic() < deadline, proxied.stderr_text[-2000:]
        time.sleep(0.02)


def test_the_public_host_still_has_to_pass_the_host_check(proxied):
    response = proxied.get("/madace/api/status", dict(FORWARDED, **{"X-Forwarded-Host": "evil.example"}))
    assert response.status == 403 and response.json()["code"] == "HOST_NOT_ALLOWED"
    upgrade = upgrade_request(proxied.http_port, "/madace/ws", extra_lines=["X-Forwarded-Host: evil.example"])
    assert raw_http(proxied.http_port, upgrade).status == 403


def test_forged_forwarding_headers_from_an_untrusted_peer_change_nothing(untrusting):
    before = untrusting.get_json("/madace/api/sync")
    forged = dict(FORWARDED, Forwarded="for=6.6.6.6;proto=https;host=madace.test")
    after = untrusting.get_json("/madace/api/sync", forged)
    assert after["wsUrl"] == before["wsUrl"] == "ws://127.0.0.1:%d/madace/ws" % untrusting.http_port
    page = untrusting.get("/madace/status", forged)
    assert b"wss://" not in page.body and "wss://" not in page.headers["content-security-policy"]
    # The forged public origin is not the dashboard's: its write and its WebSocket are cross-site.
    response = untrusting.post_json("/madace/api/sync", {"action": "nope"}, dict(forged, Origin="https://" + PUBLIC))
    assert response.status == 403 and response.json()["code"] == "CROSS_SITE_REFUSED"
    # A forged host is not checked instead of the real one: it neither passes nor fails anything.
    assert untrusting.get("/madace/api/status", {"X-Forwarded-Host": "evil.example"}).status == 200

    async def scenario():
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(ws_url(untrusting), additional_headers=dict(forged,
                                                                                       Origin="https://" + PUBLIC)):
                pass
        async with websockets.connect(ws_url(untrusting), additional_headers=forged) as ws:
            await asyncio.wait_for(ws.recv(), WAIT_S)
            remotes = [client["remote"] for client in untrusting.get_json("/madace/api/sync")["clients"]]
        return refused.value.response.status_code, remotes

    status, remotes = run(scenario)
    assert status == 403
    assert len(remotes) == 1 and remotes[0].startswith("127.0.0.1:"), remotes  # the peer, not 203.0.113.7
    assert "203.0.113.7" not in untrusting.stderr_text and "6.6.6.6" not in untrusting.stderr_text


@pytest.mark.parametrize("flags, message", [
    (["--trust-proxy", "proxy.example"], "--trust-proxy takes an IP address or network such as 127.0.0.1"),
    (["--base-path", "/a b"], "--base-path must be a path such as /madace"),
    (["--base-path", "/../etc"], "--base-path must be a path such as /madace"),
])
def test_bad_values_are_one_clear_line_and_exit_2(project, flags, message):
    result = subprocess.run([sys.executable, "-m", "madace_status", "serve", "--root", str(project.root), "--port", "0",
                             "--ws-port", "0"] + flags, cwd=REPO_ROOT, env=clean_env(), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_behind_a_trusted_proxy_every_replica_takes_the_dashboards_cookie_and_csrf_token(project, serve):
    # Replicas answer one public origin: a page served by one and its next request answered by another.
    flags = ("--one-port", "--base-path", "/madace", "--trust-proxy", "127.0.0.1", "--token", "s3cret")
    first, second = serve(project.root, *flags), serve(project.root, *flags)
    set_cookie = first.get("/madace/status?token=s3cret").headers["set-cookie"]
    assert set_cookie.startswith("madace_token_madace=") and "; Path=/madace/;" in set_cookie
    cookie = {"Cookie": set_cookie.split(";", 1)[0]}
    assert second.get("/madace/api/status", cookie).status == 200
    assert second.get("/madace/api/status").status == 401
    page = first.get("/madace/sync-status", cookie).body.decode()
    csrf = re.search(r'<meta name="madace-csrf" content="([0-9a-f]+)">', page).group(1)
    write = second.post_json("/madace/api/sync", {"action": "nope"}, dict(cookie, **{"X-Madace-CSRF": csrf}))
    assert write.status == 400 and write.json()["code"] == "INVALID_ACTION"  # past the CSRF check, on the other one
    assert second.post_json("/madace/api/sync", {"action": "nope"}, cookie).status == 403  # the cookie alone: no


def test_without_a_trusted_proxy_the_cookie_stays_one_servers_own(project, serve):
    first, second = (serve(project.root, "--token", "s3cret") for _ in range(2))
    set_cookie = first.get("/status?token=s3cret").headers["set-cookie"]
    assert set_cookie.startswith("madace_token_%d=" % first.http_port) and "; Path=/;" in set_cookie
    forged = {"Cookie": set_cookie.split(";", 1)[0].replace(str(first.http_port), str(second.http_port))}
    assert second.get("/api/status", forged).status == 401  # keyed by the first server's own run
