"""The dashboard's two documents, with the per-request values filled in, and their CSP.

The HTML lives in `static/` beside this file and holds no inline script or style: its CSS and JavaScript are
static files of the package, served by `assets.py` at `/static/<name>`. The Content-Security-Policy therefore
allows scripts and styles from the server's own origin only (`'self'`, no hashes to keep in step), the
server's own origin for requests, and the sync service's WebSocket URL.

Every URL in the pages and scripts is relative to the page (`static/…`, `api/…`), so the dashboard works under
`serve --base-path` and behind a proxy that adds a prefix, with nothing to rewrite.

The per-request values (`{{WS_URL}}`, `{{TOKEN_REQUIRED}}`, `{{CSRF_TOKEN}}`) go into `<meta>` tags that the
scripts read.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit
from typing import Dict, Tuple

from madace_status.web.assets import static_file

__all__ = ["PAGE_FILES", "content_security_policy", "render"]

PAGE_FILES = {"status": "status.html", "sync": "sync.html"}
_cache: Dict[str, str] = {}


def _load(name: str) -> str:
    """The template text, read once per process."""
    if name not in _cache:
        _cache[name] = static_file(PAGE_FILES[name]).decode("utf-8")
    return _cache[name]


def content_security_policy(ws_url: str) -> str:
    """The pages' CSP: everything from our own origin only, plus the sync service's WebSocket."""
    parts = urlsplit(ws_url)
    ws_origin = "%s://%s" % (parts.scheme, parts.netloc)  # a source with a path would match that path only
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self' %s" % ws_origin,
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def render(name: str, ws_url: str, token_required: bool = False, csrf_token: str = "") -> Tuple[bytes, str]:
    """The page as bytes, and its Content-Security-Policy header value."""
    body = _load(name).replace("{{WS_URL}}", html.escape(ws_url, quote=True)).replace(
        "{{TOKEN_REQUIRED}}", "true" if token_required else "false").replace(
        "{{CSRF_TOKEN}}", html.escape(csrf_token, quote=True))
    return body.encode("utf-8"), content_security_policy(ws_url)
