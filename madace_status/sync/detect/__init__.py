"""Change detection: which files changed since the last look (inotify, kqueue or polling), and reading them."""

from __future__ import annotations
