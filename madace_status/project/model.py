"""The normalised records every output shows: Workflow, Story, Epic, Summary and the Project holding them.

Attributes are snake_case; `to_dict()` gives the camelCase, JSON-ready form documented in the README ("`data` of
each kind"). Records compare equal when their `to_dict()` forms are equal.
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time (it would slow every `status`)
if TYPE_CHECKING:
    from typing import Any, ClassVar, Iterable, Optional, TypedDict, Union

    # The shapes of the dictionaries the records hold (README, "`data` of each kind"), for the type checker only.
    Points = Union[int, float]   # story points and epic effort: `0.5 points` is allowed

    class WorkflowStep(TypedDict):
        id: Optional[str]
        status: str
        startedAt: Optional[str]
        completedAt: Optional[str]
        error: Optional[str]

    class ChildWorkflow(TypedDict):
        name: Optional[str]
        workflowPath: Optional[str]
        stateFile: Optional[str]
        status: str
        startedAt: Optional[str]

    class WorkflowBrief(TypedDict):
        """`Workflow.brief()`: the summary's view of a workflow."""
        name: str
        status: str
        currentStep: int
        totalSteps: int
        progress: int
        currentStepName: Optional[str]
        updatedAt: Optional[str]
        error: Optional[str]

    class StateRow(TypedDict):
        """One state of `Summary.states`."""
        count: int
        points: Points
        limit: Optional[int]
        violated: bool

    class StoryTotals(TypedDict):
        count: int
        points: Points

__all__ = ["STORY_STATES", "STATE_LABELS", "WIP_LIMITS", "WORKFLOW_STATUSES", "INVALID_STATUS", "Record", "Workflow",
           "Story", "Epic", "Violation", "Summary", "Project", "violation_prefix", "story_violations",
           "build_summary", "whole_number", "VIOLATION_IDS_SHOWN", "named_with_more"]

STORY_STATES: tuple[str, ...] = ("BACKLOG", "TODO", "IN_PROGRESS", "DONE")
STATE_LABELS: dict[str, str] = {"BACKLOG": "BACKLOG", "TODO": "TODO", "IN_PROGRESS": "IN PROGRESS", "DONE": "DONE"}
WIP_LIMITS: dict[str, int | None] = {"BACKLOG": None, "TODO": 1, "IN_PROGRESS": 1, "DONE": None}   # the MADACE rule

WORKFLOW_STATUSES: tuple[str, ...] = ("pending", "in_progress", "completed", "failed")
INVALID_STATUS = "invalid"   # a state file that could not be used at all


class Record:
    """Base of the records: `_FIELDS` pairs each attribute with its JSON key."""

    __slots__ = ()
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, attr) for attr, key in self._FIELDS}

    def __eq__(self, other: object) -> bool:
        # The sync service keeps a record it did not read again as the same object: no to_dict() for those.
        return self is other or (type(self) is type(other) and isinstance(other, Record)
                                 and self.to_dict() == other.to_dict())

    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "%s(%r)" % (type(self).__name__, self.to_dict())


class Workflow(Record):
    """One workflow state file, normalised from schema A or B (README, "`data` of each kind")."""

    __slots__ = ("name", "status", "current_step", "total_steps", "completed_steps", "progress",
                 "current_step_name", "started_at", "updated_at", "steps", "context", "error",
                 "children", "source", "schema", "warnings")
    _FIELDS = (("name", "name"), ("status", "status"), ("current_step", "currentStep"),
               ("total_steps", "totalSteps"), ("completed_steps", "completedSteps"),
               ("progress", "progress"), ("current_step_name", "currentStepName"),
               ("started_at", "startedAt"), ("updated_at", "updatedAt"), ("steps", "steps"),
               ("context", "context"), ("error", "error"), ("children", "children"),
               ("source", "source"), ("schema", "schema"))

    def __init__(self, name: str, status: str, current_step: int = 0, total_steps: int = 0,
                 completed_steps: int = 0, progress: int = 0, current_step_name: str | None = None,
                 started_at: str | None = None, updated_at: str | None = None,
                 steps: list[WorkflowStep] | None = None, context: dict[str, Any] | None = None,
                 error: str | None = None, children: list[ChildWorkflow] | None = None, source: str = "",
                 schema: str | None = None, warnings: list[str] | None = None) -> None:
        self.name = name
        self.status = status
        self.current_step = current_step
        self.total_steps = total_steps
        self.completed_steps = completed_steps
        self.progress = progress
        self.current_step_name = current_step_name
        self.started_at = started_at
        self.updated_at = updated_at
        self.steps: list[WorkflowStep] = steps if steps is not None else []
        self.context: dict[str, Any] = context if context is not None else {}
        self.error = error
        self.children: list[ChildWorkflow] = children if children is not None else []
        self.source = source
        self.schema = schema
        # Messages about this file (unknown status, wrong field types), each prefixed with its source.
        self.warnings: list[str] = warnings if warnings is not None else []

    @property
    def is_invalid(self) -> bool:
        return self.status == INVALID_STATUS

    def brief(self) -> WorkflowBrief:
        """The summary's view of a workflow (name, status, step, progress, updated)."""
        return {"name": self.name, "status": self.status, "currentStep": self.current_step,
                "totalSteps": self.total_steps, "progress": self.progress,
                "currentStepName": self.current_step_name, "updatedAt": self.updated_at,
                "error": self.error}


class Story(Record):
    """One story line of the status file (README, "`data` of each kind")."""

    __slots__ = ("id", "title", "status", "points", "assignee", "milestone", "checked", "due_date",
                 "started_date", "completed_date", "note", "line")
    _FIELDS = (("id", "id"), ("title", "title"), ("status", "status"), ("points", "points"),
               ("assignee", "assignee"), ("milestone", "milestone"), ("checked", "checked"),
               ("due_date", "dueDate"), ("started_date", "startedDate"),
               ("completed_date", "completedDate"), ("note", "note"))

    def __init__(self, id: str, title: str, status: str, points: Points | None = None, assignee: str | None = None,
                 milestone: str | None = None, checked: bool = False, due_date: str | None = None,
                 started_date: str | None = None, completed_date: str | None = None, note: str | None = None,
                 line: int = 0) -> None:
        self.id = id
        self.title = title
        self.status = status
        self.points = points
        self.assignee = assignee
        self.milestone = milestone
        self.checked = checked
        self.due_date = due_date
        self.started_date = started_date
        self.completed_date = completed_date
        self.note = note
        self.line = line   # 1-based line in the status file; not part of to_dict()


class Epic(Record):
    """One `EPIC-*.md` file (README, "`data` of each kind"). `error` is set, and the rest left empty, when it
    cannot be read."""

    __slots__ = ("id", "name", "priority", "effort", "quarter", "owner", "status", "last_updated",
                 "story_count", "story_ids", "summary", "source", "error", "warnings")
    _FIELDS = (("id", "id"), ("name", "name"), ("priority", "priority"), ("effort", "effort"),
               ("quarter", "quarter"), ("owner", "owner"), ("status", "status"),
               ("last_updated", "lastUpdated"), ("story_count", "storyCount"), ("story_ids", "storyIds"),
               ("summary", "summary"), ("source", "source"), ("error", "error"))

    def __init__(self, id: str, name: str | None = None, priority: str | None = None, effort: Points | None = None,
                 quarter: str | None = None, owner: str | None = None, status: str | None = None,
                 last_updated: str | None = None, story_count: int = 0, summary: str | None = None,
                 source: str = "", error: str | None = None, story_ids: Iterable[str] | None = None,
                 warnings: list[str] | None = None) -> None:
        self.id = id
        self.name = name
        self.priority = priority
        self.effort = effort
        self.quarter = quarter
        self.owner = owner
        self.status = status
        self.last_updated = last_updated
        self.story_count = story_count
        # The story ids the file lists: upper-case, in file order, no duplicates, at most
        # MAX_EPIC_STORY_IDS (story_count still counts every distinct id).
        self.story_ids: list[str] = list(story_ids) if story_ids is not None else []
        self.summary = summary
        self.source = source
        self.error = error
        # Messages about this file (too many story ids), not part of to_dict().
        self.warnings: list[str] = warnings if warnings is not None else []


VIOLATION_IDS_SHOWN = 5  # a message names this many of a state's stories, then "and N more" (the JSON has them all)


def named_with_more(ids: list[str], shown: int = VIOLATION_IDS_SHOWN) -> str:
    """`ids` joined with commas, the first `shown` of them, then "and N more" for the rest."""
    if len(ids) <= shown:
        return ", ".join(ids)
    return "%s and %d more" % (", ".join(ids[:shown]), len(ids) - shown)


def violation_prefix(state: str) -> str:
    """How every violation message of `state` starts (renderers find a story's violation by it)."""
    return "WIP limit exceeded: %s holds " % STATE_LABELS[state]


class Violation(Record):
    """A state holding more stories than its WIP limit allows."""

    __slots__ = ("state", "limit", "story_ids")
    _FIELDS = (("state", "state"), ("limit", "limit"), ("story_ids", "storyIds"), ("message", "message"))

    def __init__(self, state: str, limit: int, story_ids: Iterable[str]) -> None:
        self.state = state
        self.limit = limit
        self.story_ids = list(story_ids)

    @property
    def count(self) -> int:
        return len(self.story_ids)

    @property
    def message(self) -> str:
        return "%s%d stories (limit %d): %s" % (
            violation_prefix(self.state), self.count, self.limit, named_with_more(self.story_ids))

    def to_dict(self) -> dict[str, Any]:
        data = Record.to_dict(self)
        data["count"] = self.count
        return data


class Summary(Record):
    """Counts, points, limits and violations per state, the workflows in brief, and every notice."""

    __slots__ = ("states", "total", "violations", "workflows", "workflow_status_counts", "epic_count",
                 "warnings", "errors")

    def __init__(self, states: dict[str, StateRow], total: StoryTotals, violations: list[Violation],
                 workflows: list[WorkflowBrief], workflow_status_counts: dict[str, int], epic_count: int,
                 warnings: list[str], errors: list[str]) -> None:
        self.states = states                      # {state: {"count", "points", "limit", "violated"}}
        self.total = total                        # {"count", "points"}
        self.violations = violations
        self.workflows = workflows
        self.workflow_status_counts = workflow_status_counts
        self.epic_count = epic_count
        self.warnings = warnings
        self.errors = errors

    def to_dict(self) -> dict[str, Any]:
        return {"states": {state: dict(row) for state, row in self.states.items()},
                "total": dict(self.total),
                "violations": [v.to_dict() for v in self.violations],
                "workflowCount": len(self.workflows),
                "workflows": [dict(w) for w in self.workflows],
                "workflowStatusCounts": dict(self.workflow_status_counts),
                "epicCount": self.epic_count,
                "warnings": list(self.warnings),
                "errors": list(self.errors)}


def story_violations(stories: Iterable[Story]) -> list[Violation]:
    """The WIP-limit violations among `stories`, in state order."""
    by_state: dict[str, list[str]] = {}
    for story in stories:
        by_state.setdefault(story.status, []).append(story.id)
    violations = []
    for state in STORY_STATES:
        limit = WIP_LIMITS[state]
        ids = by_state.get(state, ())
        if limit is not None and len(ids) > limit:
            violations.append(Violation(state, limit, ids))
    return violations


def build_summary(workflows: list[Workflow], stories: list[Story], epics: list[Epic], warnings: Iterable[str],
                  errors: Iterable[str]) -> Summary:
    counts = dict.fromkeys(STORY_STATES, 0)
    points: dict[str, Points] = dict.fromkeys(STORY_STATES, 0)
    for story in stories:
        counts[story.status] += 1
        if story.points:
            points[story.status] += story.points
    violations = story_violations(stories)
    violated = {v.state for v in violations}
    states: dict[str, StateRow] = {}
    for state in STORY_STATES:
        states[state] = {"count": counts[state], "points": whole_number(points[state]),
                         "limit": WIP_LIMITS[state], "violated": state in violated}
    total: StoryTotals = {"count": sum(counts.values()), "points": whole_number(sum(points.values()))}
    status_counts: dict[str, int] = {}
    for workflow in workflows:
        status_counts[workflow.status] = status_counts.get(workflow.status, 0) + 1
    return Summary(states, total, violations, [w.brief() for w in workflows], status_counts, len(epics),
                   list(warnings), list(errors))


def whole_number(value: Points) -> Points:
    """Points may be fractional (`0.5 points`); a whole float becomes an int, so JSON shows 32, not 32.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Project(Record):
    """Everything read from one project root. Pure data: build it with `loader.load_project()`."""

    __slots__ = ("root", "sources", "workflows", "stories", "epics", "summary", "workflow_warnings",
                 "workflow_errors", "story_warnings", "story_errors", "epic_warnings", "epic_errors",
                 "violations", "_by_name", "_by_story", "_by_epic")
    _FIELDS = (("summary", "summary"), ("workflows", "workflows"), ("stories", "stories"),
               ("epics", "epics"), ("warnings", "warnings"), ("errors", "errors"))

    def __init__(self, root: str, workflows: Iterable[Workflow], stories: Iterable[Story], epics: Iterable[Epic],
                 workflow_warnings: Iterable[str] = (), workflow_errors: Iterable[str] = (),
                 story_warnings: Iterable[str] = (), story_errors: Iterable[str] = (),
                 epic_warnings: Iterable[str] = (), epic_errors: Iterable[str] = (),
                 sources: dict[str, Any] | None = None) -> None:
        self.root = root
        self.sources = sources or {}
        self.workflows = list(workflows)
        self.stories = list(stories)
        self.epics = list(epics)
        # Source-level notices (a missing directory, a duplicated name) come in as arguments; each
        # record's own notices are derived here, so a Project is a pure function of its records.
        self.workflow_warnings = list(workflow_warnings) + [m for w in self.workflows for m in w.warnings]
        self.workflow_errors = list(workflow_errors) + [
            "%s: %s" % (w.source, w.error) for w in self.workflows if w.is_invalid]
        self.violations = story_violations(self.stories)
        # A violation is a warning of the story source, so it reaches every output that shows stories.
        self.story_warnings = list(story_warnings) + [v.message for v in self.violations]
        self.story_errors = list(story_errors)
        self.epic_warnings = list(epic_warnings)
        self.epic_errors = list(epic_errors) + ["%s: %s" % (e.source, e.error) for e in self.epics if e.error]
        self._by_name = {w.name: w for w in self.workflows}
        self._by_story = {s.id: s for s in self.stories}
        self._by_epic = {e.id: e for e in self.epics}
        self.summary = build_summary(self.workflows, self.stories, self.epics, self.warnings, self.errors)

    @property
    def warnings(self) -> list[str]:
        return self.workflow_warnings + self.story_warnings + self.epic_warnings

    @property
    def errors(self) -> list[str]:
        return self.workflow_errors + self.story_errors + self.epic_errors

    def workflow(self, name: str) -> Workflow | None:
        return self._by_name.get(name)

    def story(self, story_id: str) -> Story | None:
        return self._by_story.get(story_id)

    def epic(self, epic_id: str) -> Epic | None:
        return self._by_epic.get(epic_id)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary.to_dict(),
                "workflows": [w.to_dict() for w in self.workflows],
                "stories": [s.to_dict() for s in self.stories],
                "epics": [e.to_dict() for e in self.epics],
                "warnings": self.warnings, "errors": self.errors,
                "sources": dict(self.sources)}
