"""ENTITY string → what to show (README, "ENTITY"), and the lookup that finds it in a Project."""

from __future__ import annotations

import re

from madace_status.project.model import violation_prefix

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time (it would slow every `status`)
if TYPE_CHECKING:
    from typing import Any, Callable, ClassVar, Protocol, Sequence

    from madace_status.project.model import Project

    class WorkflowNames(Protocol):
        """What `classify` asks of its workflow names: `name in names`."""

        def __contains__(self, name: str) -> bool: ...

__all__ = ["SUMMARY", "STORY", "EPIC", "WORKFLOW", "STORIES", "EPICS", "WORKFLOWS", "ENTITY_TYPES",
           "MAX_ENTITY_CHARS", "ACCEPTED_PATTERNS", "EntityError", "UnrecognisedEntity", "EntityNotFound", "Query",
           "Entity", "shown", "check_entity_text", "classify", "find", "resolve", "suggest"]

SUMMARY = "summary"
STORY = "story"
EPIC = "epic"
WORKFLOW = "workflow"
STORIES = "stories"
EPICS = "epics"
WORKFLOWS = "workflows"
ENTITY_TYPES = (SUMMARY, STORY, EPIC, WORKFLOW, STORIES, EPICS, WORKFLOWS)

MAX_ENTITY_CHARS = 200
MAX_SUGGESTIONS = 5
MAX_SHOWN_CHARS = 60   # of ENTITY text echoed in a message

SUMMARY_WORDS = frozenset(("", "summary", "overview", "all", "status", "state", "state-machine"))
LIST_WORDS: dict[str, str] = {"stories": STORIES, "epics": EPICS, "workflows": WORKFLOWS}
PREFIXES: dict[str, str] = {"story": STORY, "epic": EPIC, "workflow": WORKFLOW}

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EPIC_ID = re.compile(r"\AEPIC(?:-[A-Z0-9]+)+\Z", re.IGNORECASE)
_STORY_ID = re.compile(r"\A[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+\Z")
_HAS_DIGIT = re.compile(r"\d")
_KEBAB = re.compile(r"\A[a-z][a-z0-9]*(?:-[a-z0-9]+)*\Z")
_PREFIXED_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]*\Z")

ACCEPTED_PATTERNS = """\
accepted ENTITY values:
  (none), summary, overview, all, status, state, state-machine
                                  the project summary
  stories | epics | workflows     every story, epic or workflow
  story:ID  epic:ID  workflow:NAME
                                  that type explicitly, e.g. story:US-001, epic:MAM, workflow:pm-planning
  EPIC-…                          an epic, e.g. EPIC-V3-002, EPIC-MAM (any case)
  a workflow name                 a state file's name, e.g. pm-planning
  a story id                      letters, then dash segments with a digit, e.g. STORY-V3-020, US-001,
                                  V3-015 (= STORY-V3-015), story-v3-020"""


class EntityError(Exception):
    """Base of the lookup errors; str() is the message for a person."""


class UnrecognisedEntity(EntityError):
    """The ENTITY text matches none of the accepted patterns (a usage error)."""

    def __init__(self, reason: str) -> None:
        EntityError.__init__(self, reason)
        self.reason = reason


class EntityNotFound(EntityError):
    """The ENTITY resolved to a type, but the project holds nothing by that id."""

    def __init__(self, kind: str, key: str, suggestions: list[str]) -> None:
        message = "%s %s not found" % (kind, shown(key))
        if suggestions:
            message += "; did you mean %s?" % ", ".join(shown(s) for s in suggestions)
        EntityError.__init__(self, message)
        self.kind = kind
        self.key = key
        self.suggestions = suggestions


class Query:
    """What ENTITY asks for: a kind and, for a single entity, the id or name to look up."""

    __slots__ = ("kind", "key")

    def __init__(self, kind: str, key: str | None = None) -> None:
        self.kind = kind
        self.key = key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Query) and (self.kind, self.key) == (other.kind, other.key)

    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Query(%r, %r)" % (self.kind, self.key)


class Entity:
    """A resolved entity: its kind, id (None for the summary and lists), record, and notices.

    `record` depends on `kind`: the Summary, a list of Story, Epic or Workflow records, or one of them (a
    renderer names the type it expects, as in `summary: Summary = entity.record`).
    """

    __slots__ = ("kind", "id", "record", "warnings", "errors")

    def __init__(self, kind: str, id: str | None, record: Any, warnings: list[str], errors: list[str]) -> None:
        self.kind = kind
        self.id = id
        self.record = record
        self.warnings = warnings
        self.errors = errors


def shown(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """ENTITY text made safe to echo: control characters escaped, long text cut."""
    text = _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group(0)), text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def check_entity_text(text: str) -> None:
    """Raise UnrecognisedEntity for text no rule may see: too long, or holding control characters."""
    if len(text) > MAX_ENTITY_CHARS:
        raise UnrecognisedEntity("ENTITY is too long (%d characters; at most %d)" % (len(text), MAX_ENTITY_CHARS))
    if _CONTROL.search(text):
        raise UnrecognisedEntity("ENTITY contains control characters: '%s'" % shown(text))


def classify(text: str | None, workflow_names: WorkflowNames = ()) -> Query:
    """Apply the README's ENTITY rules, in order, to the ENTITY text. Raises UnrecognisedEntity."""
    text = (text or "").strip()
    check_entity_text(text)
    lowered = text.lower()
    if lowered in SUMMARY_WORDS:                                        # 1
        return Query(SUMMARY)
    if lowered in LIST_WORDS:                                           # 2
        return Query(LIST_WORDS[lowered])
    prefix, colon, rest = text.partition(":")                           # 3
    if colon and prefix.lower() in PREFIXES:
        kind = PREFIXES[prefix.lower()]
        rest = rest.strip()
        if kind == WORKFLOW:
            if not rest or "/" in rest or "\\" in rest or ".." in rest:
                raise UnrecognisedEntity("'%s' is not a workflow name" % shown(text))
            return Query(WORKFLOW, rest)
        if not _PREFIXED_ID.match(rest) or ".." in rest:
            raise UnrecognisedEntity("'%s' is not a %s id" % (shown(text), kind))
        return Query(kind, rest.upper())
    if _EPIC_ID.match(text):                                            # 4
        return Query(EPIC, text.upper())
    if text in workflow_names:                                          # 5
        return Query(WORKFLOW, text)
    if _STORY_ID.match(text) and _HAS_DIGIT.search(text):               # 6
        return Query(STORY, text.upper())
    if _KEBAB.match(text):                                              # 7
        return Query(WORKFLOW, text)
    raise UnrecognisedEntity("unrecognised ENTITY '%s'" % shown(text))  # 8


def find(project: Project, query: Query) -> Entity:
    """Look a Query up in `project`: an Entity, or EntityNotFound with the closest ids."""
    kind = query.kind
    if kind == SUMMARY:
        return Entity(SUMMARY, None, project.summary, project.warnings, project.errors)
    if kind == STORIES:
        return Entity(STORIES, None, project.stories, project.story_warnings, project.story_errors)
    if kind == EPICS:
        return Entity(EPICS, None, project.epics, project.epic_warnings, project.epic_errors)
    if kind == WORKFLOWS:
        return Entity(WORKFLOWS, None, project.workflows, project.workflow_warnings, project.workflow_errors)
    if kind not in (STORY, EPIC, WORKFLOW):
        raise ValueError("unknown entity kind %r" % (kind,))
    key = query.key
    if key is None:
        raise ValueError("a %s query needs an id or a name" % kind)
    if kind == STORY:
        story = project.story(key) or project.story("STORY-" + key)
        if story is None:
            raise EntityNotFound(STORY, key, suggest(key, [s.id for s in project.stories], "STORY-"))
        mentions = _mentioning(story.id)
        # Its state's WIP violation concerns it even where the message names only the first few stories.
        violation = violation_prefix(story.status)
        return Entity(STORY, story.id, story,
                      [m for m in project.story_warnings if mentions(m) or m.startswith(violation)],
                      list(project.story_errors))
    if kind == EPIC:
        epic = project.epic(key) or project.epic("EPIC-" + key)
        if epic is None:
            raise EntityNotFound(EPIC, key, suggest(key, [e.id for e in project.epics], "EPIC-"))
        prefix = epic.source + ":"
        return Entity(EPIC, epic.id, epic, [m for m in project.epic_warnings if m.startswith(prefix)],
                      ["%s: %s" % (epic.source, epic.error)] if epic.error else [])
    workflow = project.workflow(key)
    if workflow is None:
        matches = [w for w in project.workflows if w.name.lower() == key.lower()]
        workflow = matches[0] if len(matches) == 1 else None
    if workflow is None:
        raise EntityNotFound(WORKFLOW, key, suggest(key, [w.name for w in project.workflows]))
    errors = ["%s: %s" % (workflow.source, workflow.error)] if workflow.is_invalid else []
    return Entity(WORKFLOW, workflow.name, workflow, list(workflow.warnings), errors)


def resolve(project: Project, text: str | None) -> Entity:
    """ENTITY text → Entity. Raises UnrecognisedEntity (usage) or EntityNotFound."""
    return find(project, classify(text, _NameSet(project)))


class _NameSet:
    """`in` over the project's workflow names without building a set on every call."""

    __slots__ = ("project",)

    def __init__(self, project: Project) -> None:
        self.project = project

    def __contains__(self, name: str) -> bool:
        return self.project.workflow(name) is not None


def suggest(key: str, candidates: Sequence[str], optional_prefix: str = "") -> list[str]:
    """The existing ids closest to `key`: containing it first, then by difflib similarity."""
    if not candidates:
        return []
    import difflib   # only a failed lookup pays for it
    folded = key.upper()
    by_fold: dict[str, str] = {}
    for candidate in candidates:
        by_fold.setdefault(candidate.upper(), candidate)
        if optional_prefix and candidate.upper().startswith(optional_prefix):
            by_fold.setdefault(candidate.upper()[len(optional_prefix):], candidate)
    found: list[str] = []
    if len(folded) >= 3:
        found = [c for c in candidates if folded in c.upper()][:MAX_SUGGESTIONS]
    for match in difflib.get_close_matches(folded, list(by_fold), n=MAX_SUGGESTIONS, cutoff=0.6):
        candidate = by_fold[match]
        if candidate not in found:
            found.append(candidate)
    return found[:MAX_SUGGESTIONS]


def _mentioning(entity_id: str) -> Callable[[str], bool]:
    pattern = re.compile(r"(?<![A-Za-z0-9-])%s(?![A-Za-z0-9-])" % re.escape(entity_id))
    return lambda message: pattern.search(message) is not None
