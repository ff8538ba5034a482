"""The flow history behind GET /api/history: samples of the story counts, kept in memory and in a file."""

from __future__ import annotations

__all__: "list[str]" = []  # used through madace_status.sync
