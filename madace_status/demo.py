"""The `serve --demo` sample project and the simulator that keeps it moving (SPEC §5.2).

Three pieces:

- `create_demo_project(directory)` writes a small, realistic MADACE project (the same shapes as
  `tests/fixtures/sample-project/`, but its own content: workflow state files in both schemas, a story status file mixing the
  story-line forms, three epics). Everything is generated from the data in this module, so it works
  from a plain copy of the package.
- `DemoSimulator(directory, seed=None).step()` makes one realistic change (a workflow advances,
  completes, fails, restarts, disappears or reappears; a story moves one column; an epic changes
  status) and returns a one-line description of it. `run_simulator()` calls it on a timer.
- `demo_project()` is a context manager: a temporary demo project that is removed on exit.

Every file is written atomically (a temporary `.tmp-…` file in the same directory, then `os.replace`),
so a watcher polling the project never reads half a file, and never mistakes the temporary file for a
state file (`.<name>.state.json`), a status file or an epic (`*.md`). After every step the project
loads with no error, no warning and no WIP violation (at most one story in TODO and one in
IN PROGRESS).
"""

import asyncio
import contextlib
import datetime
import json
import logging
import os
import random
import re
import shutil
import tempfile
import time

from madace_status.project.stories import parse_story_file

__all__ = ["STATE_DIR", "STATUS_FILE", "EPICS_DIR", "create_demo_project", "DemoSimulator",
           "run_simulator", "demo_project"]

LOGGER_NAME = "madace_status.demo"

# Where the files go, relative to the project root: the loader's default locations (SPEC §2).
STATE_DIR = "madace-data/workflow-states"
STATUS_FILE = "docs/workflow-status.md"
EPICS_DIR = "docs/v3-planning/epics"

PROJECT_NAME = "Acme Portal"
_TEMP_PREFIX = ".tmp-"

# ---------------------------------------------------------------------------------------------------
# Workflows
# ---------------------------------------------------------------------------------------------------

# name, schema, step ids (schema A) or step count (schema B), context / variables
_WORKFLOWS = (
    {"name": "pm-planning", "schema": "A",
     "steps": ("elicit-project-name", "elicit-project-description", "generate-initial-prd",
               "review-prd", "finalize-prd"),
     "context": {"projectName": PROJECT_NAME, "projectDescription": "Customer self-service portal"}},
    {"name": "route-workflow", "schema": "A",
     "steps": ("assess-scale", "score-complexity", "select-track", "write-routing"),
     "context": {"projectSize": 2, "teamSize": 1, "complexityScore": 15}},
    {"name": "architecture-review", "schema": "A",
     "steps": ("load-architecture", "review-decisions", "publish-review"),
     "context": {}},
    {"name": "dev-implementation", "schema": "B", "total": 6,
     "variables": {"project_name": PROJECT_NAME, "story_id": "STORY-V3-020", "WORKFLOW_DEPTH": 0},
     "child": "code-review"},
    {"name": "code-review", "schema": "B", "total": 3,
     "variables": {}, "parent": "dev-implementation"},
)

# The initial situation: status, steps already completed, minutes ago it started, error.
_INITIAL_RUNS = {
    "pm-planning": ("in_progress", 2, 30, None),
    "route-workflow": ("completed", 4, 150, None),
    "architecture-review": ("failed", 1, 55, "LLM API timeout"),
    "dev-implementation": ("in_progress", 2, 42, None),
    "code-review": ("pending", 0, 3, None),
}

_ERRORS = (
    "LLM API timeout",
    "LLM API timeout",
    "LLM API rate limit exceeded (HTTP 429)",
    "Template variable 'project_name' is undefined",
    "Agent response could not be parsed as YAML",
    "Child process exited with code 1",
)

_STATUSES = ("pending", "in_progress", "completed", "failed")


class _Run(object):
    """One simulated workflow: its template and where it stands. `status` may also be "absent"."""

    def __init__(self, template):
        self.template = template
        self.name = template["name"]
        self.schema = template["schema"]
        self.step_ids = tuple(template.get("steps", ()))
        self.total = len(self.step_ids) if self.schema == "A" else template["total"]
        self.status = "absent"
        self.done = 0                  # steps completed
        self.started_at = None
        self.updated_at = None
        self.step_times = [[None, None] for _ in range(self.total)]   # schema A: [startedAt, completedAt]
        self.error = None

    @property
    def path_name(self):
        return ".%s.state.json" % self.name

    def start(self, now):
        """From nothing (or a finished run) to the first step."""
        self.done = 0
        self.error = None
        self.started_at = now
        self.updated_at = now
        self.step_times = [[None, None] for _ in range(self.total)]
        if self.schema == "A":
            self.status = "in_progress"
            self.step_times[0][0] = now
        else:
            self.status = "pending"      # schema B: currentStep 0 is "nothing done yet"

    def document(self, runs):
        return self._document_a() if self.schema == "A" else self._document_b(runs)

    def _document_a(self):
        steps = []
        for index, step_id in enumerate(self.step_ids):
            started, completed = self.step_times[index]
            entry = {"id": step_id}
            if index < self.done:
                entry["status"] = "completed"
            elif index == self.done and self.status in ("in_progress", "failed"):
                entry["status"] = self.status
            else:
                entry["status"] = "pending"
            if started and entry["status"] != "pending":
                entry["startedAt"] = started
            if completed and entry["status"] == "completed":
                entry["completedAt"] = completed
            if entry["status"] == "failed" and self.error:
                entry["error"] = self.error
            steps.append(entry)
        if self.status == "completed":
            current = self.total
        elif self.status == "pending":
            current = 0
        else:
            current = self.done + 1
        return {"workflow": self.name, "currentStep": current, "totalSteps": self.total,
                "status": self.status, "startedAt": self.started_at, "lastUpdated": self.updated_at,
                "steps": steps, "context": dict(self.template.get("context", {}))}

    def _document_b(self, runs):
        variables = dict(self.template.get("variables", {}))
        variables["_TOTAL_STEPS"] = self.total
        doc = {"workflowName": self.name,
               "currentStep": self.total if self.status == "completed" else self.done,
               "variables": variables,
               "completed": self.status == "completed",
               "startedAt": self.started_at, "updatedAt": self.updated_at}
        if self.status == "failed":
            doc["error"] = self.error or "workflow failed"
        child_name = self.template.get("child")
        if child_name:
            child = runs.get(child_name)
            child_done = child is not None and child.status == "completed"
            doc["childWorkflows"] = [{
                "workflowPath": "madace/mam/workflows/%s/workflow.yaml" % child_name,
                "stateFile": ".%s.state.json" % child_name,
                "status": "completed" if child_done else "running",
                "startedAt": (child.started_at if child is not None and child.started_at else self.started_at)}]
        parent = self.template.get("parent")
        if parent:
            doc["parentWorkflow"] = parent
            doc["parentStateFile"] = ".%s.state.json" % parent
        return doc

    def load(self, doc):
        """Take the situation from a state file written earlier (by this module or by hand)."""
        if self.schema == "A":
            steps = doc.get("steps") if isinstance(doc.get("steps"), list) else []
            steps = [s if isinstance(s, dict) else {} for s in steps][:self.total]
            done = 0
            for index, step in enumerate(steps):
                self.step_times[index] = [_text(step.get("startedAt")), _text(step.get("completedAt"))]
                if step.get("status") == "completed" and done == index:
                    done += 1
            status = doc.get("status")
            status = {"running": "in_progress", "done": "completed", "error": "failed"}.get(status, status)
            if status not in _STATUSES:
                status = "completed" if done >= self.total else "in_progress"
            self.error = next((_text(s.get("error")) for s in steps if s.get("status") == "failed"), None)
            self.updated_at = _text(doc.get("lastUpdated")) or _text(doc.get("updatedAt"))
        else:
            current = doc.get("currentStep")
            done = current if isinstance(current, int) and not isinstance(current, bool) else 0
            self.error = _text(doc.get("error"))
            if doc.get("completed") is True:
                status = "completed"
            elif self.error:
                status = "failed"
            elif done <= 0:
                status = "pending"
            else:
                status = "in_progress"
            self.updated_at = _text(doc.get("updatedAt")) or _text(doc.get("lastUpdated"))
        self.done = max(0, min(done, self.total if status == "completed" else self.total - 1))
        if status == "completed":
            self.done = self.total
        if status == "failed" and not self.error:
            self.error = "workflow failed"
        self.status = status
        self.started_at = _text(doc.get("startedAt")) or self.updated_at

    def describe_position(self):
        current = self.done + 1
        if self.schema == "A":
            return "step %d/%d (%s)" % (current, self.total, self.step_ids[self.done])
        return "step %d/%d" % (current, self.total)


def _initial_runs(now_dt):
    runs = {}
    for template in _WORKFLOWS:
        run = _Run(template)
        status, done, minutes_ago, error = _INITIAL_RUNS[run.name]
        started = now_dt - datetime.timedelta(minutes=minutes_ago)
        run.status = status
        run.done = done
        run.error = error
        run.started_at = _iso(started)
        # step i took a few minutes; the current step started when the previous one completed
        moment = started
        last = started
        for index in range(run.total):
            if index < done or (index == done and status in ("in_progress", "failed")):
                run.step_times[index][0] = _iso(moment)
                last = moment
                moment = min(moment + datetime.timedelta(minutes=4 + 3 * (index % 3)),
                             now_dt - datetime.timedelta(minutes=1))
                if index < done:
                    run.step_times[index][1] = _iso(moment)
                    last = moment
        if status == "failed":
            last = last + datetime.timedelta(minutes=2)
        elif run.schema == "B" and status == "in_progress":
            last = now_dt - datetime.timedelta(minutes=1)     # schema B keeps no step times
        run.updated_at = _iso(last)
        runs[run.name] = run
    return runs


# ---------------------------------------------------------------------------------------------------
# Stories
# ---------------------------------------------------------------------------------------------------

_MILESTONES = ("Milestone 2.0: Planning", "Milestone 2.1: Live status",
               "Milestone 2.2: Real-time collaboration", "Milestone 2.3: Observability")

# id, title, points, assignee, milestone index, line style, due in N days, status note
_STORIES = (
    ("PLAN-001", "Assess PRD and create epics", 2, None, 0, "check", None, None),
    ("STORY-V3-016", "Create `madace status` CLI command", 3, "alex", 1, "pipe", None, None),
    ("STORY-V3-017", "Create API route GET /api/status/:type/:id", 2, None, 1, "bold", None, None),
    ("STORY-V3-019", "Implement watch mode", 2, "alex", 1, "pipe", None, None),
    ("STORY-V3-020", "Integrate WebSocket for real-time updates", 3, "alex", 1, "bold", None,
     "Implementing CLI watch mode"),
    ("STORY-V3-021", "Create Web UI status dashboard page", 5, "sam", 1, "pipe", None,
     "Building the state machine cards"),
    ("STORY-V3-022", "Selective WebSocket subscriptions", 3, "dana", 2, "pipe", None,
     "Filtering events per topic"),
    ("STORY-V3-023", "permessage-deflate compression", 5, None, 2, "pipe", 30, None),
    ("STORY-V3-024", "Token-based WebSocket authentication", 3, "kim", 2, "bold", None,
     "Wiring the bearer token into the handshake"),
    ("TASK-031", "Prometheus metrics endpoint", 2, None, 3, "plain", None, None),
    ("US-014", "Connection quality indicator", 2, None, 3, "pipe", 24, None),
    ("STORY-V3-025", "Activity feed on the dashboard", 3, "dana", 3, "star", None,
     "Rendering live events"),
)

# the initial board: state, started N days ago, completed N days ago
_INITIAL_BOARD = {
    "PLAN-001": ("DONE", 14, 12),
    "STORY-V3-016": ("DONE", 8, 6),
    "STORY-V3-017": ("DONE", 6, 5),
    "STORY-V3-019": ("DONE", 5, 4),
    "STORY-V3-020": ("IN_PROGRESS", 1, None),
}
_INITIAL_TODO = "STORY-V3-021"

_STATE_TITLES = {"BACKLOG": "BACKLOG", "TODO": "TODO", "IN_PROGRESS": "IN PROGRESS", "DONE": "DONE"}
_NEXT_STATE = {"BACKLOG": "TODO", "TODO": "IN_PROGRESS", "IN_PROGRESS": "DONE"}


class _Story(object):
    def __init__(self, row):
        (self.id, self.title, self.points, self.assignee, milestone, self.style, self.due_days,
         self.note) = row
        self.milestone = _MILESTONES[milestone]
        self.state = "BACKLOG"
        self.due = None
        self.started = None
        self.completed = None

    def lines(self):
        """The markdown lines of this story in its current state (one of the real-file forms)."""
        state = self.state
        done = state == "DONE"
        points = "%d point%s" % (self.points, "" if self.points == 1 else "s")
        extra = []
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


class _Board(object):
    """The stories and their columns; `done_order` keeps DONE in the order stories got there."""

    def __init__(self, today):
        self.stories = [_Story(row) for row in _STORIES]
        self.by_id = {s.id: s for s in self.stories}
        self.done_order = []
        self.reset(today)

    def reset(self, today):
        self.done_order = []
        for story in self.stories:
            story.due = _day(today, story.due_days) if story.due_days is not None else None
            story.started = story.completed = None
            state, started_ago, completed_ago = _INITIAL_BOARD.get(story.id, ("BACKLOG", None, None))
            if story.id == _INITIAL_TODO:
                state = "TODO"
            story.state = state
            if started_ago is not None:
                story.started = _day(today, -started_ago)
            if completed_ago is not None:
                story.completed = _day(today, -completed_ago)
            if state == "DONE":
                self.done_order.append(story.id)

    def column(self, state):
        if state == "DONE":
            return [self.by_id[i] for i in self.done_order]
        return [s for s in self.stories if s.state == state]

    def load(self, text):
        """Take the columns from a status file written earlier; unknown stories are dropped."""
        parsed = parse_story_file(text).stories
        seen = set()
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

    def render(self, today):
        out = ["# MAM Workflow Status", "",
               "**Project:** %s" % PROJECT_NAME,
               "**Last Updated:** %s" % today.isoformat(), "",
               "---", "", "## BACKLOG", ""]
        backlog = self.column("BACKLOG")
        if not backlog:
            out += ["(Empty)", ""]
        for milestone in _MILESTONES:
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
            out += ["## " + _STATE_TITLES[state], "", intro, ""]
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


# ---------------------------------------------------------------------------------------------------
# Epics
# ---------------------------------------------------------------------------------------------------

_EPIC_STATUSES = ("\U0001f4cb Planning", "\U0001f504 In Progress", "\u2705 Done")

# file name, title, header fields (before Status), body, initial status index, last updated N days ago
_EPICS = (
    ("EPIC-MAM.md", "EPIC-MAM: MADACE Agile Method core",
     ("**Priority:** P1", "**Effort Estimate:** 8 points", "**Target Quarter:** Q3 2026",
      "**Owner:** Architect"),
     ("## Summary", "", "The state machine, its WIP limits and the status file format."),
     0, 9),
    ("EPIC-V3-001-scale-assessment.md", "EPIC-V3-001: Scale Assessment and Routing",
     ("**Epic ID:** EPIC-V3-001", "**Priority:** P0 (Critical)", "**Effort:** 13 points",
      "**Quarter:** Q1 2026", "**Owner:** PM"),
     ("## Summary", "", "Score a project's complexity and route it to the right planning track.", "",
      "## Stories", "", "1. **US-010:** Complexity scoring", "2. **US-011:** Track selection",
      "3. **US-012:** Routing report"),
     2, 12),
    ("EPIC-V3-002-universal-status-checker.md", "EPIC-V3-002: Universal Workflow Status Checker",
     ("**Epic ID:** EPIC-V3-002", "**Priority:** P0 (Critical)", "**Effort Estimate:** 21 points (2 weeks)",
      "**Target Quarter:** Q2 2026", "**Owner:** SM + DEV"),
     ("## Epic Summary", "",
      "One command and one page that answer \"where is everything?\" for stories, epics and workflows,",
      "updated live as the project changes.", "",
      "## User Stories", "", "### US-001: Check story status", "### US-002: Check epic status",
      "### US-003: Check workflow status", "### US-004: Watch status live"),
     1, 0),
)

_EPIC_STATUS_LINE = re.compile(r"^\*\*Status:\*\*[ \t]*(.*)$", re.MULTILINE)


class _Epic(object):
    def __init__(self, row, today):
        self.filename, self.title, self.fields, self.body, self.status_index, updated_ago = row
        self.epic_id = self.title.split(":", 1)[0]
        self.updated = _day(today, -updated_ago)

    @property
    def status(self):
        return _EPIC_STATUSES[self.status_index]

    def render(self):
        return "\n".join(("# " + self.title, "") + self.fields
                         + ("**Status:** " + self.status, "**Last Updated:** " + self.updated, "")
                         + self.body + ("",))

    def load(self, text):
        match = _EPIC_STATUS_LINE.search(text)
        if match:
            value = match.group(1).lower()
            for index, label in enumerate(_EPIC_STATUSES):
                if label.split(" ", 1)[1].lower() in value:
                    self.status_index = index


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------

def _state_json(doc):
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def atomic_write(path, text):
    """Write `text` (UTF-8) to `path` atomically: a `.tmp-…` file in the same directory, then
    `os.replace`. A reader sees the old file or the new one, never a part of either."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        try:
            os.chmod(temp, 0o644)
        except OSError:
            pass
        _replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def _replace(source, target):
    # On Windows, replacing a file another process has open fails for a moment: retry briefly.
    for attempt in range(10):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 9:
                raise
            time.sleep(0.02)


def _read_text(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def _day(today, offset):
    return (today + datetime.timedelta(days=offset)).isoformat()


def _text(value):
    return value if isinstance(value, str) and value else None


def _write_all(root, runs, board, epics, today):
    written = []
    state_dir = os.path.join(root, *STATE_DIR.split("/"))
    epics_dir = os.path.join(root, *EPICS_DIR.split("/"))
    status_file = os.path.join(root, *STATUS_FILE.split("/"))
    for directory in (state_dir, epics_dir, os.path.dirname(status_file)):
        os.makedirs(directory, exist_ok=True)
    readme = os.path.join(root, "README.md")
    atomic_write(readme, "# Demo MADACE project\n\nCreated by `madace_status` for `serve --demo`: a sample "
                 "project whose workflows and stories are moved along by a simulator. Safe to delete.\n")
    written.append(readme)
    for run in runs.values():
        if run.status == "absent":
            continue
        path = os.path.join(state_dir, run.path_name)
        atomic_write(path, _state_json(run.document(runs)))
        written.append(path)
    atomic_write(status_file, board.render(today))
    written.append(status_file)
    for epic in epics:
        path = os.path.join(epics_dir, epic.filename)
        atomic_write(path, epic.render())
        written.append(path)
    return written


def create_demo_project(directory):
    """Write a realistic sample MADACE project into `directory` and return the paths written.

    `directory` should exist and be empty (it is created when missing; files of the same names are
    overwritten, others are left alone). The project holds, at the loader's default locations:

    - `madace-data/workflow-states/.<name>.state.json`: five workflows, schema A (`pm-planning`
      in progress, `route-workflow` completed, `architecture-review` failed with "LLM API timeout")
      and schema B (`dev-implementation` in progress with a child, `code-review` pending);
    - `docs/workflow-status.md`: twelve stories (6 BACKLOG under milestones, 1 TODO, 1 IN PROGRESS,
      4 DONE) in the real-file line forms, with points, assignees, due/started/completed dates;
    - `docs/v3-planning/epics/`: EPIC-MAM, EPIC-V3-001 and EPIC-V3-002;
    - `README.md` saying what the directory is.

    Returns the list of absolute paths of the files written.
    """
    root = os.path.abspath(directory)
    os.makedirs(root, exist_ok=True)
    now = _utcnow()
    today = now.date()
    runs = _initial_runs(now)
    board = _Board(today)
    epics = [_Epic(row, today) for row in _EPICS]
    return _write_all(root, runs, board, epics, today)


# ---------------------------------------------------------------------------------------------------
# The simulator
# ---------------------------------------------------------------------------------------------------

class DemoSimulator(object):
    """Moves a demo project along, one realistic change per `step()`.

    `directory` is a project made by `create_demo_project` (the simulator picks up the current state
    of its files, so it may also be restarted on an older demo directory; a missing file is simply
    written again when its turn comes). `seed` makes the sequence of changes reproducible.

    A step does exactly one of:
    - a running workflow completes its current step and starts the next one (`currentStep`, step
      statuses and `lastUpdated`/`updatedAt` updated), or completes when that was the last step;
    - now and then a running workflow fails at its current step with an error such as
      "LLM API timeout";
    - a pending workflow (schema B) starts;
    - a completed or failed workflow is restarted from step 1, or a completed one has its state file
      removed, and a removed one is created again later;
    - a story moves one column, BACKLOG -> TODO -> IN PROGRESS -> DONE, never breaking the MADACE rule
      (at most one story in TODO and one in IN PROGRESS); when every story is DONE the board is reset
      for a new iteration, so the demo runs forever;
    - now and then an epic's status changes (Planning -> In Progress -> Done -> Planning).

    Each step rewrites a single file atomically (or removes one state file) and returns a one-line
    description of the change.
    """

    FAIL_PROBABILITY = 0.12
    STORY_PROBABILITY = 0.3
    EPIC_PROBABILITY = 0.05

    def __init__(self, directory, seed=None):
        self.root = os.path.abspath(directory)
        self.state_dir = os.path.join(self.root, *STATE_DIR.split("/"))
        self.status_file = os.path.join(self.root, *STATUS_FILE.split("/"))
        self.epics_dir = os.path.join(self.root, *EPICS_DIR.split("/"))
        self.random = random.Random(seed)
        self.steps = 0
        today = _utcnow().date()
        self.runs = {}
        for template in _WORKFLOWS:
            run = _Run(template)
            text = _read_text(os.path.join(self.state_dir, run.path_name))
            if text is not None:
                try:
                    doc = json.loads(text)
                except ValueError:
                    doc = None
                if isinstance(doc, dict):
                    run.load(doc)
                else:           # unusable: rewritten as a fresh run when its turn comes
                    run.start(_iso(_utcnow()))
                    run.status = "failed"
                    run.error = "state file was unreadable"
            self.runs[run.name] = run
        self.board = _Board(today)
        text = _read_text(self.status_file)
        if text is not None:
            self.board.load(text)
        self.epics = [_Epic(row, today) for row in _EPICS]
        for epic in self.epics:
            text = _read_text(os.path.join(self.epics_dir, epic.filename))
            if text is not None:
                epic.load(text)

    # -- one step -----------------------------------------------------------------------------------

    def step(self):
        """Make one change to the project's files; return a one-line description of it."""
        self.steps += 1
        roll = self.random.random()
        if roll < self.STORY_PROBABILITY:
            return self._story_step()
        if roll < self.STORY_PROBABILITY + self.EPIC_PROBABILITY:
            return self._epic_step()
        return self._workflow_step()

    def _workflow_step(self):
        choices = []
        for run in self.runs.values():
            if run.status == "in_progress":
                choices.append((3.0, run, self._advance))
            elif run.status == "pending":
                choices.append((1.5, run, self._start))
            elif run.status == "absent":
                choices.append((1.2, run, self._create))
            elif run.status in ("completed", "failed"):
                choices.append((0.5, run, self._restart))
                if run.status == "completed":
                    choices.append((0.25, run, self._remove))
            else:
                choices.append((1.0, run, self._restart))
        total = sum(weight for weight, _, _ in choices)
        pick = self.random.random() * total
        for weight, run, action in choices:
            pick -= weight
            if pick < 0:
                return action(run)
        weight, run, action = choices[-1]
        return action(run)

    def _write_run(self, run):
        os.makedirs(self.state_dir, exist_ok=True)
        atomic_write(os.path.join(self.state_dir, run.path_name), _state_json(run.document(self.runs)))

    def _advance(self, run):
        now = _iso(_utcnow())
        run.updated_at = now
        if self.random.random() < self.FAIL_PROBABILITY:
            where = run.describe_position()
            run.status = "failed"
            run.error = self.random.choice(_ERRORS)
            self._write_run(run)
            return "workflow %s failed at %s: %s" % (run.name, where, run.error)
        if run.schema == "A":
            run.step_times[run.done][1] = now
        run.done += 1
        if run.done >= run.total:
            run.done = run.total
            run.status = "completed"
            self._write_run(run)
            return "workflow %s completed (%d/%d steps)" % (run.name, run.total, run.total)
        if run.schema == "A":
            run.step_times[run.done] = [now, None]
        self._write_run(run)
        return "workflow %s: %s started" % (run.name, run.describe_position())

    def _start(self, run):
        now = _iso(_utcnow())
        run.updated_at = now
        run.status = "in_progress"
        if run.schema == "A":
            run.done = 0
            run.step_times[0] = [now, None]
        else:
            run.done = max(1, run.done)       # schema B: first step done, the next one running
        self._write_run(run)
        return "workflow %s started: %s" % (run.name, run.describe_position())

    def _restart(self, run):
        was = run.status
        run.start(_iso(_utcnow()))
        self._write_run(run)
        if run.status == "pending":
            return "workflow %s restarted from step 1 (was %s; waiting to run)" % (run.name, was)
        return "workflow %s restarted from step 1 (was %s)" % (run.name, was)

    def _remove(self, run):
        try:
            os.remove(os.path.join(self.state_dir, run.path_name))
        except FileNotFoundError:
            pass
        run.status = "absent"
        return "workflow %s finished; its state file was removed" % run.name

    def _create(self, run):
        run.start(_iso(_utcnow()))
        self._write_run(run)
        if run.status == "pending":
            return "workflow %s created (pending, %d steps)" % (run.name, run.total)
        return "workflow %s created: %s started" % (run.name, run.describe_position())

    def _story_step(self):
        board = self.board
        today = _utcnow().date()
        moves = []
        for state in ("IN_PROGRESS", "TODO", "BACKLOG"):
            column = board.column(state)
            target = _NEXT_STATE[state]
            if column and (target == "DONE" or not board.column(target)):
                moves.append((column[0], state, target))
        if not moves:
            if board.column("BACKLOG") or board.column("TODO") or board.column("IN_PROGRESS"):
                # cannot happen with the columns above, but never loop or raise on odd input
                return self._workflow_step()
            board.reset(today)
            self._write_board(today)
            return "story board reset for a new iteration: %d stories back in BACKLOG/TODO/IN PROGRESS" % (
                len(board.stories) - len(board.done_order))
        story, source, target = self.random.choice(moves)
        story.state = target
        if target == "IN_PROGRESS":
            story.started = today.isoformat()
        elif target == "DONE":
            story.completed = today.isoformat()
            board.done_order.append(story.id)
        self._write_board(today)
        return "story %s (%s): %s -> %s" % (story.id, story.title, _STATE_TITLES[source], _STATE_TITLES[target])

    def _write_board(self, today):
        os.makedirs(os.path.dirname(self.status_file), exist_ok=True)
        atomic_write(self.status_file, self.board.render(today))

    def _epic_step(self):
        epic = self.random.choice(self.epics)
        before = epic.status.split(" ", 1)[1]
        epic.status_index = (epic.status_index + 1) % len(_EPIC_STATUSES)
        epic.updated = _utcnow().date().isoformat()
        os.makedirs(self.epics_dir, exist_ok=True)
        atomic_write(os.path.join(self.epics_dir, epic.filename), epic.render())
        return "epic %s status: %s -> %s" % (epic.epic_id, before, epic.status.split(" ", 1)[1])


async def run_simulator(simulator, interval_s=2.5, stop_event=None):
    """Call `simulator.step()` every `interval_s` seconds until cancelled or `stop_event` is set.

    `stop_event` is an `asyncio.Event` (or anything with `is_set()`, e.g. a `threading.Event`).
    Each change is logged at INFO on the "madace_status.demo" logger; a step that fails (the demo
    directory was removed, a disk error) is logged as a warning and the loop goes on.
    """
    log = logging.getLogger(LOGGER_NAME)
    interval_s = max(0.0, float(interval_s))
    waits = stop_event is not None and asyncio.iscoroutinefunction(getattr(stop_event, "wait", None))
    while stop_event is None or not stop_event.is_set():
        try:
            description = simulator.step()
        except OSError as exc:
            log.warning("demo step failed: %s", exc)
        else:
            log.info("%s", description)
        if waits:
            try:
                await asyncio.wait_for(stop_event.wait(), interval_s)
            except asyncio.TimeoutError:
                pass
        elif stop_event is None:
            await asyncio.sleep(interval_s)
        else:
            deadline = time.monotonic() + interval_s
            while not stop_event.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await asyncio.sleep(min(left, 0.1))


@contextlib.contextmanager
def demo_project():
    """A temporary demo project: yields its path; the directory is removed on exit (also on error)."""
    path = tempfile.mkdtemp(prefix="madace-demo-")
    try:
        create_demo_project(path)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
