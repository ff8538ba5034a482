"""The normalised records every output shows: Workflow, Story, Epic, Summary and the Project holding them.

Attributes are snake_case; `to_dict()` gives the camelCase, JSON-ready form documented in the README ("`data` of
each kind"). Records compare equal when their `to_dict()` forms are equal.
"""

STORY_STATES = ("BACKLOG", "TODO", "IN_PROGRESS", "DONE")
STATE_LABELS = {"BACKLOG": "BACKLOG", "TODO": "TODO", "IN_PROGRESS": "IN PROGRESS", "DONE": "DONE"}
WIP_LIMITS = {"BACKLOG": None, "TODO": 1, "IN_PROGRESS": 1, "DONE": None}   # the MADACE rule

WORKFLOW_STATUSES = ("pending", "in_progress", "completed", "failed")
INVALID_STATUS = "invalid"   # a state file that could not be used at all


class Record(object):
    """Base of the records: `_FIELDS` pairs each attribute with its JSON key."""

    __slots__ = ()
    _FIELDS = ()

    def to_dict(self):
        return {key: getattr(self, attr) for attr, key in self._FIELDS}

    def __eq__(self, other):
        # The sync service keeps a record it did not read again as the same object: no to_dict() for those.
        return self is other or (type(self) is type(other) and self.to_dict() == other.to_dict())

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
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

    def __init__(self, name, status, current_step=0, total_steps=0, completed_steps=0, progress=0,
                 current_step_name=None, started_at=None, updated_at=None, steps=None, context=None,
                 error=None, children=None, source="", schema=None, warnings=None):
        self.name = name
        self.status = status
        self.current_step = current_step
        self.total_steps = total_steps
        self.completed_steps = completed_steps
        self.progress = progress
        self.current_step_name = current_step_name
        self.started_at = started_at
        self.updated_at = updated_at
        self.steps = steps if steps is not None else []
        self.context = context if context is not None else {}
        self.error = error
        self.children = children if children is not None else []
        self.source = source
        self.schema = schema
        # Messages about this file (unknown status, wrong field types), each prefixed with its source.
        self.warnings = warnings if warnings is not None else []

    @property
    def is_invalid(self):
        return self.status == INVALID_STATUS

    def brief(self):
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

    def __init__(self, id, title, status, points=None, assignee=None, milestone=None, checked=False,
                 due_date=None, started_date=None, completed_date=None, note=None, line=0):
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

    def __init__(self, id, name=None, priority=None, effort=None, quarter=None, owner=None, status=None,
                 last_updated=None, story_count=0, summary=None, source="", error=None, story_ids=None,
                 warnings=None):
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
        self.story_ids = list(story_ids) if story_ids is not None else []
        self.summary = summary
        self.source = source
        self.error = error
        # Messages about this file (too many story ids), not part of to_dict().
        self.warnings = warnings if warnings is not None else []


def violation_prefix(state):
    """How every violation message of `state` starts (renderers find a story's violation by it)."""
    return "WIP limit exceeded: %s holds " % STATE_LABELS[state]


class Violation(Record):
    """A state holding more stories than its WIP limit allows."""

    __slots__ = ("state", "limit", "story_ids")
    _FIELDS = (("state", "state"), ("limit", "limit"), ("story_ids", "storyIds"), ("message", "message"))

    def __init__(self, state, limit, story_ids):
        self.state = state
        self.limit = limit
        self.story_ids = list(story_ids)

    @property
    def count(self):
        return len(self.story_ids)

    @property
    def message(self):
        return "%s%d stories (limit %d): %s" % (
            violation_prefix(self.state), self.count, self.limit, ", ".join(self.story_ids))

    def to_dict(self):
        data = Record.to_dict(self)
        data["count"] = self.count
        return data


class Summary(Record):
    """Counts, points, limits and violations per state, the workflows in brief, and every notice."""

    __slots__ = ("states", "total", "violations", "workflows", "workflow_status_counts", "epic_count",
                 "warnings", "errors")

    def __init__(self, states, total, violations, workflows, workflow_status_counts, epic_count,
                 warnings, errors):
        self.states = states                      # {state: {"count", "points", "limit", "violated"}}
        self.total = total                        # {"count", "points"}
        self.violations = violations              # [Violation]
        self.workflows = workflows                # [Workflow.brief()]
        self.workflow_status_counts = workflow_status_counts
        self.epic_count = epic_count
        self.warnings = warnings
        self.errors = errors

    def to_dict(self):
        return {"states": {state: dict(row) for state, row in self.states.items()},
                "total": dict(self.total),
                "violations": [v.to_dict() for v in self.violations],
                "workflowCount": len(self.workflows),
                "workflows": [dict(w) for w in self.workflows],
                "workflowStatusCounts": dict(self.workflow_status_counts),
                "epicCount": self.epic_count,
                "warnings": list(self.warnings),
                "errors": list(self.errors)}


def story_violations(stories):
    """The WIP-limit violations among `stories`, in state order."""
    by_state = {}
    for story in stories:
        by_state.setdefault(story.status, []).append(story.id)
    violations = []
    for state in STORY_STATES:
        limit = WIP_LIMITS[state]
        ids = by_state.get(state, ())
        if limit is not None and len(ids) > limit:
            violations.append(Violation(state, limit, ids))
    return violations


def build_summary(workflows, stories, epics, warnings, errors):
    counts = dict.fromkeys(STORY_STATES, 0)
    points = dict.fromkeys(STORY_STATES, 0)
    for story in stories:
        counts[story.status] += 1
        if story.points:
            points[story.status] += story.points
    violations = story_violations(stories)
    violated = {v.state for v in violations}
    states = {}
    for state in STORY_STATES:
        states[state] = {"count": counts[state], "points": _number(points[state]),
                         "limit": WIP_LIMITS[state], "violated": state in violated}
    total = {"count": sum(counts.values()), "points": _number(sum(points.values()))}
    status_counts = {}
    for workflow in workflows:
        status_counts[workflow.status] = status_counts.get(workflow.status, 0) + 1
    return Summary(states, total, violations, [w.brief() for w in workflows], status_counts, len(epics),
                   list(warnings), list(errors))


def _number(value):
    """Points may be fractional (`0.5 points`); keep whole sums as int so JSON shows 32, not 32.0."""
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

    def __init__(self, root, workflows, stories, epics, workflow_warnings=(), workflow_errors=(),
                 story_warnings=(), story_errors=(), epic_warnings=(), epic_errors=(), sources=None):
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
    def warnings(self):
        return self.workflow_warnings + self.story_warnings + self.epic_warnings

    @property
    def errors(self):
        return self.workflow_errors + self.story_errors + self.epic_errors

    def workflow(self, name):
        return self._by_name.get(name)

    def story(self, story_id):
        return self._by_story.get(story_id)

    def epic(self, epic_id):
        return self._by_epic.get(epic_id)

    def to_dict(self):
        return {"summary": self.summary.to_dict(),
                "workflows": [w.to_dict() for w in self.workflows],
                "stories": [s.to_dict() for s in self.stories],
                "epics": [e.to_dict() for e in self.epics],
                "warnings": self.warnings, "errors": self.errors,
                "sources": dict(self.sources)}
