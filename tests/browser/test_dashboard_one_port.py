"""`serve --one-port` (README, "`madace-status serve`"): the dashboard and its WebSocket on one port and one
origin — the page connects to /ws on the port it was loaded from, and goes live there, in Chromium."""

from urllib.parse import urlsplit

from playwright.sync_api import expect


def test_one_port_serves_the_page_and_its_websocket_from_the_same_origin(serve, project, open_page):
    server = serve("--one-port")
    assert urlsplit(server.ws_url).port == server.http_port and urlsplit(server.ws_url).path == "/ws"
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=10000)
    assert recorder.websockets and urlsplit(recorder.websockets[0]).port == server.http_port
    project.advance_pm_planning(4)
    expect(page.locator('#wf-body tr[data-name="pm-planning"] .step-num')).to_have_text("4/5", timeout=2000)
    sync_page = open_page(server.base_url + "/sync-status")
    expect(sync_page.page.locator("#state")).to_have_text("Running")
    recorder.assert_clean()
