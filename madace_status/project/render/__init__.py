"""Renderers: a resolved entity → text. `table` (terminal), `markdown` (GFM) and `envelope` (JSON)."""
