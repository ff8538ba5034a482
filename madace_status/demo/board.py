"""The demo's story board: the stories of the sample's status file, moved between columns and written back.

What a story is (id, title, points, assignee, milestone, due date, note, and which of the real-file line
forms it is written in) is read from the sample's `docs/workflow-status.md`; the simulator only changes its
column and its started/completed dates, and `render()` writes the file again in the same forms.
"""

from __future__ import annotations

import re

from madace_status.project.model import STATE_LABELS, whole_number
from madace_status.project.stories import parse_story_file

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time
if TYPE_CHECKING:
    import datetime
    from typing import Literal

    from madace_status.project.model import Story

    LineForm = Literal["pipe", "bold", "plain", "check", "star"]   # the five story-line forms, in their order

__all__ = ["NEXT_STATE", "DEFAULT_PROJECT_NAME", "line_form", "BoardStory", "Board"]

NEXT_STATE: dict[str, str] = {"BACKLOG": "TODO", "TODO": "IN_PROGRESS", "IN_PROGRESS": "DONE"}
_PROJECT_LINE = re.compile(r"^\*\*Project:\*\*[ \t]*(.+)$", re.MULTILINE)
_PIPE_FORM = re.compile(r"- \[[ xX]\] \*\*\[")
_CHECK_FORM = re.compile(r"\(\d+ points?\)")
DEFAULT_PROJECT_NAME = "Demo"


def line_form(line: str) -> LineForm:
    """Which of the five story-line forms `line` is written in (the names `BoardStory.lines()` knows)."""
    line = line.lstrip()
    if line.startswith("*"):
        return "star"            # form 5: `*` bullets, `[3 pts]` / `(3 pts)`
    if _PIPE_FORM.match(line):
        return "pipe"            # form 1: `- [ ] **[ID]** title | 3 points | @who`
    if line.startswith("- **["):
        return "bold"            # form 2: `- **[ID]** title [Points: 3]`, continuation lines
    if _CHECK_FORM.search(line):
        return "check"           # form 4: `- ✅ [ID] title (2 points) - **DONE**`
    return "plain"               # form 3: `- [ID] title [Points: 2]`


class BoardStory:
    """One story of the board: what the sample says about it, and where it stands."""

    def __init__(self, entry: Story, line: str) -> None:
        self.id = entry.id
        self.title = entry.title
        self.points = whole_number(entry.points or 0)
        self.assignee = entry.assignee
        self.milestone = entry.milestone
        self.style = line_form(line)
        self.due = entry.due_date
        self.note = entry.note
        self.state = entry.status
        self.started = entry.started_date
        self.completed = entry.completed_date if entry.status == "DONE" else None

    def lines(self) -> list[str]:
        """The markdown lines of this story in its current state (one of the real-file forms)."""
        state = self.state
        done = state == "DONE"
        points = "%d point%s" % (self.points, "" if self.points == 1 else "s")
        extra: list[str] = []
        if self.style == "pipe":                       # form 1
            fields = [points]
            if self.assignee:
                fields.append("@" + self.assignee)
            if self.due and not done:
                fields.append("Due: " + self.due)
            if self.started and state in ("IN_PROGRESS", "DONE"):
                fields.append("Started: " + self.started)
            if self.completed and done:
                fields.append("Completed: " + self.completed)
            line = "- [%s] **[%s]** %s | %s" % ("x" if done else " ", self.id, self.title, " | ".join(fields))
            if state == "IN_PROGRESS" and self.note:
                extra.append("  **Status:** " + self.note)
        elif self.style == "bold":                     # form 2, continuation lines
            date = self.started if state == "IN_PROGRESS" else self.completed if done else None
            line = "- **[%s]** %s%s [Points: %d]" % (self.id, self.title, " (%s)" % date if date else "",
                                                     self.points)
            if state == "IN_PROGRESS":
                extra.append("  **Status:** " + (self.note or "Implementing"))
            if self.assignee:
                extra.append("  **Developer:** @" + self.assignee)
        elif self.style == "plain":                    # form 3
            line = "- %s[%s] %s [Points: %d]" % ("[x] " if done else "", self.id, self.title, self.points)
        elif self.style == "check":                    # form 4
            if done:
                line = "- \u2705 [%s] %s (%s) - **DONE**" % (self.id, self.title, points)
            elif state == "IN_PROGRESS":
                line = "- \U0001f504 [%s] %s (%s) - **IN PROGRESS**" % (self.id, self.title, points)
            else:
                line = "- [%s] %s (%s)" % (self.id, self.title, points)
        else:                                          # form 5: `*` bullets, `[3 pts]` / `(3 pts)`
            if done:
                line = "* [x] [%s] %s (%d pts)%s" % (self.id, self.title, self.points,
                                                     " (%s)" % self.completed if self.completed else "")
            elif state == "IN_PROGRESS" and self.started:
                line = "* [%s] %s (%s) [%d pts]" % (self.id, self.title, self.started, self.points)
            else:
                line = "* [%s] %s [%d pts]" % (self.id, self.title, self.points)
            if self.assignee:
                extra.append("  - Owner: @" + self.assignee)
        return [line] + extra


class Board:
    """The stories and their columns; `done_order` keeps DONE in the order stories got there."""

    def __init__(self, sample_text: str) -> None:
        self.reset(sample_text)

    def reset(self, sample_text: str) -> None:
        """The sample's stories in the sample's columns (`sample_text`: its status file, times filled in)."""
        lines = sample_text.splitlines()
        self.stories = [BoardStory(entry, lines[entry.line - 1]) for entry in parse_story_file(sample_text).stories]
        self.by_id = {s.id: s for s in self.stories}
        self.milestones: list[str] = []
        for story in self.stories:
            if story.milestone and story.milestone not in self.milestones:
                self.milestones.append(story.milestone)
        match = _PROJECT_LINE.search(sample_text)
        self.project_name = match.group(1).strip() if match else DEFAULT_PROJECT_NAME
        self.done_order = [s.id for s in self.stories if s.state == "DONE"]

    def column(self, state: str) -> list[BoardStory]:
        if state == "DONE":
            return [self.by_id[i] for i in self.done_order]
        return [s for s in self.stories if s.state == state]

    def load(self, text: str) -> None:
        """Take the columns from a status file written earlier; unknown stories are dropped."""
        parsed = parse_story_file(text).stories
        seen: set[str] = set()
        self.done_order = []
        for entry in parsed:
            story = self.by_id.get(entry.id)
            if story is None:
                continue
            seen.add(story.id)
            story.state = entry.status
            story.started = entry.started_date or (story.started if entry.status != "BACKLOG" else None)
            story.completed = entry.completed_date if entry.status == "DONE" else None
            if entry.status == "DONE":
                self.done_order.append(story.id)
        for story in self.stories:
            if story.id not in seen:
                story.state = "BACKLOG"
                story.started = story.completed = None
        for state in ("TODO", "IN_PROGRESS"):        # keep the MADACE rule whatever the file said
            for extra in self.column(state)[1:]:
                extra.state = "BACKLOG"
                extra.started = None

    def render(self, today: datetime.date) -> str:
        """The status file's text: every column in its forms, dated `today`."""
        out = ["# MAM Workflow Status", "",
               "**Project:** %s" % self.project_name,
               "**Last Updated:** %s" % today.isoformat(), "",
               "---", "", "## BACKLOG", ""]
        backlog = self.column("BACKLOG")
        if not backlog:
            out += ["(Empty)", ""]
        loose = [s for s in backlog if s.milestone not in self.milestones]  # only after an odd file was loaded
        for story in loose:
            out += story.lines()
        if loose:
            out.append("")
        for milestone in self.milestones:
            group = [s for s in backlog if s.milestone == milestone]
            if group:
                out += ["### " + milestone, ""]
                for story in group:
                    out += story.lines()
                out.append("")
        sections = (("TODO", "Story ready for drafting (only ONE at a time):",
                     "**MADACE Rule**: Maximum ONE story in TODO at a time."),
                    ("IN_PROGRESS", "Story being implemented (only ONE at a time):",
                     "**MADACE Rule**: Maximum ONE story in IN PROGRESS at a time."),
                    ("DONE", "Completed stories with dates and points:", None))
        for state, intro, rule in sections:
            out += ["## " + STATE_LABELS[state], "", intro, ""]
            column = self.column(state)
            if not column:
                out.append("(Empty)")
            for story in column:
                out += story.lines()
            out.append("")
            if rule:
                out += [rule, ""]
        out += ["## Notes", "",
                "This board is a demo: the madace_status simulator moves stories along",
                "BACKLOG -> TODO -> IN PROGRESS -> DONE, one step at a time.", ""]
        return "\n".join(out)
