"""A server started with --token: the dashboard link with the token works (through the cookie of README, "Security");
a wrong or missing token shows a clear message and starts no reconnect loop."""

from playwright.sync_api import expect

TOKEN = "s3cret-token"


def test_token_link_works_through_the_cookie_and_a_wrong_token_shows_a_message(serve, open_page, new_context):
    server = serve("--token", TOKEN)
    assert server.dashboard_url.endswith("/status?token=" + TOKEN)

    good_context = new_context()
    good = open_page(server.dashboard_url, context=good_context)
    expect(good.page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=5000)
    expect(good.page.locator("#card-TOTAL .count")).to_have_text("11")
    expect(good.page.locator("#alert")).to_be_hidden()
    # Named for this port, and holding an HMAC of the token under a per-run secret, never the token itself.
    cookie = [c for c in good_context.cookies() if c["name"] == "madace_token_%d" % server.http_port]
    assert cookie and cookie[0]["httpOnly"] and TOKEN not in cookie[0]["value"]
    assert "token=" not in good.websockets[0]  # the handshake carries the cookie, not the token in its URL
    good.assert_clean()
    assert good.console_errors == []

    # The cookie keeps working for the other page and a plain /status in the same browser.
    sync = open_page(server.base_url + "/sync-status", context=good_context)
    expect(sync.page.locator("#state")).to_have_text("Running")
    # Its buttons write with the cookie plus the page's anti-CSRF token (the cookie alone would be refused).
    sync.page.locator("#stop").click()
    expect(sync.page.locator("#state")).to_have_text("Stopped", timeout=5000)
    sync.page.locator("#start").click()
    expect(sync.page.locator("#state")).to_have_text("Running", timeout=5000)
    plain = open_page(server.base_url + "/status", context=good_context)
    expect(plain.page.locator("#conn-text")).to_contain_text("Connected", timeout=5000)

    # A wrong token: said plainly, nothing keeps retrying, no socket was even tried.
    wrong = open_page(server.base_url + "/status?token=wrong", context=new_context())
    page = wrong.page
    expect(page.locator("#alert")).to_be_visible()
    expect(page.locator("#alert")).to_contain_text("The token in this link was not accepted.")
    expect(page.locator("#conn-text")).to_have_text("🔴 Not authorised")
    assert wrong.probe("socketsCreated") == 0
    assert wrong.probe("intervals") == 0 and wrong.probe("timeouts") == 0
    assert wrong.unexpected_console_errors() == [] and wrong.page_errors == []

    # No token at all, on either page.
    missing = open_page(server.base_url + "/status", context=new_context())
    expect(missing.page.locator("#alert")).to_contain_text("This server requires a token.")
    assert missing.probe("socketsCreated") == 0
    denied_sync = open_page(server.base_url + "/sync-status?token=nope", context=new_context())
    expect(denied_sync.page.locator("#alert")).to_contain_text("The token in this link was not accepted.")
    expect(denied_sync.page.locator("#checked")).to_have_text("Not authorised")
    assert denied_sync.probe("timeouts") == 0 and denied_sync.probe("intervals") == 0
