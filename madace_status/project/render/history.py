"""`status history`: the flow history in the terminal (README, "`status history`"): per day, the count in each
state at the day's end, and a one-line chart (sparkline) per state. Sans-I/O: samples in, text out; a sample is
`{"at", "counts", "points"}` as GET /api/history sends it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

from madace_status.project.model import STATE_LABELS, STORY_STATES
from madace_status.project.render.envelope import json_text, utc_timestamp
from madace_status.project.render.table import Column, TableStyle, draw_table
from madace_status.project.render.text import Glyphs, clean

__all__ = ["SPARK_WIDTH", "by_day", "history_document", "render_history_json", "render_history_markdown",
           "render_history_table", "sparkline"]

SPARK_WIDTH = 60  # characters of a sparkline: the days past it are sampled evenly
UNICODE_SPARKS = "▁▂▃▄▅▆▇█"
ASCII_SPARKS = " .:-=+*#"

Sample = Mapping[str, Any]


def by_day(samples: Sequence[Sample]) -> List[Sample]:
    """The last sample of each day (UTC), oldest first: how the board stood at the end of that day."""
    days: Dict[str, Sample] = {}
    for sample in samples:
        days[sample["at"][:10]] = sample
    return [days[day] for day in sorted(days)]


def sparkline(values: Sequence[int], glyphs: Glyphs, width: int = SPARK_WIDTH) -> str:
    """`values` as a row of block characters, lowest to highest (ASCII marks with ASCII glyphs)."""
    if not values:
        return ""
    if len(values) > width:  # evenly spaced picks, the last value always in
        values = [values[round(index * (len(values) - 1) / (width - 1))] for index in range(width)]
    marks = ASCII_SPARKS if glyphs.ascii else UNICODE_SPARKS
    low, high = min(values), max(values)
    span = high - low
    return "".join(marks[0 if span == 0 else round((value - low) * (len(marks) - 1) / span)] for value in values)


def history_document(samples: Sequence[Sample], warnings: Sequence[str]) -> Dict[str, Any]:
    """The JSON envelope of `status history -f json`."""
    days = by_day(samples)
    return {"entityType": "history", "entityId": None,
            "data": {"states": list(STORY_STATES), "count": len(samples), "samples": list(samples),
                     "days": [{"day": day["at"][:10], "counts": day["counts"], "points": day["points"]}
                              for day in days]},
            "timestamp": utc_timestamp(), "warnings": list(warnings), "errors": []}


def render_history_json(samples: Sequence[Sample], warnings: Sequence[str], ensure_ascii: bool = False) -> str:
    return json_text(history_document(samples, warnings), ensure_ascii=ensure_ascii) + "\n"


def _title(samples: Sequence[Sample], days: Sequence[Sample]) -> str:
    if not samples:
        return "Flow history: no samples (serve records one per change of the story file; git's history too)"
    return "Flow history: %d sample%s over %d day%s, %s to %s" % (
        len(samples), "s" * (len(samples) != 1), len(days), "s" * (len(days) != 1), days[0]["at"][:10],
        days[-1]["at"][:10])


def _spark_rows(days: Sequence[Sample], glyphs: Glyphs) -> List[List[str]]:
    rows = []
    for state in STORY_STATES:
        counts = [int(day["counts"].get(state, 0)) for day in days]
        rows.append([STATE_LABELS[state], sparkline(counts, glyphs), "%d %s %d" % (
            counts[0], "->" if glyphs.ascii else "→", counts[-1])])
    return rows


def render_history_table(samples: Sequence[Sample], warnings: Sequence[str], style: TableStyle) -> str:
    days = by_day(samples)
    lines = [_title(samples, days)]
    if days:
        columns = [Column("Day")] + [Column(STATE_LABELS[state], "right") for state in STORY_STATES]
        rows = [[day["at"][:10]] + [str(day["counts"].get(state, 0)) for state in STORY_STATES] for day in days]
        lines += [""] + draw_table(columns, rows, style)
        lines += [""] + draw_table([Column("State"), Column("Per day", shrink=1), Column("First → last")],
                                   _spark_rows(days, style.glyphs), style, show_header=False)
    if warnings:
        lines += [""] + ["%s %s" % (style.glyphs.warn, clean(warning)) for warning in warnings]
    return "\n".join(lines) + "\n"


def render_history_markdown(samples: Sequence[Sample], warnings: Sequence[str], glyphs: Glyphs) -> str:
    days = by_day(samples)
    lines = ["# " + _title(samples, days)]
    if days:
        lines += ["", "| Day | " + " | ".join(STATE_LABELS[state] for state in STORY_STATES) + " |",
                  "| --- | " + " | ".join("---:" for _ in STORY_STATES) + " |"]
        lines += ["| %s | %s |" % (day["at"][:10], " | ".join(str(day["counts"].get(state, 0))
                                                              for state in STORY_STATES)) for day in days]
        lines += [""] + ["- **%s** `%s` %s" % tuple(row) for row in _spark_rows(days, glyphs)]
    if warnings:
        lines += ["", "## Warnings (%d)" % len(warnings), ""] + ["- %s %s" % (glyphs.warn, clean(w)) for w in warnings]
    return "\n".join(lines) + "\n"
