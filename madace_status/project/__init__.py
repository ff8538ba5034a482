"""Reading a MADACE project into one normalised model (pure: files in, records out; no other package imports)."""

from __future__ import annotations

# The interface is the modules themselves (`from madace_status.project.loader import load_project`).
__all__: list[str] = []
