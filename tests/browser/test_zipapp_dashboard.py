"""The dashboard served from the single-file app (README, "Install"): `madace-status.pyz serve --demo`, copied
alone into an empty directory, in Chromium — pages, scripts and styles all read out of the archive, live."""

import os
import signal
import subprocess
import sys
import threading

from playwright.sync_api import expect

ANNOUNCE_TIMEOUT_S = 30.0


def test_the_dashboard_served_by_the_single_file_app_loads_clean_and_goes_live(single_file_app, open_page):
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MADACE_STATUS_", "PYTHON"))}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen([sys.executable, single_file_app, "serve", "--demo", "--port", "0", "--ws-port", "0"],
                               cwd=os.path.dirname(single_file_app), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, encoding="utf-8")
    timer = threading.Timer(ANNOUNCE_TIMEOUT_S, process.kill)  # no announcement fails the test, never hangs it
    timer.start()
    try:
        dashboard_url = next((line.split()[1] for line in process.stdout if line.startswith("Dashboard:")), None)
        timer.cancel()
        assert dashboard_url is not None, "serve --demo from the .pyz announced no dashboard"
        dashboard = open_page(dashboard_url)
        page = dashboard.page
        expect(page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=10000)
        expect(page.locator("#card-BACKLOG .count")).not_to_have_text("")
        expect(page.locator("#feed li").first).to_be_visible(timeout=15000)  # the demo changes: events arrive
        dashboard.assert_clean()  # no console error, no failed request: every script and style came out of the zip
    finally:
        timer.cancel()
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        process.stdout.close()
