"""Change detection: which files changed since the last look (inotify, kqueue or polling), and reading them."""

from __future__ import annotations

__all__: "list[str]" = []  # used through madace_status.sync
