"""The client-side replica: the project as the sync server describes it, kept in step by its messages.

This docstring is THE place where the rules of following the sync protocol (README, "The WebSocket protocol")
are written down. Two clients implement them: `Replica` below (used by `status --watch`, with no terminal code)
and the dashboard's JavaScript (`madace_status/web/static/`), which points here. Change a rule here and in both.

State: the records (workflows by name, stories in file order, epics by id), the project-wide `warnings` and
`errors`, and the position in the server's event stream: `runId` (one per server start) and `lastSeq` (the
`seq` of the last snapshot or event applied).

How each message updates it:
- `ping` (the welcome, first after the handshake): remember `data.runId`. Nothing else changes.
- `snapshot` (`reason`: `connected`, `subscribed`, `resync` or `lagging`; all alike): replace everything: workflows,
  stories, epics, warnings and errors from `data` (a topic not subscribed is absent and left empty); `lastSeq`
  becomes the snapshot's `seq`. It always counts as a change.
- An event whose `seq` is not above `lastSeq`: already applied (a replay after resuming may overlap); skip it.
- `state_updated`: `workflows[data.workflowName] = data.workflow` (the whole record, as `to_dict()` writes it).
- `workflow_removed`: delete `workflows[data.workflowName]` (no change when it was not there).
- `stories_updated`: `stories = data.stories` (the whole list); warnings and errors = those of `data.summary`
  (`changes` is for activity feeds).
- `epics_updated`: upsert each record of `data.epics` by `id`; delete each id listed in `data.removed`.
- `workflow_started` / `workflow_completed` / `workflow_failed`: change no record (the `state_updated` just
  before carried it); they are for activity feeds.
- `notices_updated` (sent to every client, whatever its topics, when the notices changed with no record):
  warnings and errors = `data`'s.
- A `state_updated`, `epics_updated` or `workflow_removed` whose `data` has `warnings`: the project's notices
  changed with it; warnings and errors = `data`'s (only strings are kept).
- After every event with an integer `seq`: `lastSeq = seq`.
- `pong`, `error` and unknown types change nothing and do not move `lastSeq`.

Out of step: a message that is not JSON, or not an object with a `type`, is ignored. An event the replica
cannot apply (a missing key, a wrong type) must never leave a wrong view: forget the position (`runId` and
`lastSeq` = none) and drop the connection, so the next one starts from a fresh snapshot.

Resuming: every (re)connection asks for `runId` and `since=lastSeq` when both are known. The server replays
exactly the events after `since` (applied by the rules above), or sends a `resync` snapshot when the run
changed or the events were evicted from its ring buffer. A client that falls behind (its unsent buffer over
the high-water mark) gets a `lagging` snapshot once it drains. Either way the replica converges to the
server's state with nothing lost. A client may send a JSON `ping` right after connecting: its `pong` comes
after everything sent before it, so the replica is up to date when it arrives (`status --watch` shows push
mode from then on).

Rendering (Python only): `project()` rebuilds a `Project` and hands each project-wide notice back to the
source it came from (a workflow's state file, the story file, the epics), so an entity's view shows the notices
one-shot `status` shows for it.
"""

from __future__ import annotations

import enum
import json
import os
import re
from typing import Any, Iterable, Mapping, Tuple, Type, TypeVar

from madace_status.project.model import STORY_STATES, Epic, Project, Record, Story, Workflow, violation_prefix
from madace_status.sync.events import EVENT_TYPES, EventType

__all__ = ["Message", "Replica", "ReplicaOutOfStep", "parse_message", "record_from_dict"]

Message = Tuple[Any, Any, Any]  # (type, data, seq) as the server sent them: JSON values, not checked yet
RecordT = TypeVar("RecordT", bound=Record)

_STATE_FILE_SOURCE = re.compile(r"\A\S*\.state\.json: ")
_VIOLATION_PREFIXES = tuple(violation_prefix(state) for state in STORY_STATES)
_UNAPPLICABLE = (ValueError, TypeError, KeyError, AttributeError)  # what a malformed message raises here


class ReplicaOutOfStep(Exception):
    """A message the replica could not apply: it forgot its position; reconnect for a fresh snapshot."""


class _Source(enum.Enum):
    """The source a project-wide notice belongs to: where `Replica.project()` hands it back."""

    WORKFLOWS = "workflows"
    STORIES = "stories"
    EPICS = "epics"


def parse_message(text: str | bytes) -> Message | None:
    """(type, data, seq) of a server message, or None when the text is not a message of the protocol."""
    try:
        message = json.loads(text)
        return message["type"], message.get("data") or {}, message.get("seq")
    except _UNAPPLICABLE:
        return None


def record_from_dict(cls: Type[RecordT], data: Mapping[str, Any]) -> RecordT:
    """A model record back from its `to_dict()` form (the keys the server sends)."""
    fields: Iterable[tuple[str, str]] = cls._FIELDS  # (attribute, JSON key)
    return cls(**{attr: data[key] for attr, key in fields if key in data})


class Replica:
    """The project as the server described it: the last snapshot with every event since applied.

    The server sends the project-wide warnings and errors (in a snapshot, with every `stories_updated`, and with
    any workflow or epic event that changed them);
    `project()` hands each notice back to the source it came from, so an entity's view shows the notices
    one-shot `status` shows for it.
    """

    def __init__(self, root: str, epics_dir_shown: str | None = None) -> None:
        self.root = root
        self.epics_dir_shown = epics_dir_shown
        self.workflows: dict[str, Workflow] = {}
        self.stories: list[Story] = []
        self.epics: dict[Any, Epic] = {}
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.run_id: Any = None  # the server run the position belongs to (the welcome's runId)
        self.last_seq: int | None = None  # the seq of the last snapshot or event applied
        self._project: Project | None = None

    # -- following the server ---------------------------------------------------------------------------------

    def receive(self, kind: Any, data: Any, seq: Any) -> bool:
        """Follow one server message (see `parse_message`); True when what the replica holds changed.

        Raises ReplicaOutOfStep, after forgetting the position, for a message it cannot apply.
        """
        try:
            if kind == "ping":
                self.run_id = data.get("runId", self.run_id)
            elif kind == "snapshot":
                self.load_snapshot(data)
                self.last_seq = seq if isinstance(seq, int) else None
                return True
            elif kind in EVENT_TYPES:
                if isinstance(seq, int) and self.last_seq is not None and seq <= self.last_seq:
                    return False  # already applied
                changed = self.apply(kind, data)
                if isinstance(seq, int):
                    self.last_seq = seq
                return changed
        except _UNAPPLICABLE as error:
            self.forget_position()
            raise ReplicaOutOfStep("%s: %s" % (type(error).__name__, error))
        return False

    def position(self) -> tuple[Any, int | None]:
        """(runId, since) to resume from, or (None, None) when the next connection must start afresh."""
        if self.run_id is None or self.last_seq is None:
            return None, None
        return self.run_id, self.last_seq

    def forget_position(self) -> None:
        self.run_id = self.last_seq = None

    # -- the records --------------------------------------------------------------------------------------------

    def load_snapshot(self, data: Mapping[str, Any]) -> None:
        self.workflows = {w["name"]: record_from_dict(Workflow, w) for w in data.get("workflows") or ()}
        self.stories = [record_from_dict(Story, s) for s in data.get("stories") or ()]
        self.epics = {e["id"]: record_from_dict(Epic, e) for e in data.get("epics") or ()}
        self._set_notices(data)
        self._project = None

    def _set_notices(self, data: Mapping[str, Any]) -> None:
        self.warnings = [m for m in data.get("warnings") or () if isinstance(m, str)]
        self.errors = [m for m in data.get("errors") or () if isinstance(m, str)]

    def apply(self, event_type: str, data: Mapping[str, Any]) -> bool:
        """Apply one event; True when it changed what the replica holds."""
        if event_type == EventType.STATE_UPDATED:
            self.workflows[data["workflowName"]] = record_from_dict(Workflow, data["workflow"])
        elif event_type == EventType.WORKFLOW_REMOVED:
            if self.workflows.pop(data["workflowName"], None) is None and "warnings" not in data:
                return False
        elif event_type == EventType.STORIES_UPDATED:
            self.stories = [record_from_dict(Story, s) for s in data["stories"]]
            self._set_notices(data.get("summary") or {})
        elif event_type == EventType.EPICS_UPDATED:
            for epic in data.get("epics") or ():
                self.epics[epic["id"]] = record_from_dict(Epic, epic)
            for epic_id in data.get("removed") or ():
                self.epics.pop(epic_id, None)
        elif event_type == EventType.NOTICES_UPDATED:
            self._set_notices(data)
        else:
            return False  # lifecycle events repeat what the state_updated before them carried
        if "warnings" in data:  # the project's notices changed with this event
            self._set_notices(data)
        self._project = None
        return True

    def project(self) -> Project:
        """The project the replica holds now (rebuilt after a change, else the same object)."""
        if self._project is None:
            self._project = self._build()
        return self._project

    def _build(self) -> Project:
        workflows = [self.workflows[name] for name in sorted(self.workflows)]
        epics = [self.epics[key] for key in sorted(self.epics)]
        by_source = {w.source + ": ": w for w in workflows if w.source}
        for workflow in workflows:
            workflow.warnings = []
        derived_errors = {"%s: %s" % (w.source, w.error) for w in workflows if w.is_invalid}
        derived_errors.update("%s: %s" % (e.source, e.error) for e in epics if e.error)
        epics_dir = self.epics_dir_shown
        epic_dirs = {os.path.dirname(e.source) for e in epics if e.source}
        if len(epic_dirs) == 1:
            epics_dir = epic_dirs.pop()
        notices: dict[_Source, tuple[list[str], list[str]]] = {source: ([], []) for source in _Source}
        for message in self.warnings:
            if message.startswith(_VIOLATION_PREFIXES):
                continue  # Project derives the violations from the stories
            owner = _record_for(message, by_source)
            if owner is not None:
                owner.warnings.append(message)
            else:
                notices[_notice_source(message, epics_dir)][0].append(message)
        for message in self.errors:
            if message not in derived_errors:
                notices[_notice_source(message, epics_dir)][1].append(message)
        return Project(self.root, workflows, self.stories, epics, *(notices[_Source.WORKFLOWS] +
                                                                     notices[_Source.STORIES] + notices[_Source.EPICS]))


def _record_for(message: str, by_source: Mapping[str, Workflow]) -> Workflow | None:
    head, colon, _ = message.partition(": ")
    return by_source.get(head + ": ") if colon else None


def _is_epic_file_notice(message: str) -> bool:
    """True for "<path>/EPIC….md: …". String methods, not a regex: `\\S*EPIC[^/\\s:]*` backtracks
    quadratically on a long run of "EPIC"s."""
    head, separator, _ = message.partition(": ")
    if not separator or not head.endswith(".md") or head != "".join(head.split()):
        return False
    segment = head[max(head.rfind("/"), head.rfind(":")) + 1:]
    return "EPIC" in segment[:-3]


def _notice_source(message: str, epics_dir: str | None) -> _Source:
    """Which source a project-level notice belongs to, by the forms the loader writes them in."""
    if message.startswith(("no workflow state directory", "workflow state directory ")) or \
            _STATE_FILE_SOURCE.match(message):
        return _Source.WORKFLOWS
    if message.startswith("epics directory ") or _is_epic_file_notice(message):
        return _Source.EPICS
    if epics_dir and (message.startswith(epics_dir + "/") or message.startswith("cannot list %s:" % epics_dir)):
        return _Source.EPICS
    if message.startswith("cannot list "):
        return _Source.WORKFLOWS
    return _Source.STORIES
