"""The board (board.js) in Chromium against a real server on a copy of the sample project: its columns and cards
are the project's, a story moved in the status file moves its card live (only that card), the filter, the
keyboard, long columns, 360 px and both themes (screenshots in tests/output/screenshots/)."""

import os

import pytest
from playwright.sync_api import expect

from browser_helpers import SCREENSHOT_DIR, STATUS_FILE, assert_no_sideways_scroll, wait_until
from madace_status.demo import atomic_write
from madace_status.project.loader import ProjectPaths, load_project

CONNECTED = "Connected (rtt"
STATES = ("BACKLOG", "TODO", "IN_PROGRESS", "DONE")
EPIC_MAM = os.path.join("docs", "v3-planning", "epics", "EPIC-MAM.md")
MAM_STORIES = ("STORY-V3-020", "STORY-V3-022")  # the sample's epics list none of its stories: the tests add two
CARDS_PER_PAGE = 50        # board.js's constant
AUTO_COLLAPSE_ABOVE = 200  # board.js's AUTO_COLLAPSE_ABOVE_STORIES

# Installed before the page's scripts: records every card that gets the "moved" highlight, and every card
# element ever taken out of a column (a rebuild would take them all).
WATCH_SCRIPT = """
window.__moved = []; window.__removedCards = [];
new MutationObserver((records) => {
  for (const record of records) {
    if (record.type === "attributes" && record.target.classList.contains("moved")) window.__moved.push(record.target.dataset.id);
    for (const node of record.removedNodes || []) if (node.classList && node.classList.contains("story")) window.__removedCards.push(node.dataset.id);
  }
}).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["class"] });
"""


def column(page, state):
    return page.locator('#board .column[data-state="%s"]' % state)


def card_ids(page, state):
    return column(page, state).locator(".story").evaluate_all("items => items.map(item => item.dataset.id)")


def expected_columns(root):
    project = load_project(ProjectPaths(root))
    by_state = {state: [] for state in STATES}
    for story in project.stories:
        by_state[story.status].append(story)
    return by_state


def list_epic_stories(project, ids):
    """EPIC-MAM.md of the test's copy lists `ids` as its stories (`### ID: title`)."""
    path = os.path.join(project.root, EPIC_MAM)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    text += "\n## Stories\n\n" + "".join("### %s: a story of this epic\n" % story_id for story_id in ids)
    atomic_write(path, text)


def add_backlog_stories(project, count):
    """`count` more BACKLOG stories (BULK-0001…), written before the server starts."""
    lines = "".join("- [ ] **[BULK-%04d]** Bulk story number %d | 1 points | @bulk%d\n" % (n, n, n % 7)
                    for n in range(1, count + 1))
    text = project.status_text().replace("## TODO\n", lines + "\n## TODO\n", 1)
    atomic_write(os.path.join(project.root, STATUS_FILE), text)


def open_board(open_page, server, **options):
    recorder = open_page(None, **options)
    recorder.page.add_init_script(WATCH_SCRIPT)
    recorder.page.goto(server.dashboard_url)
    expect(recorder.page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=10000)
    expect(recorder.page.locator("#board .story").first).to_be_visible()
    return recorder


@pytest.fixture
def epic_server(project, serve):
    list_epic_stories(project, MAM_STORIES)
    return serve()


def test_columns_and_cards_are_the_projects(epic_server, project, open_page):
    recorder = open_board(open_page, epic_server)
    page = recorder.page
    expected = expected_columns(project.root)
    summary = epic_server.api("GET", "/api/status")[1]["data"]
    for state in STATES:
        assert card_ids(page, state) == [story.id for story in expected[state]], state  # file order
        expect(column(page, state).locator(".column-count")).to_have_text(str(len(expected[state])))
        limit = summary["states"][state]["limit"]
        expect(column(page, state).locator(".column-limit")).to_have_text("" if limit is None else "max %d" % limit)
        expect(column(page, state)).not_to_have_class("column over-limit")
        expect(column(page, state).locator(".column-toggle")).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#board-count")).to_have_text("(11 stories)")

    card = page.locator('#board .story[data-id="STORY-V3-020"] .story-card')
    expect(card.locator(".story-id")).to_have_text("STORY-V3-020")
    expect(card.locator(".story-title")).to_have_text("Integrate WebSocket for real-time updates")
    expect(card.locator(".story-points")).to_have_text("3 pts")
    expect(card.locator(".story-assignee")).to_have_text("@alex")
    expect(card.locator(".story-epic")).to_have_text("EPIC-MAM")
    expect(card.locator(".story-epic")).to_have_attribute("title", "MADACE Agile Method core")
    expect(card).to_have_attribute("aria-label", "STORY-V3-020, Integrate WebSocket for real-time updates, 3 pts, "
                                                 "assigned to @alex, epic EPIC-MAM")
    # A story with no assignee and no epic shows neither.
    other = page.locator('#board .story[data-id="STORY-V3-023"]')
    expect(other.locator(".story-assignee")).to_be_hidden()
    expect(other.locator(".story-epic")).to_be_hidden()
    assert page.evaluate("() => window.MadaceDashboard.storyEpic('story-v3-022').id") == "EPIC-MAM"
    assert page.evaluate("() => window.MadaceDashboard.storyEpic('STORY-V3-021')") is None
    recorder.assert_clean()


def test_a_story_moved_in_the_file_moves_its_card_live_and_flags_the_wip_limit(server, project, open_page):
    recorder = open_board(open_page, server)
    page = recorder.page
    page.evaluate("() => { window.__removedCards = []; document.querySelector('[data-id=\"STORY-V3-016\"]').__mark = 1; }")

    project.move_story("STORY-V3-022", "IN PROGRESS")
    in_progress = column(page, "IN_PROGRESS")
    expect(in_progress.locator('.story[data-id="STORY-V3-022"]')).to_be_visible(timeout=5000)
    assert card_ids(page, "IN_PROGRESS") == ["STORY-V3-022", "STORY-V3-020"]  # it went to the top of the section
    assert "STORY-V3-022" not in card_ids(page, "BACKLOG")
    expect(in_progress).to_have_class("column over-limit")
    expect(in_progress.locator(".column-flag")).to_have_text("⚠ Over its WIP limit: 2 stories, max 1")
    expect(in_progress.locator(".column-count")).to_have_text("2")
    expect(in_progress.locator(".column-toggle")).to_have_attribute(
        "aria-label", "In progress: 2 stories, WIP limit 1, over its limit")
    expect(column(page, "BACKLOG").locator(".column-count")).to_have_text("4")
    wait_until(lambda: "STORY-V3-022" in page.evaluate("() => window.__moved"), message="the moved card highlighted",
               page=page)
    # Only the moved card changed: no other card was highlighted, removed or rebuilt.
    assert set(page.evaluate("() => window.__moved")) == {"STORY-V3-022"}
    assert page.evaluate("() => window.__removedCards") == ["STORY-V3-022"]  # out of BACKLOG, into IN PROGRESS
    assert page.evaluate("() => document.querySelector('[data-id=\"STORY-V3-016\"]').__mark") == 1

    project.move_story("STORY-V3-022", "DONE")  # back under the limit
    expect(column(page, "DONE").locator('.story[data-id="STORY-V3-022"]')).to_be_visible(timeout=5000)
    expect(in_progress).not_to_have_class("column over-limit")
    expect(in_progress.locator(".column-flag")).to_be_hidden()
    recorder.assert_clean()


def test_the_highlight_respects_reduced_motion(server, project, open_page, new_context):
    context = new_context(reduced_motion="reduce")
    recorder = open_page(None, context=context)
    page = recorder.page
    page.goto(server.dashboard_url)
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=10000)
    project.move_story("STORY-V3-023", "TODO")
    card = column(page, "TODO").locator('.story[data-id="STORY-V3-023"] .story-card')
    expect(card).to_be_visible(timeout=5000)
    assert card.evaluate("element => getComputedStyle(element).animationName") == "none"


def test_the_filter_matches_text_assignee_and_epic_in_every_column(epic_server, open_page):
    recorder = open_board(open_page, epic_server)
    page = recorder.page
    box = page.locator("#board-filter")
    expect(page.get_by_label("Filter stories")).to_have_count(1)

    def shown():
        return sorted(page.locator("#board .story").evaluate_all("items => items.map(item => item.dataset.id)"))

    box.fill("websocket")  # id or title, any case, in every column
    expect(page.locator("#board-count")).to_have_text("(3 of 11 stories match)")
    assert shown() == ["STORY-V3-020", "STORY-V3-022", "STORY-V3-024"]
    expect(page.locator("#board-announce")).to_have_text("3 stories match the filter")
    expect(column(page, "BACKLOG").locator(".column-count")).to_have_text("2 of 5")

    box.fill("assignee:alex")
    expect(page.locator("#board-count")).to_have_text("(3 of 11 stories match)")
    assert shown() == ["STORY-V3-016", "STORY-V3-019", "STORY-V3-020"]
    expect(column(page, "TODO").locator(".column-empty")).to_have_text("No story here matches the filter.")

    box.fill("@dana")
    expect(page.locator("#board-count")).to_have_text("(1 of 11 stories match)")
    assert shown() == ["STORY-V3-022"]

    box.fill("epic:EPIC-MAM")
    expect(page.locator("#board-count")).to_have_text("(2 of 11 stories match)")
    assert shown() == list(MAM_STORIES)

    box.fill("epic:mam assignee:alex websocket")  # every word must match
    expect(page.locator("#board-count")).to_have_text("(1 of 11 stories match)")
    assert shown() == ["STORY-V3-020"]

    box.fill("STORY-V3-01")
    expect(page.locator("#board-count")).to_have_text("(3 of 11 stories match)")
    box.press("Escape")  # clears the filter
    expect(box).to_have_value("")
    expect(page.locator("#board-count")).to_have_text("(11 stories)")
    expect(page.locator("#board-announce")).to_have_text("Filter cleared: all stories shown")

    # The hook other views use: fills the box, filters, and brings the board into view.
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    page.evaluate("() => window.MadaceDashboard.filterBoard('assignee:sam')")
    expect(box).to_have_value("assignee:sam")
    assert shown() == ["STORY-V3-021"]
    expect(page.locator("#h-board")).to_be_in_viewport()
    recorder.assert_clean()


def test_columns_collapse_and_cards_open_by_keyboard(server, open_page):
    recorder = open_board(open_page, server)
    page = recorder.page
    toggle = column(page, "DONE").locator(".column-toggle")
    assert toggle.evaluate("element => element.tagName") == "BUTTON"
    assert toggle.get_attribute("aria-controls") == column(page, "DONE").locator("ol").get_attribute("id")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(column(page, "DONE").locator(".story")).to_have_count(0)
    expect(column(page, "DONE").locator(".column-count")).to_have_text("4")  # the count stays on the head
    expect(toggle).to_have_attribute("aria-label", "Done: 4 stories, collapsed")
    page.keyboard.press("Space")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(column(page, "DONE").locator(".story")).to_have_count(4)

    # One Tab stop per column: Tab goes from the head to the column's first card, and on to the next column.
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("data-id", "PLAN-001")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.closest('.column')") is None  # out of the board
    # The arrow keys move between cards: down the column, then across to the nearest card of the next one.
    page.locator('#board .story[data-id="PLAN-001"] .story-card').focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator(":focus")).to_have_attribute("data-id", "STORY-V3-016")
    page.keyboard.press("End")
    expect(page.locator(":focus")).to_have_attribute("data-id", "STORY-V3-019")
    page.keyboard.press("ArrowLeft")  # In progress has one card: its last
    expect(page.locator(":focus")).to_have_attribute("data-id", "STORY-V3-020")
    page.keyboard.press("ArrowLeft")
    expect(page.locator(":focus")).to_have_attribute("data-id", "STORY-V3-021")
    page.keyboard.press("Home")
    expect(page.locator(":focus")).to_have_attribute("data-id", "STORY-V3-021")
    # The card last focused in a column is its Tab stop; every other card is out of the Tab order.
    stops = page.locator('#board .story-card[tabindex="0"]').evaluate_all("cards => cards.map(card => card.dataset.id)")
    assert stops == ["STORY-V3-022", "STORY-V3-021", "STORY-V3-020", "STORY-V3-019"]
    page.locator('#board .story[data-id="PLAN-001"] .story-card').focus()

    # Enter on a card opens the story's details through the hook the details view sets...
    page.evaluate("() => { window.__opened = []; window.MadaceDashboard.openDetails = (type, id) => window.__opened.push([type, id]); }")
    page.keyboard.press("Enter")
    assert page.evaluate("() => window.__opened") == [["story", "PLAN-001"]]
    # ... and without that hook, the page's lookup shows the story.
    page.evaluate("() => { window.MadaceDashboard.openDetails = null; }")
    page.locator('#board .story[data-id="STORY-V3-021"] .story-card').click()
    expect(page.locator('[data-result="story"]')).to_contain_text("STORY-V3-021")
    recorder.assert_clean()


def test_a_long_column_starts_collapsed_and_shows_a_bounded_number_of_cards(project, serve, open_page):
    add_backlog_stories(project, 245)  # 250 in BACKLOG
    server = serve()
    recorder = open_board(open_page, server)
    page = recorder.page
    backlog = column(page, "BACKLOG")
    toggle = backlog.locator(".column-toggle")
    expect(backlog.locator(".column-count")).to_have_text("250")
    expect(toggle).to_have_attribute("aria-expanded", "false")  # more than AUTO_COLLAPSE_ABOVE: collapsed
    expect(backlog.locator(".story")).to_have_count(0)
    expect(column(page, "DONE").locator(".story")).to_have_count(4)

    toggle.click()
    expect(backlog.locator(".story")).to_have_count(CARDS_PER_PAGE)
    more = backlog.locator(".show-more")
    expect(more).to_have_text("Show 50 more (200 not shown)")
    more.focus()
    page.keyboard.press("Enter")
    expect(backlog.locator(".story")).to_have_count(2 * CARDS_PER_PAGE)
    expect(page.locator(":focus")).to_have_attribute("data-id", card_ids(page, "BACKLOG")[CARDS_PER_PAGE])
    expect(more).to_have_text("Show 50 more (150 not shown)")

    page.locator("#board-filter").fill("@bulk3")  # BULK-n with n % 7 == 3: 35 of them
    expect(backlog.locator(".column-count")).to_have_text("35 of 250")
    expect(backlog.locator(".story")).to_have_count(35)
    expect(more).to_be_hidden()
    recorder.assert_clean()


@pytest.mark.parametrize("scheme", ("light", "dark"))
def test_board_at_360_px_and_1280_px_in_both_themes_with_screenshots(epic_server, project, open_page, scheme):
    os.makedirs(SCREENSHOT_DIR, exist_ok=True)
    project.move_story("STORY-V3-022", "TODO")  # over the TODO limit: the flag shows on the screenshot
    for width in (1280, 360):
        recorder = open_board(open_page, epic_server, color_scheme=scheme, viewport={"width": width, "height": 900})
        page = recorder.page
        expect(column(page, "TODO")).to_have_class("column over-limit")
        assert_no_sideways_scroll(page, width)
        boxes = [column(page, state).bounding_box() for state in STATES]
        if width == 360:  # stacked: one above the other, each as wide as the board
            assert len({round(box["x"]) for box in boxes}) == 1
            assert all(boxes[i]["y"] < boxes[i + 1]["y"] for i in range(3))
        else:  # side by side
            assert len({round(box["y"]) for box in boxes}) == 1
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert background == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(244, 246, 248)")
        page.locator("#board-panel").screenshot(path=os.path.join(SCREENSHOT_DIR, "board-%s-%d.png" % (scheme, width)))
        recorder.assert_clean()


def test_without_the_sync_service_the_board_says_it_waits_for_the_stories(serve, open_page):
    server = serve("--no-sync")  # /api/status has the counts; the stories come only with the live snapshot
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn")).to_have_attribute("data-mode", "offline", timeout=10000)
    expect(page.locator("#card-TOTAL .count")).to_have_text("11")
    expect(page.locator("#board-count")).to_have_text("(waiting for the live connection)")
    expect(column(page, "TODO").locator(".column-empty")).to_have_text("The stories appear once the page is live.")
    expect(page.locator("#board .story")).to_have_count(0)
    recorder.assert_clean()
