"""The dashboard behind the shipped nginx server block (README, "Behind a reverse proxy"): Chromium opens
https://madace.test:PORT/madace/status (a certificate made by openssl; the name mapped to 127.0.0.1), the page goes
live over wss:// through nginx, and a change to the files reaches it."""

import os
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from browser_helpers import launched_chromium
from proxies import BASE_PATH, PUBLIC_NAME, Nginx, free_port, make_certificate, proxied_serve_flags, shipped_config


@pytest.fixture(scope="module")
def browser():
    """Chromium that resolves madace.test to this machine, as a team's DNS would resolve the proxy's name."""
    with launched_chromium(["--host-resolver-rules=MAP %s 127.0.0.1" % PUBLIC_NAME]) as browser:
        yield browser


@pytest.fixture
def nginx(serve, tmp_path):
    server = serve(*proxied_serve_flags())
    cert, key = make_certificate(str(tmp_path))
    port = free_port()
    directory = str(tmp_path / "nginx")
    os.makedirs(directory)
    proxy = Nginx(directory, shipped_config("nginx", SERVER_NAME=PUBLIC_NAME, LISTEN="127.0.0.1:%d" % port, CERT=cert,
                                            KEY=key, BASE_PATH=BASE_PATH, UPSTREAM="127.0.0.1:%d" % server.http_port),
                  port)
    yield proxy
    proxy.stop()


def test_the_dashboard_goes_live_over_wss_through_nginx_and_follows_the_files(nginx, new_context, project):
    context = new_context(ignore_https_errors=True)  # the test's own certificate: no CA in Chromium's store
    page = context.new_page()
    websockets = []
    page.on("websocket", lambda websocket: websockets.append(websocket.url))
    url = "https://%s:%d%s/status" % (PUBLIC_NAME, nginx.port, BASE_PATH)
    page.goto(url)
    expect(page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=10000)
    assert websockets and urlsplit(websockets[0])[:3] == ("wss", "%s:%d" % (PUBLIC_NAME, nginx.port), BASE_PATH + "/ws")
    project.advance_pm_planning(4)
    expect(page.locator('#wf-body tr[data-name="pm-planning"] .step-num')).to_have_text("4/5", timeout=3000)
    page.click("text=Sync service")
    expect(page).to_have_url("https://%s:%d%s/sync-status" % (PUBLIC_NAME, nginx.port, BASE_PATH))
    expect(page.locator("#state")).to_have_text("Running")
