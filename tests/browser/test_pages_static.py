"""The two documents themselves (no browser needed): self-contained, CSP-clean, and rendered with the
per-request values outside every hashed block."""

import base64
import hashlib
import re

import pytest

from madace_status.web import pages

WS_URL = "ws://127.0.0.1:43210/ws"
BLOCK = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


@pytest.mark.parametrize("name", sorted(pages.PAGE_FILES))
def test_page_is_one_self_contained_document_whose_blocks_match_its_csp(name):
    body, csp = pages.render(name, ws_url=WS_URL, token_required=True)
    text = body.decode("utf-8")
    assert "{{" not in text and "}}" not in text
    assert '<meta name="madace-ws-url" content="%s">' % WS_URL in text
    assert '<meta name="madace-token-required" content="true">' in text

    blocks = BLOCK.findall(text)
    assert [kind for kind, _ in blocks] == ["style", "script"]
    for kind, content in blocks:
        digest = base64.b64encode(hashlib.sha256(content.encode("utf-8")).digest()).decode("ascii")
        assert "'sha256-%s'" % digest in csp, kind
    # Anything the CSP would block, or that would leave the machine, must not be there at all.
    assert not re.search(r"<(script|style|link|img|iframe)\b[^>]*\b(src|href)=\"(?!data:)", text)
    assert not re.search(r"<(script|style) [^>]*>", text), "a block with attributes would not match its hash"
    assert not re.search(r"\son[a-z]+=", text), "inline event handlers are blocked by the CSP"
    assert not re.search(r"\sstyle=", text), "style attributes are blocked by the CSP"
    assert not re.search(r"https?://(?!127\.0\.0\.1)", text.replace(WS_URL, "")), "no external URL"
    assert "localhost:3001" not in text and "3001" not in text
    assert "connect-src 'self' ws://127.0.0.1:43210" in csp
    assert "default-src 'none'" in csp


def test_the_ws_url_is_escaped_into_its_meta_tag():
    body, _ = pages.render("status", ws_url='ws://evil"><script>alert(1)</script>/ws')
    text = body.decode("utf-8")
    assert "<script>alert(1)</script>" not in text
    assert '<meta name="madace-token-required" content="false">' in text


def test_a_placeholder_inside_a_hashed_block_is_refused(tmp_path, monkeypatch):
    (tmp_path / "status.html").write_text("<style>a{}</style><script>var u='{{WS_URL}}';</script>")
    monkeypatch.setattr(pages, "_STATIC_DIR", str(tmp_path))
    monkeypatch.setattr(pages, "_cache", {})
    with pytest.raises(ValueError, match="placeholder"):
        pages.render("status", ws_url=WS_URL)
