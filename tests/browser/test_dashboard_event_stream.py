"""The dashboard's fallback when WebSockets are blocked (README, "How it stays live"): WebSocket → Server-Sent
Events → polling, in Chromium against a real server. The block is a proxy's refusal as the page sees it: every
handshake fails before it opens (the page's WebSocket is replaced by one that does exactly that)."""

from urllib.parse import urlsplit

from playwright.sync_api import expect

# A WebSocket whose handshake always fails: an error and a close (1006) without an open, as when a proxy refuses
# the upgrade. Counted, so the test knows the page tried it first.
BLOCKED_WEBSOCKET = """
(() => {
  window.__blockedHandshakes = 0;
  class BlockedWebSocket {
    constructor(url) {
      this.url = url; this.readyState = 0; window.__blockedHandshakes += 1;
      setTimeout(() => {
        this.readyState = 3;
        if (this.onerror) this.onerror(new Event("error"));
        if (this.onclose) this.onclose({ code: 1006, reason: "", wasClean: false });
      }, 20);
    }
    send() { throw new Error("not open"); }
    close() {}
  }
  BlockedWebSocket.CONNECTING = 0; BlockedWebSocket.OPEN = 1; BlockedWebSocket.CLOSING = 2; BlockedWebSocket.CLOSED = 3;
  window.WebSocket = BlockedWebSocket;
})();
"""


def row_step(page, name):
    return page.locator('#wf-body tr[data-name="%s"] .step-num' % name)


def test_blocked_websockets_fall_back_to_the_event_stream_then_to_polling_and_back(server, project, new_context,
                                                                                 open_page):
    context = new_context()
    context.add_init_script(BLOCKED_WEBSOCKET)
    recorder = open_page(server.dashboard_url, context=context)
    page = recorder.page
    expect(page.locator("#conn-text")).to_have_text("🟢 Connected (event stream)", timeout=10000)
    assert page.evaluate("window.__blockedHandshakes") >= 2  # the WebSocket was tried first
    assert recorder.api_requests("/api/events"), "the page opened no event stream"

    # Live over the stream: a state file written now shows within a second.
    expect(row_step(page, "pm-planning")).to_have_text("3/5")
    project.advance_pm_planning(4)
    expect(row_step(page, "pm-planning")).to_have_text("4/5", timeout=1000)

    # The sync service stops: the stream ends, the page polls /api/status and says so.
    server.sync_action("stop")
    expect(page.locator("#conn")).to_have_attribute("data-mode", "offline", timeout=10000)
    page.wait_for_event("request", predicate=lambda request: urlsplit(request.url).path == "/api/status",
                        timeout=10000)  # a poll (every 5 s)

    # It starts again: back on the event stream, with what changed meanwhile.
    project.advance_pm_planning(5)
    server.sync_action("start")
    expect(page.locator("#conn-text")).to_have_text("🟢 Connected (event stream)", timeout=15000)
    expect(row_step(page, "pm-planning")).to_have_text("5/5")
    recorder.assert_clean()
