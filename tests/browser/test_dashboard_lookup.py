"""The lookup box, driven with the keyboard only: story, epic and workflow ids → result cards; a missing id →
"not found" with suggestions that can themselves be looked up."""

from playwright.sync_api import expect

from browser_helpers import wait_until


def tab_to(page, element_id, presses=60):  # the board's cards and the workflow names come first
    """Press Tab from the top of the page until `element_id` has the focus (proves it is reachable)."""
    page.locator("body").focus()
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError("#%s is not reachable with Tab" % element_id)


def look_up(page, text):
    box = page.locator("#lookup-input")
    box.fill("")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_lookup_finds_a_story_an_epic_and_a_workflow_and_reports_a_missing_story(server, open_page):
    recorder = open_page(server.dashboard_url)
    page = recorder.page
    expect(page.locator("#conn-text")).to_contain_text("Connected", timeout=5000)
    result = page.locator("#lookup-result")
    expect(result).to_have_attribute("aria-live", "polite")

    tab_to(page, "lookup-input")
    look_up(page, "story-v3-020")
    card = result.locator('[data-result="story"]')
    expect(card).to_contain_text("STORY-V3-020 — Integrate WebSocket for real-time updates")
    expect(card).to_contain_text("In progress")
    expect(card).to_contain_text("Implementing CLI watch mode")

    look_up(page, "EPIC-MAM")
    expect(result.locator('[data-result="epic"]')).to_contain_text("EPIC-MAM — MADACE Agile Method core")
    expect(result.locator('[data-result="epic"]')).to_contain_text("Q3 2026")

    look_up(page, "architecture-review")
    workflow = result.locator('[data-result="workflow"]')
    expect(workflow).to_contain_text("architecture-review")
    expect(workflow).to_contain_text("LLM API timeout")
    expect(workflow.locator(".badge").first).to_have_text("failed")

    # Missing: a clear "not found", and the closest ids offered as buttons.
    look_up(page, "STORY-V3-0999")
    missing = result.locator('[data-result="not-found"]')
    expect(missing).to_contain_text("Not found: story STORY-V3-0999")
    suggestions = missing.locator(".suggestions button")
    expect(suggestions.first).to_be_visible()
    first = suggestions.first.inner_text()
    assert first.startswith("STORY-V3-")
    suggestions.first.focus()
    page.keyboard.press("Enter")
    expect(result.locator('[data-result="story"]')).to_contain_text(first + " — ")

    # Not an id at all: said so without asking the server.
    requests = len(recorder.requests)
    look_up(page, "what is this?")
    expect(result).to_contain_text("Cannot look that up")
    assert len(recorder.requests) == requests

    # The result closes with its button, and the focus goes back to the box.
    result.locator("button.close").click()
    expect(result.locator("article")).to_have_count(0)
    wait_until(lambda: page.evaluate("() => document.activeElement.id") == "lookup-input", page=page,
               message="focus back in the lookup box")
    # Chromium logs the 404 answer of the missing story as "Failed to load resource": that is the only one.
    recorder.assert_clean()
