"""The cumulative-flow chart: drawn from the server's GET /api/history, a point more on each live story move,
bounded in the points it draws, and a short message (never an error) while there is no history."""

import json
import re
import time
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from browser_helpers import wait_until

CONNECTED = "Connected (rtt"
MAX_CHART_POINTS = 240  # flow.js
CHART = "#flow-panel svg.flow-chart"


def drawn_samples(page):
    value = page.locator("#flow-panel .flow-body").get_attribute("data-samples")
    return int(value) if value else 0


def last_sample_label(page):
    return re.search(r"last sample: (.*)\.$", page.locator(CHART).get_attribute("aria-label")).group(1)


def test_the_chart_draws_the_server_history_and_gains_a_point_on_a_live_story_move(server, project, open_page):
    # A change before the page opens, so the server's history holds something to draw.
    project.move_story("STORY-V3-022", "TODO")
    wait_until(lambda: server.api("GET", "/api/history")[1].get("count", 0) >= 1, timeout=10,
               message="a history sample of the move")
    history = server.api("GET", "/api/history")[1]
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    expect(page.locator(CHART)).to_be_visible()
    assert recorder.api_requests("/api/history"), "the chart did not ask the server for its history"
    # The history is fetched on load and again with the connection's snapshot: let both answers arrive.
    wait_until(lambda: (0, "snapshot") in recorder.received, page=page, message="the snapshot")
    expect(page.locator("#flow-panel")).not_to_have_attribute("aria-busy", "true")
    assert drawn_samples(page) >= history["count"]
    assert last_sample_label(page) == "4 backlog, 2 todo, 1 in progress, 4 done"
    # One band per non-empty state, DONE at the bottom; axis labels and a legend.
    bands = page.locator(CHART + " polygon.area")
    assert bands.evaluate_all("ps => ps.map(p => p.dataset.state)") == ["DONE", "IN_PROGRESS", "TODO", "BACKLOG"]
    assert page.locator(CHART + " text.x-label").count() >= 1  # one when the span is under a second
    expect(page.locator(CHART + " text.y-label").last).to_have_text("11")
    expect(page.locator("#flow-panel .flow-legend li")).to_have_text(["Done 4", "In progress 1", "Todo 2", "Backlog 4"])
    done_box = bands.first.bounding_box()
    backlog_box = bands.last.bounding_box()
    assert done_box["y"] > backlog_box["y"], "DONE is the bottom band"

    before = drawn_samples(page)
    history_requests = len(recorder.api_requests("/api/history"))
    project.move_story("STORY-V3-022", "DONE")
    wait_until(lambda: drawn_samples(page) == before + 1, page=page, message="a point for the live move")
    assert last_sample_label(page) == "4 backlog, 1 todo, 1 in progress, 5 done"
    expect(page.locator("#flow-panel .flow-legend li").first).to_have_text("Done 5")
    assert len(recorder.api_requests("/api/history")) == history_requests, "a live move is drawn without a re-fetch"
    recorder.assert_clean()


def test_many_samples_are_downsampled_and_no_history_shows_a_message(server, open_page, new_context):
    start_ms = int(time.time() * 1000) - 1500 * 60_000
    samples = [{"at": start_ms + index * 60_000,
                "counts": {"BACKLOG": 50 - index % 50, "TODO": 1, "IN_PROGRESS": index % 2, "DONE": index % 50}}
               for index in range(1500)]
    context = new_context()
    context.route(re.compile(r".*/api/history.*"), lambda route: route.fulfill(
        status=200, content_type="application/json",
        body=json.dumps({"success": True, "states": ["BACKLOG", "TODO", "IN_PROGRESS", "DONE"],
                         "count": len(samples), "samples": samples})))
    many = open_page(server.dashboard_url, context=context)
    expect(many.page.locator(CHART)).to_be_visible(timeout=5000)
    assert drawn_samples(many.page) == MAX_CHART_POINTS
    # Each band is a step line: two points per sample drawn, along its top and its bottom.
    points = many.page.locator(CHART + " polygon.area").first.get_attribute("points").split()
    assert len(points) == 4 * MAX_CHART_POINTS
    assert last_sample_label(many.page).endswith("1 in progress, 49 done")  # the newest sample is always kept
    many.assert_clean()

    empty_context = new_context()
    empty_context.route(re.compile(r".*/api/history.*"), lambda route: route.fulfill(
        status=404, content_type="application/json",
        body=json.dumps({"success": False, "error": "Not found", "code": "NOT_FOUND"})))
    empty = open_page(server.dashboard_url, context=empty_context)
    expect(empty.page.locator("#flow-note")).to_contain_text("No history yet", timeout=5000)
    expect(empty.page.locator(CHART)).to_have_count(0)
    empty.assert_clean()


def test_the_history_is_fetched_again_on_reconnection(server, project, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=5000)
    wait_until(lambda: (0, "snapshot") in recorder.received, page=page, message="the snapshot")
    expect(page.locator("#flow-panel")).not_to_have_attribute("aria-busy", "true")
    fetched = len(recorder.api_requests("/api/history"))

    # A move while the sync service is stopped: no live event; the service records it when it starts again.
    server.sync_action("stop")
    expect(page.locator("#conn")).to_have_attribute("data-mode", "offline", timeout=5000)
    project.move_story("STORY-V3-022", "TODO")
    server.sync_action("start")
    expect(page.locator("#conn-text")).to_contain_text(CONNECTED, timeout=12000)
    wait_until(lambda: len(recorder.api_requests("/api/history")) > fetched, page=page,
               message="the history fetched again")
    expect(page.locator("#flow-panel")).not_to_have_attribute("aria-busy", "true")
    wait_until(lambda: last_sample_label(page) == "4 backlog, 2 todo, 1 in progress, 4 done", page=page,
               message="the chart's last sample after the reconnection")
    recorder.assert_clean()


def test_the_range_selector_asks_the_server_for_that_range_and_everything_draws_the_git_past(server, open_page,
                                                                                           new_context):
    day_ms = 24 * 60 * 60 * 1000
    now_ms = int(time.time() * 1000)
    # A history reaching back 60 days (as one read from git would): what the server answers for each range.
    samples = [{"at": now_ms - days * day_ms,
                "counts": {"BACKLOG": days, "TODO": 1, "IN_PROGRESS": 1, "DONE": 60 - days}}
               for days in range(60, 0, -1)]
    samples[-5]["moves"] = [{"id": "STORY-GIT-1", "from": "IN_PROGRESS", "to": "DONE"},
                            {"id": "STORY-GIT-2", "from": "BACKLOG", "to": "TODO"}]  # read from git: a commit's moves
    asked = []

    def answer(route):
        query = parse_qs(urlsplit(route.request.url).query)
        asked.append(query.get("since", [None])[0])
        since = query.get("since", [None])[0]
        kept = [s for s in samples if since is None or time.strftime("%Y-%m-%d", time.gmtime(s["at"] / 1000)) >= since]
        route.fulfill(status=200, content_type="application/json", body=json.dumps(
            {"success": True, "states": ["BACKLOG", "TODO", "IN_PROGRESS", "DONE"], "count": len(kept),
             "samples": kept}))

    context = new_context()
    context.route(re.compile(r".*/api/history.*"), answer)
    recorder = open_page(server.dashboard_url, context=context)
    page = recorder.page
    expect(page.locator("#flow-range")).to_have_value("14")  # the last 2 weeks by default
    expect(page.locator(CHART)).to_be_visible(timeout=5000)
    two_weeks_ago = time.strftime("%Y-%m-%d", time.gmtime((now_ms - 14 * day_ms) / 1000))
    assert asked[0] == two_weeks_ago
    assert 13 <= drawn_samples(page) <= 16  # 14 or 15 days of samples, and the live one
    # The commit's move to Done is in the activity feed (its other move is not).
    moved = page.locator("#feed li", has_text="STORY-GIT-1")
    expect(moved).to_have_count(1)
    expect(moved).to_contain_text("STORY-GIT-1: In progress → Done")
    expect(moved.locator(".kind")).to_have_text("git")
    expect(page.locator("#feed li", has_text="STORY-GIT-2")).to_have_count(0)
    page.locator("#flow-range").select_option("all")
    wait_until(lambda: drawn_samples(page) >= 60, page=page, message="the whole history drawn")
    assert asked[-1] is None  # everything: no since
    recorder.assert_clean()
