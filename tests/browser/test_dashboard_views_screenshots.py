"""Screenshots of the epics panel, the flow chart and the details dialog in the light and dark themes at 1440 px
and 360 px, on a project where an epic has stories in every state and the history holds a few moves. Saved under
tests/output/screenshots/ for a person to look at; the test checks that nothing overflows sideways."""

import os

import pytest
from playwright.sync_api import expect

from browser_helpers import (SCREENSHOT_DIR, apply_one_at_a_time, assert_no_sideways_scroll,
                             atomic_write)

WIDTHS = (1440, 360)
SCHEMES = ("light", "dark")
EPIC_FILE = os.path.join("docs", "v3-planning", "epics", "EPIC-V3-002-universal-status-checker.md")


@pytest.fixture
def moved_server(server, project):
    path = os.path.join(project.root, EPIC_FILE)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    stories = ("STORY-V3-016", "STORY-V3-019", "STORY-V3-020", "STORY-V3-021", "STORY-V3-022", "STORY-V3-023")
    changes = [lambda: atomic_write(path, text + "".join("### %s: story\n" % story for story in stories))]
    changes += [lambda: project.move_story("STORY-V3-022", "TODO"),
                lambda: project.move_story("STORY-V3-021", "DONE"),
                lambda: project.move_story("STORY-V3-023", "IN PROGRESS")]
    apply_one_at_a_time(server, changes)
    return server


@pytest.mark.parametrize("scheme", SCHEMES)
def test_screenshots_of_epics_flow_and_details_in_both_themes_at_1440_and_360_px(moved_server, open_page, scheme):
    os.makedirs(SCREENSHOT_DIR, exist_ok=True)
    for width in WIDTHS:
        recorder = open_page(moved_server.dashboard_url, color_scheme=scheme, viewport={"width": width, "height": 900})
        page = recorder.page
        expect(page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=5000)
        epic = page.locator('#epics-panel li[data-epic="EPIC-V3-002"]')
        expect(epic.locator(".tally")).to_have_text("3 of 6 done · 4 not in the status file")
        expect(page.locator("#flow-panel svg.flow-chart")).to_be_visible()
        expect(page.locator("#flow-panel")).not_to_have_attribute("aria-busy", "true")
        chart = page.locator("#flow-panel svg.flow-chart").bounding_box()
        panel = page.locator("#flow-panel").bounding_box()
        assert chart["x"] >= panel["x"] and chart["x"] + chart["width"] <= panel["x"] + panel["width"] + 0.5
        assert_no_sideways_scroll(page, width)
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "views-%s-%d.png" % (scheme, width)), full_page=True)
        for name in ("epics", "flow"):  # each panel alone too, at its real size (a long page is hard to read)
            path = os.path.join(SCREENSHOT_DIR, "%s-%s-%d.png" % (name, scheme, width))
            page.locator("#%s-panel" % name).screenshot(path=path)

        epic.locator(".epic-head button").click()
        dialog = page.locator("#details-dialog")
        expect(dialog).to_have_attribute("data-kind", "epic")
        expect(dialog.locator("ul.epic-stories li")).to_have_count(10)
        assert_no_sideways_scroll(page, width)
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "details-%s-%d.png" % (scheme, width)))
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        recorder.assert_clean()
