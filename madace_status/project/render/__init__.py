"""Renderers: a resolved entity → text. `table` (terminal), `markdown` (GFM) and `envelope` (JSON)."""

from __future__ import annotations

# The interface is the modules themselves; each is imported only for the format it renders.
__all__: list[str] = []
