"""The epics panel: each epic of the sample project with its status, priority and a bar of its stories by state,
live when an epic file or the story file changes; an unreadable epic file shows why."""

import os

from playwright.sync_api import expect

from browser_helpers import atomic_write

CONNECTED = "Connected (rtt"
EPICS_DIR = os.path.join("docs", "v3-planning", "epics")


def epic(page, epic_id):
    return page.locator('#epics-panel li[data-epic="%s"]' % epic_id)


def epic_path(project, name):
    return os.path.join(project.root, EPICS_DIR, name)


def add_stories_to_epic(project, name, lines, status=None):
    path = epic_path(project, name)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if status is not None:
        text = "\n".join("**Status:** " + status if line.startswith("**Status:**") else line
                         for line in text.split("\n"))
    atomic_write(path, text.rstrip("\n") + "\n" + "".join(line + "\n" for line in lines))


def test_epics_panel_lists_the_sample_epics_with_status_priority_and_stories(server, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    panel = page.locator("#epics-panel")
    expect(panel.locator("h2")).to_contain_text("Epics")
    expect(panel.locator("li[data-epic]")).to_have_count(3)

    v3_002 = epic(page, "EPIC-V3-002")
    expect(v3_002.locator(".epic-head button")).to_have_text("EPIC-V3-002 — Universal Workflow Status Checker")
    expect(v3_002.locator(".epic-status")).to_have_text("In Progress")
    expect(v3_002.locator(".epic-priority")).to_have_text("P0")
    # The sample epics list stories (US-001…) that the status file does not hold.
    expect(v3_002.locator(".tally")).to_have_text("4 stories, not in the status file")
    expect(v3_002.locator(".epic-bar")).to_have_count(0)
    expect(epic(page, "EPIC-V3-001").locator(".tally")).to_have_text("3 stories, not in the status file")
    expect(epic(page, "EPIC-V3-001").locator(".epic-status")).to_have_text("Done")
    expect(epic(page, "EPIC-MAM").locator(".tally")).to_have_text("no stories listed")
    expect(epic(page, "EPIC-MAM").locator(".epic-priority")).to_have_text("P1")
    recorder.assert_clean()


def test_an_epic_that_gains_stories_shows_their_states_live_and_follows_story_moves(server, project, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    v3_002 = epic(page, "EPIC-V3-002")
    expect(v3_002.locator(".tally")).to_have_text("4 stories, not in the status file")

    add_stories_to_epic(project, "EPIC-V3-002-universal-status-checker.md",
                        ["### STORY-V3-020: Integrate WebSocket", "### STORY-V3-016: The status command",
                         "### STORY-V3-022: Selective subscriptions"], status="✅ Done")
    expect(v3_002.locator(".epic-status")).to_have_text("Done", timeout=3000)
    expect(v3_002.locator(".tally")).to_have_text("1 of 3 done · 4 not in the status file")
    bar = v3_002.locator(".epic-bar")
    expect(bar).to_have_attribute("aria-label", "EPIC-V3-002: 1 of 3 done (1 done, 1 in progress, 0 todo, 1 backlog)")
    expect(bar.locator("span")).to_have_count(3)
    states = bar.locator("span").evaluate_all("spans => spans.map(s => s.dataset.state)")
    assert states == ["DONE", "IN_PROGRESS", "BACKLOG"]
    widths = bar.locator("span").evaluate_all("spans => spans.map(s => s.getBoundingClientRect().width)")
    assert abs(widths[0] - widths[1]) <= 2 and abs(widths[1] - widths[2]) <= 2, widths  # a third each

    project.move_story("STORY-V3-020", "DONE")
    expect(v3_002.locator(".tally")).to_have_text("2 of 3 done · 4 not in the status file", timeout=3000)
    expect(bar.locator("span")).to_have_count(2)
    expect(epic(page, "EPIC-V3-001").locator(".tally")).to_have_text("3 stories, not in the status file")
    expect(epic(page, "EPIC-V3-001").locator("button.show-stories")).to_have_count(0)

    # "Stories" puts the epic into the board's filter: the board shows its three stories only.
    v3_002.locator("button.show-stories").click()
    expect(page.locator("#board-filter")).to_have_value("epic:EPIC-V3-002")
    expect(page.locator("#board-panel .story-card:visible")).to_have_count(3)
    assert sorted(page.locator("#board-panel .story-card:visible").evaluate_all("cs => cs.map(c => c.dataset.id)")) == \
        ["STORY-V3-016", "STORY-V3-020", "STORY-V3-022"]

    # The epic's details list its stories with their states; a story opens in the same dialog, and Escape
    # returns the focus to the epic it was opened from.
    opener = v3_002.locator(".epic-head button")
    opener.click()
    dialog = page.locator("#details-dialog")
    stories = dialog.locator("ul.epic-stories li")
    expect(stories).to_have_count(7)
    expect(stories.nth(4)).to_contain_text("STORY-V3-020 — Integrate WebSocket for real-time updates")
    expect(stories.nth(4).locator(".state-tag")).to_have_text("Done")
    expect(stories.first).to_have_text("US-001 — not in the status file")
    stories.nth(5).locator("button").click()
    expect(dialog).to_have_attribute("data-kind", "story")
    expect(page.locator("#details-title")).to_contain_text("STORY-V3-016")
    expect(dialog.locator("dl")).to_contain_text("EPIC-V3-002 — Universal Workflow Status Checker")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    recorder.assert_clean()


def test_an_unreadable_epic_file_shows_its_error(server, project, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    os.mkdir(epic_path(project, "EPIC-BAD.md"))  # named like an epic file, but a directory
    bad = epic(page, "EPIC-BAD")
    expect(bad.locator(".epic-error")).to_be_visible(timeout=3000)
    expect(bad.locator(".epic-error")).to_contain_text("directory")
    expect(page.locator("#epics-panel li[data-epic]")).to_have_count(4)

    os.rmdir(epic_path(project, "EPIC-BAD.md"))
    expect(page.locator("#epics-panel li[data-epic]")).to_have_count(3, timeout=3000)
    recorder.assert_clean()
