"""What the text renderers share: glyph sets, display width, cutting and wrapping, value formatting."""

from __future__ import annotations

import json
import re

from madace_status.project.model import INVALID_STATUS, whole_number
from madace_status.project.render.envelope import BIDI_CONTROLS

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time (it would slow every `status`)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Literal

    from madace_status.project.model import Points, WorkflowBrief

    Align = Literal["left", "right"]

__all__ = ["PROGRESS_CELLS", "Glyphs", "UNICODE", "ASCII", "glyphs_for", "clean", "display_width", "cut", "wrap",
           "pad", "progress_bar", "short_time", "number", "step_text", "workflow_detail", "context_value"]

PROGRESS_CELLS = 20
_CONTROL_TABLE: dict[int, str] = {code: "?" for code in list(range(0x00, 0x20)) + list(range(0x7f, 0xa0))}
_CONTROL_TABLE[0x09] = " "
_CONTROL_TABLE.update({code: "?" for code in BIDI_CONTROLS})
_ISO_MINUTE = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})")


class Glyphs:
    """The characters tables and badges are drawn with: Unicode box drawing, or plain ASCII."""

    __slots__ = ("horizontal", "vertical", "top", "middle", "bottom", "ellipsis", "warn", "error",
                 "full", "empty", "infinity", "none", "ascii")

    def __init__(self, horizontal: str, vertical: str, top: str, middle: str, bottom: str, ellipsis: str, warn: str,
                 error: str, full: str, empty: str, infinity: str, none: str, ascii: bool) -> None:
        self.horizontal = horizontal
        self.vertical = vertical
        self.top = top            # left, junction, right
        self.middle = middle
        self.bottom = bottom
        self.ellipsis = ellipsis
        self.warn = warn
        self.error = error
        self.full = full
        self.empty = empty
        self.infinity = infinity
        self.none = none
        self.ascii = ascii


UNICODE = Glyphs("─", "│", "┌┬┐", "├┼┤", "└┴┘", "…", "⚠", "✖", "█", "░", "∞", "—", False)
ASCII = Glyphs("-", "|", "+++", "+++", "+++", "...", "!", "x", "#", "-", "inf", "-", True)
UNICODE_SAMPLE = "─│┌┬┐├┼┤└┴┘…⚠✖█░∞—"


def glyphs_for(encoding: str | None, force_ascii: bool = False) -> Glyphs:
    """UNICODE when `encoding` can carry every glyph (and ASCII was not asked for), else ASCII."""
    if force_ascii or not encoding:
        return ASCII
    try:
        UNICODE_SAMPLE.encode(encoding)
    except (UnicodeError, LookupError):
        return ASCII
    return UNICODE


def clean(value: object) -> str:
    """Any value → one line of text safe for a terminal (no control characters, no bidi controls)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return text.translate(_CONTROL_TABLE).replace("\u2028", " ").replace("\u2029", " ")


_unicodedata: ModuleType | None = None   # imported on the first non-ASCII width asked


def _char_width(ch: str) -> int:
    global _unicodedata
    if _unicodedata is None:
        import unicodedata
        _unicodedata = unicodedata
    if _unicodedata.combining(ch) or ch in "\u200b\u200c\u200d\ufe0e\ufe0f":
        return 0
    return 2 if _unicodedata.east_asian_width(ch) in "WF" else 1


def display_width(text: str) -> int:
    """Terminal columns `text` takes (wide East Asian and emoji count 2, combining marks 0)."""
    if text.isascii():
        return len(text)
    return sum(1 if ch < "\u0300" else _char_width(ch) for ch in text)


def cut(text: str, width: int, ellipsis: str) -> str:
    """`text` cut to `width` columns, ending with `ellipsis` when anything was removed."""
    if display_width(text) <= width:
        return text
    room = width - len(ellipsis)
    if room <= 0:
        return ellipsis[:max(width, 0)]
    if text.isascii():
        return text[:room].rstrip() + ellipsis
    used = 0
    for index, ch in enumerate(text):
        step = 1 if ch < "\u0300" else _char_width(ch)
        if used + step > room:
            return text[:index].rstrip() + ellipsis
        used += step
    return text


def wrap(text: str, width: int) -> list[str]:
    """`text` split into lines of at most `width` columns, at spaces where possible."""
    width = max(width, 1)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = word if not line else line + " " + word
            if display_width(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while display_width(word) > width:
                head = _take_columns(word, width)
                lines.append(head)
                word = word[len(head):]
            line = word
        lines.append(line)
    return lines


def _take_columns(text: str, width: int) -> str:
    used = 0
    for index, ch in enumerate(text):
        used += 1 if ch < "\u0300" else _char_width(ch)
        if used > width:
            return text[:max(index, 1)]
    return text


def pad(text: str, width: int, align: Align = "left") -> str:
    gap = width - display_width(text)
    if gap <= 0:
        return text
    return " " * gap + text if align == "right" else text + " " * gap


def progress_bar(percent: float | None, glyphs: Glyphs) -> str:
    """`[████████░░░░░░░░░░░░] 40%`: 20 cells, one per 5 %."""
    percent = max(0, min(100, int(percent or 0)))
    filled = (percent * PROGRESS_CELLS + 50) // 100
    return "[%s%s] %d%%" % (glyphs.full * filled, glyphs.empty * (PROGRESS_CELLS - filled), percent)


def short_time(value: str | None) -> str:
    """`2026-11-20T10:30:00.000Z` → `2026-11-20 10:30Z`; other text is returned as given."""
    if not value:
        return ""
    match = _ISO_MINUTE.match(value)
    if not match:
        return value
    utc = value.endswith("Z") or value.endswith("+00:00")
    return "%s %s%s" % (match.group(1), match.group(2), "Z" if utc else "")


def number(value: Points | None) -> str:
    """Points as text: `3`, `0.5`, `2` for 2.0; empty for none."""
    return "" if value is None else str(whole_number(value))


def step_text(workflow: WorkflowBrief) -> str:
    """`3/5` (current step of total), or the bare step when the total is unknown."""
    if workflow.get("status") == INVALID_STATUS:
        return ""
    total = workflow.get("totalSteps") or 0
    current = workflow.get("currentStep") or 0
    return "%d/%d" % (current, total) if total else str(current)


def workflow_detail(workflow: WorkflowBrief) -> str:
    """What a workflow row says beside its progress: the error, else the current step's name."""
    error = workflow.get("error")
    if error:
        return "error: " + error
    return workflow.get("currentStepName") or ""


def context_value(value: object) -> str:
    """A value of a workflow's `context` as text: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, allow_nan=False)
