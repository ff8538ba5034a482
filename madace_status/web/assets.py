"""The pages' static files (`GET /static/<name>`): their scripts, styles and images, cacheable.

Only files of the package's `static/` directory whose name matches `ASSET_NAME` are served: no directory, no
path, no HTML page (the pages need their per-request values: `pages.py` renders them). A name is matched
before anything touches the file system, so `..`, `%2e%2e`, slashes or any other byte never reach `open`.

Each answer carries a strong ETag (a SHA-256 prefix of the bytes) and `Cache-Control: no-cache`: the browser
revalidates each time, and an unchanged file costs a 304 with no body.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from typing import Dict, Optional

__all__ = ["ASSET_NAME", "CACHE_CONTROL", "CONTENT_TYPES", "ETAG_HEX_CHARS", "STATIC_DIR", "Asset", "find",
           "static_file"]

ASSET_NAME = re.compile(r"\A[a-z0-9-]+\.(js|css|svg)\Z")
CONTENT_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "svg": "image/svg+xml"}
ETAG_HEX_CHARS = 32  # 128 bits of the SHA-256: no accidental collision between two versions of a file
CACHE_CONTROL = "no-cache"  # revalidate every time (the ETag makes it a cheap 304): an upgrade shows at once
STATIC_DIR = "static"  # a resource directory of the package, read through importlib.resources: a zip works too
_cache: Dict[str, Asset] = {}


class Asset:
    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
        self.etag = '"%s"' % hashlib.sha256(body).hexdigest()[:ETAG_HEX_CHARS]

    def matches(self, if_none_match: Optional[str]) -> bool:
        """Whether an If-None-Match header value names this version (a weak `W/` tag matches too, as RFC 9110
        §13.1.2 says for If-None-Match)."""
        if not if_none_match:
            return False
        for tag in if_none_match.split(","):
            tag = tag.strip()
            if tag == "*" or (tag[2:] if tag.startswith("W/") else tag) == self.etag:
                return True
        return False


def static_file(name: str) -> bytes:
    """The bytes of `static/<name>`, from the package folder or from a zip application alike; OSError if missing
    (a zip archive says KeyError)."""
    try:
        return (importlib.resources.files(__package__) / STATIC_DIR / name).read_bytes()
    except KeyError:
        raise FileNotFoundError("no static file %s in the archive" % name) from None


def find(name: str) -> Optional[Asset]:
    """The Asset called `name`, or None when the name is not one we serve or no such file exists."""
    match = ASSET_NAME.match(name)
    if match is None:
        return None
    if name not in _cache:
        try:
            body = static_file(name)
        except OSError:
            return None  # not cached: a name nobody ships costs one failed open, never memory
        _cache[name] = Asset(body, CONTENT_TYPES[match.group(1)])
    return _cache[name]
