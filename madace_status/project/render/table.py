"""Terminal output: box-drawing tables fitted to the width, optional colour (README, "Formats")."""

from __future__ import annotations

from madace_status.project.model import INVALID_STATUS, STATE_LABELS, STORY_STATES, story_violations, violation_prefix
from madace_status.project.registry import EPIC, EPICS, STORIES, STORY, SUMMARY, WORKFLOW, WORKFLOWS
from madace_status.project.render.text import (UNICODE, clean, context_value, cut, display_width, number, pad,
                                               progress_bar, short_time, step_text, wrap)

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time (it would slow every `status`)
if TYPE_CHECKING:
    from typing import Callable, Container, Optional, Sequence, Tuple, Union

    from madace_status.project.model import Epic, StateRow, Story, Summary, Workflow, WorkflowBrief
    from madace_status.project.registry import Entity
    from madace_status.project.render.text import Align, Glyphs

    # A cell is its text, or (text, the style to paint it with: a key of _SGR, or None for none).
    Cell = Union[str, Tuple[str, Optional[str]]]

__all__ = ["MIN_COLUMN_WIDTH", "DEFAULT_WIDTH", "TableStyle", "Column", "draw_table", "fit_columns", "render_table"]

MIN_COLUMN_WIDTH = 3
DEFAULT_WIDTH = 80
MIN_TABLE_WIDTH = 20   # a narrower terminal still gets tables this wide (lines overflow)

_SGR: dict[str, str] = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34",
                        "magenta": "35", "cyan": "36", "warn": "1;33", "error": "1;31"}
_STATUS_STYLE: dict[str, str | None] = {
    "completed": "green", "in_progress": "yellow", "failed": "red", INVALID_STATUS: "error", "pending": "dim",
    "DONE": "green", "IN_PROGRESS": "yellow", "TODO": "cyan", "BACKLOG": None}


class TableStyle:
    """How to draw: glyph set, colour on/off, and the width to fit."""

    __slots__ = ("glyphs", "color", "width")

    def __init__(self, glyphs: Glyphs = UNICODE, color: bool = False, width: int = DEFAULT_WIDTH) -> None:
        self.glyphs = glyphs
        self.color = color
        self.width = max(int(width), MIN_TABLE_WIDTH)

    def paint(self, text: str, style: str | None) -> str:
        if not self.color or not style or not text:
            return text
        return "\x1b[%sm%s\x1b[0m" % (_SGR[style], text)


class Column:
    """One table column.

    When the table is too wide, columns with a higher `shrink` give up width first (down to
    `min_width`, cutting text with an ellipsis); if that is not enough, the column with the highest
    `drop` is left out and the rest get their width back. `wrap` columns wrap instead of cutting.
    """

    __slots__ = ("header", "align", "shrink", "drop", "wrap", "min_width")

    def __init__(self, header: str, align: Align = "left", shrink: int = 0, drop: int = 0, wrap: bool = False,
                 min_width: int = MIN_COLUMN_WIDTH) -> None:
        self.header = header
        self.align = align
        self.shrink = shrink
        self.drop = drop
        self.wrap = wrap
        self.min_width = min_width


def draw_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], style: TableStyle, show_header: bool = True,
               rule_before: Container[int] = ()) -> list[str]:
    """Lines of a table. A cell is text or (text, colour); `rule_before` holds row indexes to rule off."""
    g = style.glyphs
    texts = [[clean(cell[0] if isinstance(cell, tuple) else cell) for cell in row] for row in rows]
    natural: list[int] = []
    for index, column in enumerate(columns):
        width = max([display_width(t[index]) for t in texts] or [0])
        if show_header:
            width = max(width, display_width(column.header))
        natural.append(max(width, 1))
    shown, widths = fit_columns(columns, natural, style.width)
    columns = [columns[i] for i in shown]
    texts = [[t[i] for i in shown] for t in texts]
    cell_styles = [[(cell[1] if isinstance(cell, tuple) else None) for cell in row] for row in rows]
    cell_styles = [[row[i] for i in shown] for row in cell_styles]

    def rule(chars: str) -> str:
        return chars[0] + chars[1].join(g.horizontal * (w + 2) for w in widths) + chars[2]

    def row_lines(cells: list[str], styles: Sequence[str | None]) -> list[str]:
        wrapped: list[list[str]] = []
        for index, column in enumerate(columns):
            text = cells[index]
            if column.wrap:
                wrapped.append(wrap(text, widths[index]))
            else:
                wrapped.append([cut(text, widths[index], g.ellipsis)])
        lines: list[str] = []
        for line_no in range(max(len(c) for c in wrapped)):
            parts = []
            for index, column in enumerate(columns):
                text = wrapped[index][line_no] if line_no < len(wrapped[index]) else ""
                padded = pad(text, widths[index], column.align)
                if styles[index] and text:
                    if column.align == "right":
                        padded = padded[:len(padded) - len(text)] + style.paint(text, styles[index])
                    else:
                        padded = style.paint(text, styles[index]) + padded[len(text):]
                parts.append(padded)
            lines.append(g.vertical + " " + (" " + g.vertical + " ").join(parts) + " " + g.vertical)
        return lines

    out = [rule(g.top)]
    if show_header:
        out.extend(row_lines([clean(c.header) for c in columns], ["bold"] * len(columns)))
        out.append(rule(g.middle))
    for index in range(len(rows)):
        if index in rule_before:
            out.append(rule(g.middle))
        out.extend(row_lines(texts[index], cell_styles[index]))
    out.append(rule(g.bottom))
    return out


def fit_columns(columns: Sequence[Column], natural: list[int], total_width: int) -> tuple[list[int], list[int]]:
    """(indexes of the columns shown, their widths) so the table fits `total_width` when it can."""
    shown = list(range(len(columns)))
    while True:
        widths = [natural[i] for i in shown]
        specs = [columns[i] for i in shown]
        if _shrink(widths, specs, total_width - (3 * len(shown) + 1)):
            return shown, widths
        droppable = [i for i in shown if columns[i].drop]
        if not droppable:
            break
        shown.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    # Still too wide: everything gives way down to MIN_COLUMN_WIDTH; beyond that the line overflows.
    widths = [natural[i] for i in shown]
    floor = [Column("", min_width=min(MIN_COLUMN_WIDTH, w)) for w in widths]
    for spec in floor:
        spec.shrink = 1
    _shrink(widths, floor, total_width - (3 * len(shown) + 1))
    return shown, widths


def _shrink(widths: list[int], columns: Sequence[Column], available: int) -> bool:
    """Narrow shrinkable columns in place, highest `shrink` first, widest first; True when it fits."""
    excess = sum(widths) - available
    for level in sorted({c.shrink for c in columns if c.shrink}, reverse=True):
        if excess <= 0:
            break
        group = [i for i, c in enumerate(columns) if c.shrink == level]
        while excess > 0:
            movable = [i for i in group if widths[i] > columns[i].min_width]
            if not movable:
                break
            top = max(widths[i] for i in movable)
            tops = [i for i in movable if widths[i] == top]
            floor = max([widths[i] for i in movable if widths[i] < top] +
                        [max(columns[i].min_width for i in tops)])
            step = min(top - floor, -(-excess // len(tops)))
            for i in tops:
                cut_by = min(step, widths[i] - columns[i].min_width, excess)
                widths[i] -= cut_by
                excess -= cut_by
    return excess <= 0


# --- per entity ------------------------------------------------------------------------------------


def render_table(entity: Entity, style: TableStyle) -> str:
    """The whole terminal text for a resolved entity (ends with a newline)."""
    render = _RENDERERS[entity.kind]
    lines = render(entity, style)
    lines.extend(_notices(entity.warnings, entity.errors, style))
    return "\n".join(lines) + "\n"


def _heading(text: str, style: TableStyle) -> str:
    return style.paint(clean(text), "bold")


def _state_rows(states: dict[str, StateRow], style: TableStyle) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for state in STORY_STATES:
        row = states[state]
        label = STATE_LABELS[state]
        limit = style.glyphs.infinity if row["limit"] is None else str(row["limit"])
        if row["violated"]:
            rows.append([(label + " " + style.glyphs.warn, "warn"), (str(row["count"]), "warn"),
                         number(row["points"]), (limit, "warn")])
        else:
            rows.append([(label, _STATUS_STYLE[state]), str(row["count"]), number(row["points"]), limit])
    return rows


def _summary(entity: Entity, style: TableStyle) -> list[str]:
    summary: Summary = entity.record
    rows = _state_rows(summary.states, style)
    rows.append([("TOTAL", "bold"), str(summary.total["count"]), number(summary.total["points"]), ""])
    columns = [Column("State"), Column("Count", "right"), Column("Points", "right"), Column("Limit", "right")]
    lines = [_heading("Stories", style)]
    lines.extend(draw_table(columns, rows, style, rule_before=(len(rows) - 1,)))
    lines.append("")
    lines.append(_heading("Workflows (%d)" % len(summary.workflows), style))
    lines.extend(_workflow_table(summary.workflows, style))
    lines.append("")
    lines.append("%s %d" % (_heading("Epics:", style), summary.epic_count))
    return lines


def _workflow_table(workflows: list[WorkflowBrief], style: TableStyle) -> list[str]:
    if not workflows:
        return ["No workflows."]
    columns = [Column("Workflow", shrink=1, min_width=12), Column("Status"), Column("Step"),
               Column("Progress"), Column("Updated", drop=1), Column("Current step", shrink=2, drop=2, min_width=12)]
    # Below the width of the bare essentials, the bar gives way to the figure alone ("40%").
    essentials = (min(12, max(display_width(clean(w["name"])) for w in workflows)) +
                  max(display_width(clean(w["status"])) for w in workflows) +
                  max(len(step_text(w)) for w in workflows) + len(progress_bar(100, style.glyphs)) + 13)
    compact = style.width < essentials
    rows: list[list[Cell]] = []
    for w in workflows:
        if w["status"] == INVALID_STATUS:
            progress = ""
        elif compact:
            progress = "%d%%" % w["progress"]
        else:
            progress = progress_bar(w["progress"], style.glyphs)
        rows.append([w["name"], (w["status"], _STATUS_STYLE.get(w["status"], "magenta")), step_text(w),
                     progress, short_time(w["updatedAt"]), w["currentStepName"] or ""])
    lines = draw_table(columns, rows, style)
    for w in workflows:   # the reason a workflow failed must be visible at any width
        error = w.get("error")
        if error:
            lines.append("  %s %s: %s" % (style.paint(style.glyphs.error, "error"), clean(w["name"]),
                                          style.paint(clean(error), "red")))
    return lines


def _workflows(entity: Entity, style: TableStyle) -> list[str]:
    workflows: list[Workflow] = entity.record
    lines = [_heading("Workflows (%d)" % len(workflows), style)]
    lines.extend(_workflow_table([w.brief() for w in workflows], style))
    return lines


def _stories(entity: Entity, style: TableStyle) -> list[str]:
    stories: list[Story] = entity.record
    lines = [_heading("Stories (%d)" % len(stories), style)]
    if not stories:
        return lines + ["No stories."]
    violated = {v.state for v in story_violations(stories)}
    columns = [Column("ID", shrink=1, min_width=12), Column("State"), Column("Title", shrink=2, min_width=16),
               Column("Points", "right"), Column("Assignee", shrink=3, drop=1, min_width=8),
               Column("Milestone", shrink=4, drop=2, min_width=12)]
    rows: list[list[Cell]] = []
    for s in stories:
        state = STATE_LABELS[s.status]
        state_cell: Cell = (state + " " + style.glyphs.warn, "warn") if s.status in violated else \
            (state, _STATUS_STYLE[s.status])
        assignee = "@" + s.assignee if s.assignee else ""  # as every view writes it (the JSON has the bare name)
        rows.append([s.id, state_cell, s.title, number(s.points), assignee, s.milestone or ""])
    lines.extend(draw_table(columns, rows, style))
    return lines


def _epics(entity: Entity, style: TableStyle) -> list[str]:
    epics: list[Epic] = entity.record
    lines = [_heading("Epics (%d)" % len(epics), style)]
    if not epics:
        return lines + ["No epics."]
    columns = [Column("ID", shrink=1, min_width=12), Column("Name", shrink=3, min_width=12),
               Column("Status", shrink=2, min_width=8), Column("Priority", drop=1), Column("Effort", "right"),
               Column("Quarter", shrink=4, drop=2, min_width=7), Column("Owner", shrink=5, drop=3, min_width=8),
               Column("Stories", "right")]
    rows: list[list[Cell]] = []
    for e in epics:
        if e.error:
            rows.append([e.id, ("error: " + e.error, "red"), "", "", "", "", "", ""])
        else:
            rows.append([e.id, e.name or "", e.status or "", e.priority or "", number(e.effort), e.quarter or "",
                         e.owner or "", str(e.story_count)])
    lines.extend(draw_table(columns, rows, style))
    return lines


def _key_values(pairs: Sequence[tuple[str, Cell | None]], style: TableStyle) -> list[str]:
    none = style.glyphs.none
    rows: list[list[Cell]] = [[(key, "bold"), none if value is None or value == "" else value] for key, value in pairs]
    columns = [Column("Field"), Column("Value", shrink=1, wrap=True, min_width=10)]
    return draw_table(columns, rows, style, show_header=False)


def _story(entity: Entity, style: TableStyle) -> list[str]:
    s: Story = entity.record
    violated = any(m.startswith(violation_prefix(s.status)) for m in entity.warnings)
    state = STATE_LABELS[s.status] + (" " + style.glyphs.warn if violated else "")
    lines = [_heading("Story %s" % s.id, style)]
    lines.extend(_key_values([
        ("ID", s.id), ("Title", s.title), ("Status", (state, "warn" if violated else _STATUS_STYLE[s.status])),
        ("Points", number(s.points)), ("Assignee", "@" + s.assignee if s.assignee else None),
        ("Milestone", s.milestone), ("Checked", "yes" if s.checked else "no"), ("Due", s.due_date),
        ("Started", s.started_date), ("Completed", s.completed_date), ("Note", s.note)], style))
    return lines


def _epic(entity: Entity, style: TableStyle) -> list[str]:
    e: Epic = entity.record
    lines = [_heading("Epic %s" % e.id, style)]
    lines.extend(_key_values([
        ("ID", e.id), ("Name", e.name), ("Status", e.status), ("Priority", e.priority),
        ("Effort", number(e.effort)), ("Quarter", e.quarter), ("Owner", e.owner),
        ("Stories", str(e.story_count)), ("Last updated", e.last_updated), ("Summary", e.summary),
        ("Source", e.source), ("Error", (e.error, "red") if e.error else None)], style))
    return lines


def _workflow(entity: Entity, style: TableStyle) -> list[str]:
    w: Workflow = entity.record
    g = style.glyphs
    step = step_text(w.brief())
    if w.current_step_name:
        step = "%s %s" % (step, w.current_step_name)
    lines = [_heading("Workflow %s" % w.name, style)]
    lines.extend(_key_values([
        ("Name", w.name), ("Status", (w.status, _STATUS_STYLE.get(w.status, "magenta"))),
        ("Step", step), ("Progress", None if w.is_invalid else progress_bar(w.progress, g)),
        ("Completed steps", None if w.is_invalid else "%d of %d" % (w.completed_steps, w.total_steps)),
        ("Started", short_time(w.started_at)), ("Updated", short_time(w.updated_at)),
        ("Error", (w.error, "red") if w.error else None), ("Schema", w.schema), ("Source", w.source)], style))
    if w.steps:
        lines.append("")
        lines.append(_heading("Steps (%d)" % len(w.steps), style))
        columns = [Column("#", "right"), Column("Step", shrink=2, min_width=12), Column("Status"),
                   Column("Started", drop=2), Column("Completed", drop=1),
                   Column("Error", shrink=3, min_width=12, wrap=True)]
        rows: list[list[Cell]] = [
            [str(i), step["id"] or "", (step["status"], _STATUS_STYLE.get(step["status"], "magenta")),
             short_time(step["startedAt"]), short_time(step["completedAt"]), (step["error"] or "", "red")]
            for i, step in enumerate(w.steps, 1)]
        lines.extend(draw_table(columns, rows, style))
    if w.children:
        lines.append("")
        lines.append(_heading("Child workflows (%d)" % len(w.children), style))
        columns = [Column("Name", shrink=1, min_width=12), Column("Status"),
                   Column("Started", drop=1), Column("State file", shrink=2, min_width=12)]
        rows = [[c["name"] or "", (c["status"], _STATUS_STYLE.get(c["status"], "magenta")),
                 short_time(c["startedAt"]), c["stateFile"] or c["workflowPath"] or ""] for c in w.children]
        lines.extend(draw_table(columns, rows, style))
    if w.context:
        lines.append("")
        lines.append(_heading("Context", style))
        rows = [[(key, "bold"), context_value(value)] for key, value in sorted(w.context.items())]
        columns = [Column("Key", shrink=1, min_width=12), Column("Value", shrink=2, min_width=12)]
        lines.extend(draw_table(columns, rows, style, show_header=False))
    return lines


def _notices(warnings: list[str], errors: list[str], style: TableStyle) -> list[str]:
    lines: list[str] = []
    width = style.width
    for title, messages, mark, colour in (("Warnings", warnings, style.glyphs.warn, "warn"),
                                          ("Errors", errors, style.glyphs.error, "error")):
        if not messages:
            continue
        lines.append("")
        lines.append(_heading("%s (%d)" % (title, len(messages)), style))
        indent = " " * (display_width(mark) + 3)
        for message in messages:
            wrapped = wrap(clean(message), max(width - len(indent), 20))
            lines.append("  " + style.paint(mark, colour) + " " + wrapped[0])
            lines.extend(indent + more for more in wrapped[1:])
    return lines


_RENDERERS: dict[str, Callable[[Entity, TableStyle], list[str]]] = {
    SUMMARY: _summary, WORKFLOWS: _workflows, STORIES: _stories, EPICS: _epics, STORY: _story, EPIC: _epic,
    WORKFLOW: _workflow}
