"""The dashboard in Chromium against a real server: first load, live events applied from their own data."""

import os
import time
from urllib.parse import urlsplit

from playwright.sync_api import expect

from browser_helpers import wait_until

CONNECTED = "Connected (rtt"


def row(page, name):
    return page.locator('#wf-body tr[data-name="%s"]' % name)


def card_count(page, state):
    return page.locator("#card-%s .count" % state)


def test_page_loads_connected_with_no_console_error_and_no_outside_request(server, open_page):
    response_headers = {}
    recorder = open_page(None)
    page = recorder.page
    page.on("response", lambda response: response_headers.setdefault(response.url, response.headers))
    page.goto(server.dashboard_url)
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    expect(page.locator("#conn")).to_have_attribute("data-mode", "connected")

    # The sample project as the server reads it.
    for state, count in (("BACKLOG", "5"), ("TODO", "1"), ("IN_PROGRESS", "1"), ("DONE", "4"), ("TOTAL", "11")):
        expect(card_count(page, state)).to_have_text(count)
    expect(page.locator("#card-TODO .limit")).to_have_text("max 1")
    expect(page.locator("#wf-body tr")).to_have_count(5)
    expect(row(page, "pm-planning").locator(".step-num")).to_have_text("3/5")
    expect(row(page, "pm-planning").locator(".step-name")).to_have_text("generate-initial-prd")
    expect(row(page, "pm-planning").locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "40")
    expect(row(page, "architecture-review").locator(".badge")).to_have_text("failed")
    expect(row(page, "architecture-review").locator(".wf-error")).to_contain_text("LLM API timeout")
    expect(page.locator("#last-updated")).not_to_have_text("—")

    # The WebSocket URL is the one the server announced (a random port: nothing can be hard-coded).
    assert recorder.websockets, "the page opened no WebSocket"
    assert recorder.websockets[0].startswith(server.ws_url + "?")
    assert recorder.websocket_query(0)["source"] == "web-ui"
    assert page.locator('meta[name="madace-ws-url"]').get_attribute("content") == server.ws_url

    # Nothing leaves 127.0.0.1, and the CSP the server sent let every script and style (static files) run.
    for url in recorder.requests + recorder.websockets:
        assert urlsplit(url).hostname == "127.0.0.1", url
    csp = response_headers[server.dashboard_url]["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    recorder.assert_clean()
    assert recorder.console_errors == []


def test_state_file_write_updates_the_workflow_row_within_one_second(server, project, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    status_requests = len(recorder.api_requests("/api/status"))

    step_name = project.advance_pm_planning(4)
    written = time.monotonic()
    expect(row(page, "pm-planning").locator(".step-num")).to_have_text("4/5", timeout=1000)
    expect(row(page, "pm-planning").locator(".step-name")).to_have_text(step_name, timeout=1000)
    expect(row(page, "pm-planning").locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "60",
                                                                                         timeout=1000)
    assert time.monotonic() - written < 1.0
    expect(row(page, "pm-planning").locator(".pct")).to_have_text("60%")

    # Applied from the event's own data: no re-fetch of the status.
    assert len(recorder.api_requests("/api/status")) == status_requests
    recorder.assert_clean()


def test_story_move_updates_the_cards_and_flags_the_wip_violation(server, project, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    expect(page.locator("#card-TODO")).not_to_have_class("card violated")

    project.move_story("STORY-V3-022", "TODO")
    expect(card_count(page, "TODO")).to_have_text("2", timeout=2000)
    expect(card_count(page, "BACKLOG")).to_have_text("4")
    expect(page.locator("#card-TODO")).to_have_class("card violated")
    flag = page.locator("#card-TODO .flag")
    expect(flag).to_be_visible()
    expect(flag).to_contain_text("WIP limit exceeded")
    expect(flag).to_contain_text("STORY-V3-022")
    expect(page.locator("#feed")).to_contain_text("STORY-V3-022: Backlog → Todo")

    project.move_story("STORY-V3-022", "DONE")
    expect(card_count(page, "TODO")).to_have_text("1", timeout=2000)
    expect(card_count(page, "DONE")).to_have_text("5")
    expect(page.locator("#card-TODO .flag")).to_be_hidden()
    expect(page.locator("#card-TODO")).to_have_class("card")
    expect(card_count(page, "TOTAL")).to_have_text("11")
    recorder.assert_clean()


def test_failed_workflow_shows_its_error_and_the_activity_feed_grows(server, project, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    expect(page.locator("#feed-empty")).to_be_visible()  # a fresh server has no events yet
    expect(page.locator("#feed li")).to_have_count(0)

    project.fail_workflow("pm-planning", "LLM quota exhausted")
    pm = row(page, "pm-planning")
    expect(pm.locator(".badge")).to_have_text("failed", timeout=2000)
    expect(pm.locator(".wf-error")).to_be_visible()
    expect(pm.locator(".wf-error")).to_contain_text("LLM quota exhausted")
    expect(page.locator("#feed li.k-failed")).to_contain_text("Workflow pm-planning failed: LLM quota exhausted")
    expect(page.locator("#feed li")).to_have_count(2)  # state_updated, then workflow_failed
    expect(page.locator("#feed-empty")).to_be_hidden()

    project.advance_pm_planning(5)
    expect(page.locator("#feed li")).to_have_count(3, timeout=2000)  # state_updated (failed → in_progress: no lifecycle)
    expect(pm.locator(".wf-error")).to_be_hidden()
    expect(page.locator("#feed li").first).to_contain_text("pm-planning")

    # A page opened now gets the same feed from /api/activity, newest first.
    later = open_page(server.dashboard_url)
    expect(later.page.locator("#feed li")).to_have_count(3)
    expect(later.page.locator("#feed li").last).to_contain_text("pm-planning: failed")
    assert later.api_requests("/api/activity")
    recorder.assert_clean()
    later.assert_clean()


def test_a_warning_that_comes_with_a_workflow_change_shows_in_the_notices_at_once(server, project, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    expect(page.locator("#notices li")).to_have_count(0)
    document = project.read_workflow("pm-planning")
    document["status"] = "paused-by-hand"  # an unknown status: kept as given, and warned about
    project.write_workflow("pm-planning", document)
    expect(page.locator("#notices li")).to_contain_text("paused-by-hand", timeout=2000)
    assert len(recorder.api_requests("/api/status")) <= 1  # from the event itself, not a re-fetch
    recorder.assert_clean()


def test_a_notice_that_changes_with_no_record_shows_and_clears_at_once(server, project, open_page):
    """The state directory removed after its last file went: no workflow event is left to carry the warning, so
    a `notices_updated` does (issue 18); making the directory again clears it the same way."""
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    state_dir = os.path.dirname(project.workflow_path("pm-planning"))
    for name in os.listdir(state_dir):
        os.remove(os.path.join(state_dir, name))
    expect(page.locator("#wf-body tr")).to_have_count(0, timeout=2000)
    expect(page.locator("#notices li")).to_have_count(0)
    os.rmdir(state_dir)
    expect(page.locator("#notices li")).to_contain_text("no workflow state directory", timeout=2000)
    os.mkdir(state_dir)
    expect(page.locator("#notices li")).to_have_count(0, timeout=2000)
    assert len(recorder.api_requests("/api/status")) <= 1  # from the events themselves, not a re-fetch
    recorder.assert_clean()


def test_events_are_not_refetched_and_only_one_socket_and_ping_timer_live(server, project, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    requests_before = len(recorder.requests)
    for step in (2, 3, 4, 5):
        project.advance_pm_planning(step)
        expect(row(page, "pm-planning").locator(".step-num")).to_have_text("%d/5" % step, timeout=2000)
    assert len(recorder.requests) == requests_before, recorder.requests[requests_before:]
    assert recorder.probe("openSockets") == 1
    assert recorder.probe("intervals") == 1  # the JSON ping
    # At most the pong deadline and the "connection lasted 10 s" backoff reset are pending.
    wait_until(lambda: recorder.probe("timeouts") <= 2, message="no stray timeouts", page=page)

    # Leaving the page closes its socket and clears every timer.
    page.evaluate("() => window.dispatchEvent(new PageTransitionEvent('pagehide', {persisted: false}))")
    assert recorder.probe("openSockets") == 0
    assert recorder.probe("intervals") == 0 and recorder.probe("timeouts") == 0
    recorder.assert_clean()
