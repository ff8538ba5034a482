"""The dashboard when things break: the whole server dies, the sync service stops, the socket drops or goes
silent. It must say so, keep the data fresh by polling, come back by itself and resume where it left off."""

import json
import re

from playwright.sync_api import expect

from browser_helpers import wait_until

CONNECTED = "Connected (rtt"


def row(page, name):
    return page.locator('#wf-body tr[data-name="%s"]' % name)


def assert_one_live_connection(recorder):
    """After any outage: one open socket, one ping interval, no retry/countdown/poll timer left running."""
    wait_until(lambda: recorder.probe("openSockets") == 1, message="exactly one open WebSocket", page=recorder.page)
    assert recorder.probe("intervals") == 1, "only the ping interval should remain"
    assert recorder.probe("timeouts") <= 2, "at most the pong deadline and the backoff reset"


def test_killing_the_whole_server_shows_reconnecting_then_recovers_with_the_missed_change(server, project,
                                                                                           open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    run_id = server.api("GET", "/api/sync")[1]["runId"]

    server.kill()
    expect(page.locator("#conn-text")).to_contain_text(re.compile(r"Reconnecting in \d+ s"), timeout=3000)
    expect(page.locator("#conn")).to_have_attribute("data-mode", "waiting")

    # A change made while nothing is serving, then the server comes back on the same ports.
    step_name = project.advance_pm_planning(4)
    project.move_story("STORY-V3-023", "IN PROGRESS")
    server.restart()
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=12000)
    expect(row(page, "pm-planning").locator(".step-name")).to_have_text(step_name)
    expect(page.locator("#card-IN_PROGRESS .count")).to_have_text("2")
    expect(page.locator("#card-IN_PROGRESS")).to_have_class("card violated")

    # It asked to resume from what it had seen; a new run answers with a resync snapshot.
    query = recorder.websocket_query(len(recorder.websockets) - 1)
    assert query["runId"] == run_id and query["since"] == "0" and query["source"] == "web-ui"
    last = len(recorder.websockets) - 1
    wait_until(lambda: (last, "snapshot") in recorder.received, message="the resync snapshot", page=page)

    # Live again: a new change arrives by push.
    project.advance_pm_planning(5)
    expect(row(page, "pm-planning").locator(".step-num")).to_have_text("5/5", timeout=1500)
    assert_one_live_connection(recorder)
    assert recorder.page_errors == []
    assert recorder.unexpected_console_errors() == []


def test_online_event_retries_at_once_instead_of_waiting_out_the_backoff(server, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    server.kill()
    # Let the backoff grow past what the test then waits for.
    expect(page.locator("#conn-text")).to_contain_text(re.compile(r"Reconnecting in ([3-9]|\d\d) s"), timeout=8000)
    server.restart()
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=1500)

    # The same for the tab becoming visible again.
    server.kill()
    expect(page.locator("#conn-text")).to_contain_text(re.compile(r"Reconnecting in ([3-9]|\d\d) s"), timeout=8000)
    server.restart()
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=1500)
    assert_one_live_connection(recorder)
    assert recorder.page_errors == []


def test_stopping_the_sync_service_switches_to_polling_and_starting_it_reconnects(server, project, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)

    server.sync_action("stop")
    expect(page.locator("#conn-text")).to_have_text("🔴 Offline — polling", timeout=3000)
    expect(page.locator("#conn")).to_have_attribute("data-mode", "offline")
    assert recorder.probe("openSockets") == 0

    # Still fresh: the page reads /api/status every 5 s.
    polls = len(recorder.api_requests("/api/status"))
    step_name = project.advance_pm_planning(2)
    project.move_story("STORY-V3-020", "DONE")
    expect(row(page, "pm-planning").locator(".step-name")).to_have_text(step_name, timeout=6500)
    expect(page.locator("#card-IN_PROGRESS .count")).to_have_text("0")
    expect(page.locator("#card-DONE .count")).to_have_text("5")
    assert len(recorder.api_requests("/api/status")) > polls
    expect(page.locator("#conn-text")).to_have_text("🔴 Offline — polling")

    # Started again: back to push, and the change made meanwhile stays. The page would notice at its next poll
    # (the sync page test waits for that); Refresh, pressed from the keyboard, tries at once.
    # With --ws-port 0 the service comes back on another port; the page follows /api/sync's wsUrl.
    project.advance_pm_planning(3)
    ws_url = server.sync_action("start") and server.api("GET", "/api/sync")[1]["wsUrl"]
    page.locator("#refresh").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=3000)
    expect(row(page, "pm-planning").locator(".step-num")).to_have_text("3/5")
    assert recorder.websockets[-1].startswith(ws_url + "?")
    project.advance_pm_planning(4)
    expect(row(page, "pm-planning").locator(".step-num")).to_have_text("4/5", timeout=1500)
    assert_one_live_connection(recorder)
    assert recorder.page_errors == []
    assert recorder.unexpected_console_errors() == []


def test_a_dropped_socket_resumes_from_the_last_seq_and_gets_exactly_the_missed_events(server, project, open_page):
    recorder = open_page(None)
    page = recorder.page
    routes = []
    link = {"up": True}
    delivered = []  # (connection index, message type) of what reached the page

    def proxy(route):
        upstream = route.connect_to_server()  # page → server is forwarded as is
        index = len(routes)
        routes.append(route)

        def to_page(message):  # server → page only while the test's "network" is up
            if index > 0 or link["up"]:
                delivered.append((index, json.loads(message)["type"]))
                route.send(message)

        upstream.on_message(to_page)

    page.route_web_socket(re.compile(r"^ws://127\.0\.0\.1:%d/" % server.ws_port), proxy)
    page.goto(server.dashboard_url)
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    project.advance_pm_planning(4)  # seq 1
    expect(row(page, "pm-planning").locator(".step-num")).to_have_text("4/5", timeout=1500)
    run_id = server.api("GET", "/api/sync")[1]["runId"]

    # The network goes dark: the next event (seq 2) is lost in transit, then the connection drops.
    link["up"] = False
    project.advance_pm_planning(5)
    wait_until(lambda: server.api("GET", "/api/sync")[1]["seq"] >= 2, message="the server saw the change", page=page)
    routes[0].close(code=4000, reason="test: network dropped")
    expect(row(page, "pm-planning").locator(".step-num")).to_have_text("4/5")
    assert delivered.count((0, "state_updated")) == 1
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    expect(row(page, "pm-planning").locator(".step-num")).to_have_text("5/5", timeout=1500)

    query = recorder.websocket_query(1)
    assert (query["runId"], query["since"], query["source"]) == (run_id, "1", "web-ui")
    assert [kind for index, kind in delivered if index == 1][:2] == ["ping", "state_updated"], delivered
    assert (1, "snapshot") not in delivered, "a resumable reconnect must not need a snapshot"
    assert_one_live_connection(recorder)
    assert recorder.page_errors == []


def test_a_socket_without_pong_is_declared_dead_and_replaced(serve, open_page):
    server = serve("--heartbeat", "1")  # the welcome says heartbeatMs 1000: ping every 1 s, dead after 0.5 s
    recorder = open_page(None)
    page = recorder.page
    routes = []

    def proxy(route):
        upstream = route.connect_to_server()
        routes.append(route)
        if len(routes) == 1:  # the first connection loses every ping the page sends
            route.on_message(lambda message: None if json.loads(message).get("type") == "ping"
                             else upstream.send(message))

    page.route_web_socket(re.compile(r"^ws://127\.0\.0\.1:%d/" % server.ws_port), proxy)
    page.goto(server.dashboard_url)
    wait_until(lambda: len(routes) >= 2, timeout=5, message="a second connection after the silent one", page=page)
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=3000)
    assert recorder.websocket_query(1)["since"] == "0"
    assert_one_live_connection(recorder)
    assert recorder.page_errors == []
