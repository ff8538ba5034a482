"""The one JSON envelope (README, "The JSON envelope"), for every entity kind; the API and sync server reuse it."""

from __future__ import annotations

import json
import re
import time

from madace_status.project.model import story_violations
from madace_status.project.registry import EPICS, STORIES, WORKFLOWS

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time (it would slow every `status`)
if TYPE_CHECKING:
    from typing import Any

    from madace_status.project.model import Epic, Record, Story, Workflow
    from madace_status.project.registry import Entity

__all__ = ["COMPACT_SEPARATORS", "ENVELOPE_KEYS", "BIDI_CONTROLS", "utc_timestamp", "entity_data", "envelope",
           "compact_json", "json_text", "render_json"]

COMPACT_SEPARATORS: tuple[str, str] = (",", ":")
ENVELOPE_KEYS = ("entityType", "entityId", "data", "timestamp", "warnings", "errors")
# Bidi controls (embeddings, overrides, isolates, marks) reorder what the terminal shows ("Trojan Source"):
# a file's text may not make a line read differently from what it holds. text.clean() shows them as `?`.
BIDI_CONTROLS: tuple[int, ...] = (0x061C, 0x200E, 0x200F) + tuple(range(0x202A, 0x202F)) + tuple(range(0x2066, 0x206A))
# C1 controls pass through json.dumps(ensure_ascii=False) unescaped; some terminals act on them. Bidi controls
# likewise reorder the line on screen: both are written as \u escapes (same JSON value, inert on a terminal).
_C1_ESCAPES = {code: "\\u%04x" % code for code in list(range(0x7f, 0xa0)) + list(BIDI_CONTROLS)}
_C1 = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def utc_timestamp(seconds: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds: `2026-11-22T09:41:05.123Z`."""
    if seconds is None:
        seconds = time.time()
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + ".%03dZ" % int((seconds - whole) * 1000)


def entity_data(entity: Entity) -> dict[str, Any]:
    """The `data` member for a resolved entity."""
    kind = entity.kind
    if kind == STORIES:
        stories: list[Story] = entity.record
        return {"count": len(stories), "stories": [s.to_dict() for s in stories],
                "violations": [v.to_dict() for v in story_violations(stories)]}
    if kind == EPICS:
        epics: list[Epic] = entity.record
        return {"count": len(epics), "epics": [e.to_dict() for e in epics]}
    if kind == WORKFLOWS:
        workflows: list[Workflow] = entity.record
        return {"count": len(workflows), "workflows": [w.to_dict() for w in workflows]}
    record: Record = entity.record
    return record.to_dict()


def envelope(entity: Entity, timestamp: str | None = None) -> dict[str, Any]:
    """The envelope of `entity` (README, "The JSON envelope"), stamped now unless `timestamp` is given."""
    return {"entityType": entity.kind, "entityId": entity.id, "data": entity_data(entity),
            "timestamp": timestamp or utc_timestamp(), "warnings": list(entity.warnings),
            "errors": list(entity.errors)}


def compact_json(value: object) -> str:
    """`value` as compact JSON (no spaces, ASCII, no NaN or Infinity): every WebSocket message and history line."""
    return json.dumps(value, separators=COMPACT_SEPARATORS, allow_nan=False)


def json_text(document: object, ensure_ascii: bool = False, indent: int | None = None) -> str:
    """`document` as JSON text safe for a terminal: C1 control characters are escaped even when the rest of
    the text is not. Compact without `indent`."""
    separators = COMPACT_SEPARATORS if indent is None else None
    text = json.dumps(document, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      allow_nan=False)
    if not ensure_ascii and _C1.search(text):
        text = text.translate(_C1_ESCAPES)
    return text


def render_json(entity: Entity, timestamp: str | None = None, ensure_ascii: bool = False) -> str:
    """The envelope as indented JSON text (ends with a newline)."""
    return json_text(envelope(entity, timestamp), ensure_ascii=ensure_ascii, indent=2) + "\n"
