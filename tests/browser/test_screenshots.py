"""Screenshots of both pages in the light and dark themes, at 1440 px and at 360 px wide, with a project that
shows everything (a WIP violation, a failed workflow, events in the feed, a lookup result). Saved under
tests/output/screenshots/ for a person to look at; the test itself checks nothing overflows sideways."""

import os

import pytest
from playwright.sync_api import expect

from browser_helpers import SCREENSHOT_DIR, apply_one_at_a_time, assert_no_sideways_scroll

WIDTHS = (1440, 360)
SCHEMES = ("light", "dark")


@pytest.fixture
def busy_server(server, project):
    changes = (lambda: project.move_story("STORY-V3-022", "TODO"),
               lambda: project.fail_workflow("pm-planning", "LLM quota exhausted after 3 retries"),
               lambda: project.advance_pm_planning(4),
               lambda: project.fail_workflow("pm-planning", "LLM quota exhausted after 3 retries"))
    apply_one_at_a_time(server, changes)
    server.events = server.api("GET", "/api/sync")[1]["seq"]
    return server


@pytest.mark.parametrize("scheme", SCHEMES)
def test_screenshots_of_both_pages_in_both_themes_at_1440_and_360_px(busy_server, open_page, scheme):
    os.makedirs(SCREENSHOT_DIR, exist_ok=True)
    for opened, width in enumerate(WIDTHS, start=1):
        viewport = {"width": width, "height": 900}
        dashboard = open_page(busy_server.dashboard_url, color_scheme=scheme, viewport=viewport)
        page = dashboard.page
        expect(page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=5000)
        expect(page.locator("#card-TODO")).to_have_class("card violated")
        expect(page.locator("#feed li")).to_have_count(busy_server.events)
        page.locator("#lookup-input").fill("STORY-V3-020")
        page.keyboard.press("Enter")
        expect(page.locator('[data-result="story"]')).to_be_visible()
        assert_no_sideways_scroll(page, width)
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "status-%s-%d.png" % (scheme, width)), full_page=True)
        dashboard.assert_clean()

        sync = open_page(busy_server.base_url + "/sync-status", color_scheme=scheme, viewport=viewport)
        expect(sync.page.locator("#state")).to_have_text("Running")
        expect(sync.page.locator("#clients-body tr")).to_have_count(opened)  # each dashboard opened so far
        assert_no_sideways_scroll(sync.page, width)
        sync.page.screenshot(path=os.path.join(SCREENSHOT_DIR, "sync-%s-%d.png" % (scheme, width)), full_page=True)
        sync.assert_clean()
