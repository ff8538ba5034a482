"""The details dialog (story, epic, workflow: the data of /api/status/:type/:id), opened and closed with the
keyboard, the focus back on its opener; and the activity feed filled from /api/activity when a page opens."""

import os

from playwright.sync_api import expect

from browser_helpers import apply_one_at_a_time, wait_until

CONNECTED = "Connected (rtt"
DIALOG = "#details-dialog"


def focused(page):
    return page.evaluate("() => document.activeElement && document.activeElement.outerHTML.slice(0, 120)")


def test_workflow_details_open_from_its_row_follow_live_changes_and_close_with_escape(server, project, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    opener = page.locator('#wf-body tr[data-name="pm-planning"] button.wf-open')
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.locator(DIALOG)
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("data-kind", "workflow")
    expect(page.locator("#details-title")).to_have_text("Workflow pm-planning")
    expect(dialog.locator("ol.steps li")).to_have_count(5)
    expect(dialog.locator("ol.steps li").nth(2)).to_contain_text("in progress")
    expect(dialog.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "40")
    assert recorder.api_requests("/api/status/workflow/pm-planning")
    # Live while open: the workflow moves on, the dialog follows; the focus stays on the Close button.
    expect(page.locator("#details-close")).to_be_focused()
    project.advance_pm_planning(4)
    expect(dialog.locator("dl")).to_contain_text("4/5", timeout=3000)
    expect(dialog.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "60")
    expect(page.locator("#details-close")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    wait_until(lambda: opener.evaluate("element => element === document.activeElement"), page=page,
               message="the focus back on the row")

    # A failed workflow shows its error; the mouse opens it too, and the Close button closes it.
    page.locator('#wf-body tr[data-name="architecture-review"] button.wf-open').click()
    expect(dialog.locator(".problem").first).to_contain_text("LLM API timeout")
    page.locator("#details-close").click()
    expect(dialog).to_be_hidden()

    # A click on the backdrop (outside the dialog's box) closes it too; one inside does not.
    page.locator('#wf-body tr[data-name="code-review"] td.status-cell').click()
    expect(page.locator("#details-title")).to_have_text("Workflow code-review")
    page.locator("#details-title").click()
    expect(dialog).to_be_visible()
    page.mouse.click(3, 3)
    expect(dialog).to_be_hidden()

    # A workflow whose state file goes away while its dialog is open: the dialog says it no longer exists.
    page.locator('#wf-body tr[data-name="code-review"] button.wf-open').click()
    expect(dialog).to_have_attribute("data-kind", "workflow")
    os.remove(project.workflow_path("code-review"))
    expect(dialog).to_have_attribute("data-kind", "not-found", timeout=3000)
    expect(page.locator("#details-title")).to_have_text("Not found: workflow code-review")
    page.keyboard.press("Escape")
    expect(page.locator('#wf-body tr[data-name="code-review"]')).to_have_count(0)
    recorder.assert_clean()


def test_epic_and_story_details_and_a_missing_story_by_keyboard(server, project, open_page):
    project_epic = "EPIC-V3-002"
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    opener = page.locator('#epics-panel li[data-epic="%s"] .epic-head button' % project_epic)
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.locator(DIALOG)
    expect(dialog).to_have_attribute("data-kind", "epic")
    expect(page.locator("#details-title")).to_have_text("EPIC-V3-002 — Universal Workflow Status Checker")
    expect(dialog.locator("dl")).to_contain_text("P0")
    expect(dialog.locator("dl")).to_contain_text("21 points")
    expect(dialog.locator("ul.epic-stories li")).to_have_text(
        ["US-001 — not in the status file", "US-002 — not in the status file",
         "US-003 — not in the status file", "US-004 — not in the status file"])
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    wait_until(lambda: opener.evaluate("element => element === document.activeElement"), page=page,
               message="the focus back on the epic")

    # A story, from its card on the board: its fields. The close button closes with Enter too.
    card = page.locator('#board-panel .story-card[data-id="STORY-V3-020"]')
    card.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_have_attribute("data-kind", "story")
    expect(page.locator("#details-title")).to_have_text("STORY-V3-020 — Integrate WebSocket for real-time updates")
    expect(dialog.locator("dl")).to_contain_text("In progress")
    expect(dialog.locator("dl")).to_contain_text("@alex")
    expect(dialog.locator("dl")).to_contain_text("Implementing CLI watch mode")
    expect(page.locator("#details-close")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    wait_until(lambda: card.evaluate("element => element === document.activeElement"), page=page,
               message="the focus back on the card")

    # A story that does not exist: the server's 404 message, not an error.
    page.evaluate("() => MadaceDashboard.openDetails('story', 'STORY-404')")
    expect(dialog).to_have_attribute("data-kind", "not-found")
    expect(page.locator("#details-title")).to_have_text("Not found: story STORY-404")
    status, body = server.api("GET", "/api/status/story/STORY-404")
    assert status == 404
    expect(dialog.locator(".problem")).to_have_text(body["error"])
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert recorder.page_errors == []
    assert [text for text in recorder.unexpected_console_errors()] == []


def test_a_fresh_page_fills_recent_activity_from_the_server_before_any_live_event(server, project, open_page):
    # Changes while no page is open: three events in the server's log.
    apply_one_at_a_time(server, (lambda: project.move_story("STORY-V3-022", "TODO"),
                                 lambda: project.fail_workflow("pm-planning", "LLM quota exhausted"),
                                 lambda: project.advance_pm_planning(4)))
    events = server.api("GET", "/api/activity?limit=50")[1]["events"]
    assert len(events) >= 3

    recorder = open_page(server.dashboard_url)
    page = recorder.page
    feed = page.locator("#feed li")
    expect(feed).to_have_count(len(events), timeout=5000)
    expect(page.locator("#feed-empty")).to_be_hidden()
    expect(page.locator("#feed")).to_contain_text("STORY-V3-022: Backlog → Todo")
    expect(feed.first).to_contain_text("pm-planning")  # newest first
    assert recorder.api_requests("/api/activity")
    # Nothing live happened since: the socket carried the welcome, the snapshot and pongs only.
    assert {kind for _, kind in recorder.received} <= {"ping", "snapshot", "pong"}, recorder.received
    recorder.assert_clean()

    # With the sync service stopped (no WebSocket at all), a fresh page still shows the log.
    server.sync_action("stop")
    offline = open_page(server.dashboard_url)
    expect(offline.page.locator("#conn")).to_have_attribute("data-mode", "offline", timeout=5000)
    expect(offline.page.locator("#feed li")).to_have_count(len(events))
    assert offline.websockets == []
    offline.assert_clean()
