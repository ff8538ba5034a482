"""The shipped nginx server block (README, "Behind a reverse proxy") in front of a real `serve`, over TLS with a
certificate made by openssl: the API, the WebSocket (`websockets` as the client) and the event stream under
/madace, the public URL and the client's address as the server sees them, and `status --watch --server wss://…`
with the certificate given by --cafile or SSL_CERT_FILE (and a clear refusal without it)."""

import asyncio
import http.client
import json

import pytest
import websockets

from proxies import BASE_PATH, PUBLIC_NAME, client_ssl_context
from story_edits import move_story
from sync_helpers import WAIT_S, clean_env, run
from watch_helpers import Watch


def https_get(port, path, cert, host=None, headers=None):
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=WAIT_S, context=client_ssl_context(cert))
    try:
        connection.request("GET", path, headers=dict({"Host": host or "127.0.0.1:%d" % port}, **(headers or {})))
        response = connection.getresponse()
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture
def behind(proxied_serve, nginx_in_front):
    server = proxied_serve()
    proxy = nginx_in_front(UPSTREAM="127.0.0.1:%d" % server.http_port)
    return server, proxy


def test_the_dashboard_api_and_public_urls_through_nginx_over_tls(behind, certificate):
    server, proxy = behind
    status, headers, body = https_get(proxy.port, BASE_PATH + "/api/sync", certificate[0],
                                      host="%s:%d" % (PUBLIC_NAME, proxy.port))
    assert status == 200, body
    assert json.loads(body)["wsUrl"] == "wss://%s:%d%s/ws" % (PUBLIC_NAME, proxy.port, BASE_PATH)
    status, headers, body = https_get(proxy.port, BASE_PATH + "/status", certificate[0])
    assert status == 200 and b'content="wss://127.0.0.1:%d/madace/ws"' % proxy.port in body
    assert "connect-src 'self' wss://127.0.0.1:%d;" % proxy.port in headers["content-security-policy"]
    assert https_get(proxy.port, BASE_PATH + "/static/status.js", certificate[0])[0] == 200
    # A name the server was not told of (--allowed-host) is refused, through the proxy too.
    assert https_get(proxy.port, BASE_PATH + "/api/status", certificate[0], host="evil.example")[0] == 403


def test_the_websocket_through_nginx_gets_events_and_the_server_sees_the_real_client(behind, certificate, project):
    server, proxy = behind
    origin = "https://127.0.0.1:%d" % proxy.port  # the public origin, which only the trusted proxy can vouch for

    async def scenario():
        url = "wss://127.0.0.1:%d%s/ws?source=cli" % (proxy.port, BASE_PATH)
        async with websockets.connect(url, ssl=client_ssl_context(certificate[0]),
                                      additional_headers={"Origin": origin}) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["type"] == "ping"
            assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["type"] == "snapshot"
            clients = server.get_json(BASE_PATH + "/api/sync")["clients"]
            move_story(str(project.root), "STORY-V3-020")
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
                if event["type"] == "stories_updated":
                    return clients, event

    clients, event = run(scenario)
    assert [(change["id"], change["to"]) for change in event["data"]["changes"]] == [("STORY-V3-020", "DONE")]
    # X-Forwarded-For from nginx: the client's own address, with no port (the proxy's connection has one).
    assert [client["remote"] for client in clients] == ["127.0.0.1"]


def test_the_event_stream_passes_through_nginx_unbuffered(behind, certificate):
    _, proxy = behind
    connection = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=WAIT_S,
                                             context=client_ssl_context(certificate[0]))
    try:
        connection.request("GET", BASE_PATH + "/api/events?source=curl", headers={"Accept": "text/event-stream"})
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
        first = b""
        while b"\n\n" not in first:  # the welcome arrives at once, not when a buffer fills
            first += response.read1(4096)
        assert b'"type":"ping"' in first.replace(b" ", b"")
    finally:
        connection.close()


def watch_through(proxy, cert_args, env, tmp_path, scheme="wss"):
    empty = tmp_path / "elsewhere"  # nothing to fall back on: what the view shows can only come from the server
    empty.mkdir(exist_ok=True)
    path = BASE_PATH + "/ws" if scheme == "wss" else BASE_PATH
    return Watch("STORY-V3-020", "--until", "done", "--timeout", "20", "--root", str(empty), "--server",
                 "%s://127.0.0.1:%d%s" % (scheme, proxy.port, path), *cert_args, env=env)


@pytest.mark.parametrize("how", ["--cafile", "SSL_CERT_FILE", "https event stream"])
def test_status_watch_through_nginx_with_the_certificate_given(behind, certificate, project, tmp_path, how):
    env = clean_env(COLUMNS="120")
    cert_args = ["--cafile", certificate[0]]
    if how == "SSL_CERT_FILE":
        env["SSL_CERT_FILE"], cert_args = certificate[0], []
    view = watch_through(behind[1], cert_args, env, tmp_path, "https" if how == "https event stream" else "wss")
    view.stdout.wait_for(lambda text: "STORY-V3-020 IN PROGRESS" in text, timeout=15)
    move_story(str(project.root), "STORY-V3-020")
    assert view.wait(15) == 0, view.stderr.text
    assert view.stdout.text.strip().splitlines()[-1].endswith("STORY-V3-020 DONE")


def test_status_watch_refuses_an_untrusted_certificate_in_one_line(behind, tmp_path):
    env = clean_env(COLUMNS="120")
    env.pop("SSL_CERT_FILE", None)
    view = watch_through(behind[1], [], env, tmp_path)
    assert view.wait(15) == 2
    assert "is not trusted" in view.stderr.text and "--cafile" in view.stderr.text
    bad = tmp_path / "not-a-certificate.pem"
    bad.write_text("hello")
    view = watch_through(behind[1], ["--cafile", str(bad)], env, tmp_path)
    assert view.wait(15) == 2 and "--cafile" in view.stderr.text and "cannot be read" in view.stderr.text
    assert "Traceback" not in view.stderr.text
