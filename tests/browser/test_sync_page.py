"""/sync-status in Chromium: what the service is doing, who is connected, and its Start / Stop / Restart
buttons, watched from the dashboard open beside it."""

import re
from urllib.parse import urlsplit

from playwright.sync_api import expect


def test_sync_page_shows_the_service_and_its_clients_and_stop_start_restart_work(server, open_page):
    dashboard = open_page(server.dashboard_url)
    expect(dashboard.page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=5000)
    sync = open_page(server.base_url + "/sync-status")
    page = sync.page

    expect(page.locator("#state")).to_have_text("Running")
    expect(page.locator("#ws-url")).to_have_text(server.ws_url)
    expect(page.locator("#uptime")).to_contain_text(" s")
    run_id = server.api("GET", "/api/sync")[1]["runId"]
    expect(page.locator("#run-id")).to_have_text(run_id)
    client = page.locator("#clients-body tr").filter(has_text="web-ui")
    expect(client).to_have_count(1)
    expect(client.locator('td[data-label="Client id"] code')).to_have_text(re.compile(r"^[0-9a-f]{8}$"))
    expect(client.locator('td[data-label="Connected since"] time')).to_be_visible()
    expect(client.locator('td[data-label="Last seen"]')).to_contain_text("ago")
    expect(page.locator("#client-count")).to_have_text("(1)")

    # Stop: the service goes, the dashboard falls back to polling.
    page.locator("#stop").click()
    expect(page.locator("#state")).to_have_text("Stopped", timeout=3000)
    expect(page.locator("#message")).to_have_text("sync service stopped")
    expect(page.locator("#uptime")).to_contain_text("stopped")
    expect(page.locator("#clients-empty")).to_be_visible()
    expect(dashboard.page.locator("#conn-text")).to_have_text("🔴 Offline — polling", timeout=3000)

    # Start, with the keyboard: the service is back, and so is the dashboard (at its next poll).
    page.locator("#start").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#state")).to_have_text("Running", timeout=3000)
    expect(page.locator("#message")).to_contain_text("sync service started on port")
    new_ws_url = server.api("GET", "/api/sync")[1]["wsUrl"]
    expect(page.locator("#ws-url")).to_have_text(new_ws_url)
    expect(dashboard.page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=8000)
    expect(page.locator("#clients-body tr").filter(has_text="web-ui")).to_have_count(1, timeout=4000)

    # Restart: a new run.
    page.locator("#restart").click()
    expect(page.locator("#message")).to_contain_text("sync service restarted", timeout=3000)
    expect(page.locator("#run-id")).not_to_have_text(run_id)
    expect(page.locator("#state")).to_have_text("Running")

    for url in sync.requests:
        assert urlsplit(url).hostname == "127.0.0.1"
    assert sync.websockets == []  # the sync page only polls /api/sync
    sync.assert_clean()
    assert sync.console_errors == []
    dashboard.assert_clean()
