"""GitHub-flavoured markdown: headings, tables and bullet lists (README, "Formats")."""

from __future__ import annotations

from madace_status.project.model import INVALID_STATUS, STATE_LABELS, STORY_STATES, story_violations, violation_prefix
from madace_status.project.registry import EPIC, EPICS, STORIES, STORY, SUMMARY, WORKFLOW, WORKFLOWS
from madace_status.project.render.text import (UNICODE, Glyphs, clean, context_value, number, progress_bar,
                                               short_time, step_text, workflow_detail)

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time (it would slow every `status`)
if TYPE_CHECKING:
    from typing import Callable, Sequence

    from madace_status.project.model import Epic, Story, Summary, Workflow, WorkflowBrief
    from madace_status.project.registry import Entity
    from madace_status.project.render.text import Align

__all__ = ["md", "render_markdown"]

_ESCAPES: dict[int, str] = {ord("|"): "\\|", ord("<"): "&lt;", ord(">"): "&gt;"}


def md(value: object) -> str:
    """A value as inline markdown text: one line, `|` escaped, no raw HTML."""
    return clean(value).translate(_ESCAPES)


def _table(headers: list[str], aligns: Sequence[Align], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |",
             "| " + " | ".join("---:" if a == "right" else "---" for a in aligns) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(cell if cell != "" else " " for cell in row) + " |")
    return lines


def _bullets(pairs: list[tuple[str, str | None]]) -> list[str]:
    return ["- **%s:** %s" % (key, value) for key, value in pairs if value not in (None, "")]


def render_markdown(entity: Entity, glyphs: Glyphs = UNICODE) -> str:
    """The whole markdown text for a resolved entity (ends with a newline); `glyphs` are the marks, bars and ∞ it
    draws with (ASCII for --ascii or an output that cannot carry the Unicode ones, as the table format)."""
    lines = _RENDERERS[entity.kind](entity, glyphs)
    for title, messages, mark in (("Warnings", entity.warnings, glyphs.warn), ("Errors", entity.errors, glyphs.error)):
        if messages:
            lines.extend(["", "## %s (%d)" % (title, len(messages)), ""])
            lines.extend("- %s %s" % (mark, md(m)) for m in messages)
    return "\n".join(lines) + "\n"


def _summary(entity: Entity, g: Glyphs) -> list[str]:
    summary: Summary = entity.record
    rows = []
    for state in STORY_STATES:
        row = summary.states[state]
        label = STATE_LABELS[state] + (" " + g.warn if row["violated"] else "")
        limit = g.infinity if row["limit"] is None else str(row["limit"])
        rows.append([label, str(row["count"]), number(row["points"]), limit])
    rows.append(["**TOTAL**", "**%d**" % summary.total["count"], "**%s**" % number(summary.total["points"]), ""])
    lines = ["# Project status", "", "## Stories", ""]
    lines.extend(_table(["State", "Count", "Points", "Limit"], ["left", "right", "right", "right"], rows))
    for violation in summary.violations:
        lines.extend(["", "> %s **%s**" % (g.warn, md(violation.message))])
    lines.extend(["", "## Workflows (%d)" % len(summary.workflows), ""])
    lines.extend(_workflow_table(summary.workflows, g))
    lines.extend(["", "## Epics", "", "%d epic%s." % (summary.epic_count, "" if summary.epic_count == 1 else "s")])
    return lines


def _workflow_table(workflows: list[WorkflowBrief], g: Glyphs) -> list[str]:
    if not workflows:
        return ["No workflows."]
    rows = [[md(w["name"]), "`%s`" % md(w["status"]), step_text(w),
             "" if w["status"] == INVALID_STATUS else "`%s`" % progress_bar(w["progress"], g),
             md(short_time(w["updatedAt"])), md(workflow_detail(w))] for w in workflows]
    return _table(["Workflow", "Status", "Step", "Progress", "Updated", "Detail"],
                  ["left"] * 6, rows)


def _workflows(entity: Entity, g: Glyphs) -> list[str]:
    workflows: list[Workflow] = entity.record
    return ["# Workflows (%d)" % len(workflows), ""] + _workflow_table([w.brief() for w in workflows], g)


def _stories(entity: Entity, g: Glyphs) -> list[str]:
    stories: list[Story] = entity.record
    lines = ["# Stories (%d)" % len(stories), ""]
    if not stories:
        return lines + ["No stories."]
    violations = story_violations(stories)
    violated = {v.state for v in violations}
    rows = [[md(s.id), STATE_LABELS[s.status] + (" " + g.warn if s.status in violated else ""), md(s.title),
             number(s.points), md("@" + s.assignee if s.assignee else ""), md(s.milestone)] for s in stories]
    lines.extend(_table(["ID", "State", "Title", "Points", "Assignee", "Milestone"],
                        ["left", "left", "left", "right", "left", "left"], rows))
    return lines


def _epics(entity: Entity, g: Glyphs) -> list[str]:
    epics: list[Epic] = entity.record
    lines = ["# Epics (%d)" % len(epics), ""]
    if not epics:
        return lines + ["No epics."]
    rows = []
    for e in epics:
        if e.error:
            rows.append([md(e.id), "error: " + md(e.error), "", "", "", "", "", ""])
        else:
            rows.append([md(e.id), md(e.name), md(e.status), md(e.priority), number(e.effort), md(e.quarter),
                         md(e.owner), str(e.story_count)])
    lines.extend(_table(["ID", "Name", "Status", "Priority", "Effort", "Quarter", "Owner", "Stories"],
                        ["left", "left", "left", "left", "right", "left", "left", "right"], rows))
    return lines


def _story(entity: Entity, g: Glyphs) -> list[str]:
    s: Story = entity.record
    violated = any(m.startswith(violation_prefix(s.status)) for m in entity.warnings)
    lines = ["# Story %s: %s" % (md(s.id), md(s.title)), ""]
    lines.extend(_bullets([
        ("Status", STATE_LABELS[s.status] + (" %s (WIP limit exceeded)" % g.warn if violated else "")),
        ("Points", number(s.points)), ("Assignee", md("@" + s.assignee) if s.assignee else None),
        ("Milestone", md(s.milestone)), ("Checked", "yes" if s.checked else "no"), ("Due", md(s.due_date)),
        ("Started", md(s.started_date)), ("Completed", md(s.completed_date)), ("Note", md(s.note))]))
    return lines


def _epic(entity: Entity, g: Glyphs) -> list[str]:
    e: Epic = entity.record
    lines = ["# Epic %s%s" % (md(e.id), ": " + md(e.name) if e.name else ""), ""]
    lines.extend(_bullets([
        ("Status", md(e.status)), ("Priority", md(e.priority)), ("Effort", number(e.effort)),
        ("Quarter", md(e.quarter)), ("Owner", md(e.owner)), ("Stories", str(e.story_count)),
        ("Last updated", md(e.last_updated)), ("Source", "`%s`" % md(e.source) if e.source else None),
        ("Error", md(e.error))]))
    if e.summary:
        lines.extend(["", "## Summary", ""])
        lines.extend(md(paragraph) + "\n" for paragraph in e.summary.split("\n\n"))
        lines[-1] = lines[-1].rstrip("\n")
    return lines


def _workflow(entity: Entity, g: Glyphs) -> list[str]:
    w: Workflow = entity.record
    step = step_text(w.brief())
    if w.current_step_name:
        step += " (%s)" % md(w.current_step_name)
    lines = ["# Workflow %s" % md(w.name), ""]
    lines.extend(_bullets([
        ("Status", "`%s`" % md(w.status)), ("Step", step),
        ("Progress", None if w.is_invalid else "`%s`" % progress_bar(w.progress, g)),
        ("Completed steps", None if w.is_invalid else "%d of %d" % (w.completed_steps, w.total_steps)),
        ("Started", md(short_time(w.started_at))), ("Updated", md(short_time(w.updated_at))),
        ("Error", md(w.error)), ("Schema", w.schema), ("Source", "`%s`" % md(w.source) if w.source else None)]))
    if w.steps:
        lines.extend(["", "## Steps", ""])
        rows = [[str(i), md(s["id"]), "`%s`" % md(s["status"]), md(short_time(s["startedAt"])),
                 md(short_time(s["completedAt"])), md(s["error"])] for i, s in enumerate(w.steps, 1)]
        lines.extend(_table(["#", "Step", "Status", "Started", "Completed", "Error"],
                            ["right", "left", "left", "left", "left", "left"], rows))
    if w.children:
        lines.extend(["", "## Child workflows", ""])
        rows = [[md(c["name"]), "`%s`" % md(c["status"]), md(short_time(c["startedAt"])),
                 md(c["stateFile"] or c["workflowPath"])] for c in w.children]
        lines.extend(_table(["Name", "Status", "Started", "State file"], ["left"] * 4, rows))
    if w.context:
        lines.extend(["", "## Context", ""])
        lines.extend("- **%s:** %s" % (md(k), md(context_value(v))) for k, v in sorted(w.context.items()))
    return lines


_RENDERERS: dict[str, Callable[[Entity, Glyphs], list[str]]] = {
    SUMMARY: _summary, WORKFLOWS: _workflows, STORIES: _stories, EPICS: _epics, STORY: _story, EPIC: _epic,
    WORKFLOW: _workflow}
