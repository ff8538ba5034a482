"""Chromium's dashboard negotiates permessage-deflate with the sync service and reads the compressed snapshot
and events as usual; with --compression off it gets the same, uncompressed."""

import re
import urllib.request

from playwright.sync_api import expect

from browser_helpers import wait_until


def metric(server, name):
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=10) as response:
        text = response.read().decode("utf-8")
    return float(re.search(r"^madace_%s (\S+)$" % name, text, re.MULTILINE).group(1))


def web_ui_clients(server):
    return [client for client in server.api("GET", "/api/sync")[1]["clients"] if client["source"] == "web-ui"]


def test_the_dashboard_negotiates_deflate_and_follows_compressed_events(server, project, open_page):
    dashboard = open_page(server.dashboard_url)
    expect(dashboard.page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=5000)
    [client] = web_ui_clients(server)
    assert client["compression"] is True  # Chromium offered permessage-deflate and the server accepted it
    wait_until(lambda: (0, "snapshot") in dashboard.received, message="the snapshot reached the page", page=dashboard.page)
    sent_plain, sent = metric(server, "compression_in_bytes_total"), metric(server, "compression_out_bytes_total")
    assert sent_plain > 3 * sent > 0  # the snapshot went compressed, and the page decoded it

    # Events after the compressed snapshot, on the same inflater (Chromium keeps one across messages).
    project.advance_pm_planning(4)
    expect(dashboard.page.locator('#wf-body tr[data-name="pm-planning"] .step-num')).to_have_text("4/5", timeout=3000)
    project.advance_pm_planning(5)
    expect(dashboard.page.locator('#wf-body tr[data-name="pm-planning"] .step-num')).to_have_text("5/5", timeout=3000)
    assert [kind for _, kind in dashboard.received].count("state_updated") >= 2
    assert metric(server, "compression_out_bytes_total") > sent
    dashboard.assert_clean()


def test_with_compression_off_the_dashboard_works_uncompressed(serve, open_page):
    server = serve("--compression", "off")
    dashboard = open_page(server.dashboard_url)
    expect(dashboard.page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=5000)
    [client] = web_ui_clients(server)
    assert client["compression"] is False
    wait_until(lambda: (0, "snapshot") in dashboard.received, message="the snapshot reached the page", page=dashboard.page)
    assert metric(server, "compression_out_bytes_total") == 0
    dashboard.assert_clean()
