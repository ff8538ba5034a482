"""The two documents themselves (no browser needed): no inline script or style, every script and style a
static file of the package loaded from our own origin, a CSP of `'self'` with no hash, and the per-request
values in `<meta>` tags."""

import os
import re

import pytest

from madace_status.web import assets, pages

WS_URL = "ws://127.0.0.1:43210/ws"
# The views first, then the page's own scripts (dashboard-core.js builds what they share), status.js last.
STATUS_SCRIPTS = ["board.js", "epics.js", "flow.js", "details.js", "dashboard-core.js", "connection.js", "lookup.js",
                  "status.js"]


@pytest.mark.parametrize("name", sorted(pages.PAGE_FILES))
def test_page_has_no_inline_code_and_a_self_only_csp(name):
    body, csp = pages.render(name, ws_url=WS_URL, token_required=True)
    text = body.decode("utf-8")
    assert "{{" not in text and "}}" not in text
    assert '<meta name="madace-ws-url" content="%s">' % WS_URL in text
    assert '<meta name="madace-token-required" content="true">' in text

    assert "<style" not in text, "styles are static files"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "every script is a static file"
    for kind, names in (("script", re.findall(r'<script defer src="static/([^"]+)"></script>', text)),
                        ("style", re.findall(r'<link rel="stylesheet" href="static/([^"]+)">', text))):
        assert names, kind
        for asset_name in names:
            assert assets.find(asset_name) is not None, asset_name
    # Anything the CSP would block, or that would leave the machine, must not be there at all.
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=\"(?!data:|static/)", text)
    assert not re.search(r"\son[a-z]+=", text), "inline event handlers are blocked by the CSP"
    assert not re.search(r"\sstyle=", text), "style attributes are blocked by the CSP"
    assert not re.search(r"https?://(?!127\.0\.0\.1)", text.replace(WS_URL, "")), "no external URL"
    assert "3001" not in text

    directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "sha256-" not in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives["connect-src"] == "'self' ws://127.0.0.1:43210"
    assert directives["default-src"] == "'none'"


def test_status_loads_the_views_then_its_own_script_all_deferred_and_has_their_mount_points():
    text = pages.render("status", ws_url=WS_URL)[0].decode("utf-8")
    assert re.findall(r'<script defer src="static/([^"]+)"></script>', text) == STATUS_SCRIPTS
    for mount in ('<section class="panel" id="board-panel" aria-labelledby="h-board">',
                  '<section class="panel" id="epics-panel" aria-labelledby="h-epics">',
                  '<section class="panel" id="flow-panel" aria-labelledby="h-flow">',
                  '<dialog id="details-dialog" aria-labelledby="details-title">'):
        assert mount in text


def test_every_shipped_static_file_has_a_name_the_server_serves():
    static_dir = os.path.join(os.path.dirname(os.path.abspath(pages.__file__)), "static")
    for name in os.listdir(static_dir):
        if name.endswith(".html"):
            assert assets.ASSET_NAME.match(name) is None  # pages are rendered, never served as files
        else:
            assert assets.ASSET_NAME.match(name), name


def test_the_ws_url_is_escaped_into_its_meta_tag():
    body, csp = pages.render("status", ws_url='ws://evil"><script>alert(1)</script>/ws')
    text = body.decode("utf-8")
    assert "<script>alert(1)</script>" not in text
    assert '<meta name="madace-token-required" content="false">' in text
