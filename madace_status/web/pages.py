"""The dashboard's two documents, with the per-request values filled in and a matching CSP.

The HTML lives in `static/` beside this file (inline CSS and JavaScript, no external request). The
Content-Security-Policy allows exactly the page's own inline script and style blocks (by SHA-256), the
server's own origin, and the sync service's WebSocket URL.

Each page writes its blocks as a bare `<script>…</script>` / `<style>…</style>` (no attributes) so the hash
is taken over exactly the text the browser hashes, and keeps the `{{WS_URL}}` / `{{TOKEN_REQUIRED}}`
/ `{{CSRF_TOKEN}}` placeholders outside them (in `<meta>` tags) so the per-request values never change a hashed block.
"""

import base64
import hashlib
import html
import os
import re

PAGE_FILES = {"status": "status.html", "sync": "sync.html"}
_STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_BLOCK = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)
_cache = {}


def _load(name):
    """(template text, CSP source lists for its inline blocks), read once per process."""
    if name not in _cache:
        with open(os.path.join(_STATIC_DIR, PAGE_FILES[name]), encoding="utf-8") as page:
            text = page.read()
        hashes = {"script": [], "style": []}
        for kind, body in _BLOCK.findall(text):
            if "{{" in body:
                # The hash is taken before the per-request values are filled in: they must stay outside.
                raise ValueError("%s: a placeholder inside a <%s> block would break its CSP hash"
                                 % (PAGE_FILES[name], kind))
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
            hashes[kind].append("'sha256-%s'" % digest)
        _cache[name] = (text, hashes)
    return _cache[name]


def render(name, ws_url, token_required=False, csrf_token=""):
    """The page as bytes, and its Content-Security-Policy header value."""
    text, hashes = _load(name)
    body = text.replace("{{WS_URL}}", html.escape(ws_url, quote=True)).replace(
        "{{TOKEN_REQUIRED}}", "true" if token_required else "false").replace(
        "{{CSRF_TOKEN}}", html.escape(csrf_token, quote=True))
    ws_origin = ws_url.split("/ws", 1)[0]
    csp = "; ".join([
        "default-src 'none'",
        "script-src %s" % " ".join(hashes["script"] or ["'none'"]),
        "style-src %s" % " ".join(hashes["style"] or ["'none'"]),
        "connect-src 'self' %s" % ws_origin,
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])
    return body.encode("utf-8"), csp
