"""Old project vs new project → the typed events (README, "The WebSocket protocol"), in the order clients must
see them.

Pure functions over `project.model.Project`. Each event is `(type, data, topic, workflow name or None)`.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Collection, Dict, Optional, Tuple

if TYPE_CHECKING:
    from madace_status.project.model import Project, Workflow

__all__ = ["EVENT_TYPES", "EVERY_TOPIC", "EventType", "ProjectEvent", "diff_projects", "epic_events",
           "snapshot_data", "story_events", "workflow_events", "workflow_state"]


class EventType(str, enum.Enum):
    """An event's `type`, as the wire carries it (README, "The WebSocket protocol"). A str whose value is the wire
    string: JSON, `%s` and comparisons with the plain string see that string alone."""

    STATE_UPDATED = "state_updated"
    WORKFLOW_STARTED = "workflow_started"
    WORKFLOW_COMPLETED = "workflow_completed"
    WORKFLOW_FAILED = "workflow_failed"
    WORKFLOW_REMOVED = "workflow_removed"
    STORIES_UPDATED = "stories_updated"
    EPICS_UPDATED = "epics_updated"
    NOTICES_UPDATED = "notices_updated"

    def __str__(self) -> str:
        return str(self.value)


EVENT_TYPES = frozenset(EventType)  # every event type (a plain string from the wire is found in it too)
EVERY_TOPIC = None  # the topic of an event every client gets, whatever it subscribed to

# (type, data, topic or EVERY_TOPIC, the workflow's name or None): what the hub publishes.
ProjectEvent = Tuple[EventType, Dict[str, Any], Optional[str], Optional[str]]

# The events that carry the project's warnings and errors when they changed (`stories_updated` always does).
_CARRY_NOTICES = (EventType.STATE_UPDATED, EventType.WORKFLOW_REMOVED, EventType.EPICS_UPDATED)


def workflow_state(workflow: Workflow) -> dict[str, Any]:
    """The compact state carried by `state_updated` (and shown in the dashboard's workflow row)."""
    state: dict[str, Any] = {"status": workflow.status, "currentStep": workflow.current_step,
                             "totalSteps": workflow.total_steps, "progress": workflow.progress,
                             "currentStepName": workflow.current_step_name}
    if workflow.error:
        state["error"] = workflow.error
    return state


def _lifecycle(old: Workflow | None, new: Workflow) -> EventType | None:
    """The lifecycle event a status change implies, or None."""
    before = old.status if old is not None else None
    after = new.status
    if before == after:
        return None
    if after == "completed":
        return EventType.WORKFLOW_COMPLETED
    if after == "failed":
        return EventType.WORKFLOW_FAILED
    if after == "in_progress" and before in (None, "pending"):
        return EventType.WORKFLOW_STARTED
    if before is None and after == "pending":
        return EventType.WORKFLOW_STARTED  # a workflow appeared
    return None


def _lifecycle_data(kind: EventType, workflow: Workflow) -> dict[str, Any]:
    name = workflow.name
    if kind == EventType.WORKFLOW_STARTED:
        return {"workflowName": name, "message": "Workflow %s started" % name}
    if kind == EventType.WORKFLOW_COMPLETED:
        return {"workflowName": name, "message": "Workflow %s completed" % name}
    return {"workflowName": name, "message": "Workflow %s failed: %s" % (name, workflow.error or "unknown error"),
            "error": workflow.error}


def workflow_events(old_project: Project | None, new_project: Project) -> list[ProjectEvent]:
    """`state_updated` for each workflow added or changed (and the lifecycle event its status change implies), and
    `workflow_removed` for each one gone, by name."""
    events: list[ProjectEvent] = []
    old_by_name = {w.name: w for w in old_project.workflows} if old_project is not None else {}
    new_by_name = {w.name: w for w in new_project.workflows}
    for name in sorted(set(old_by_name) | set(new_by_name)):
        old, new = old_by_name.get(name), new_by_name.get(name)
        if new is None:
            events.append((EventType.WORKFLOW_REMOVED, {"workflowName": name}, "workflows", name))
            continue
        if old is new or (old is not None and old == new):  # the service keeps unchanged records as they were
            continue
        record = new.to_dict()
        events.append((EventType.STATE_UPDATED,
                       {"workflowName": name, "state": workflow_state(new), "workflow": record}, "workflows", name))
        kind = _lifecycle(old, new)
        if kind is not None:
            events.append((kind, _lifecycle_data(kind, new), "workflows", name))
    return events


def story_events(old_project: Project | None, new_project: Project) -> list[ProjectEvent]:
    """One `stories_updated` (the whole list, the summary and the status changes) when the stories changed."""
    # Element by element, identity first: a change of a state file alone costs no to_dict() of 2,000 stories.
    if old_project is not None and old_project.stories == new_project.stories:
        return []
    old_stories = {s.id: s for s in old_project.stories} if old_project is not None else {}
    new_stories = {s.id: s for s in new_project.stories}
    changes: list[dict[str, Any]] = []
    for story in new_project.stories:
        before = old_stories.get(story.id)
        if before is None or before.status != story.status:
            changes.append({"id": story.id, "from": before.status if before else None, "to": story.status,
                            "title": story.title})
    for story_id, story in old_stories.items():
        if story_id not in new_stories:
            changes.append({"id": story_id, "from": story.status, "to": None, "title": story.title})
    data: dict[str, Any] = {"summary": new_project.summary.to_dict(), "changes": changes,
            "stories": [s.to_dict() for s in new_project.stories]}
    return [(EventType.STORIES_UPDATED, data, "stories", None)]


def epic_events(old_project: Project | None, new_project: Project) -> list[ProjectEvent]:
    """One `epics_updated` (the epics added or changed, the ids removed) when the epics changed."""
    old_epics = {e.id: e for e in old_project.epics} if old_project is not None else {}
    new_epics = {e.id: e for e in new_project.epics}
    changed = [epic.to_dict() for epic_id, epic in sorted(new_epics.items()) if old_epics.get(epic_id) != epic]
    removed = sorted(set(old_epics) - set(new_epics))
    if not changed and not removed:
        return []
    return [(EventType.EPICS_UPDATED, {"epics": changed, "removed": removed}, "epics", None)]


def diff_projects(old_project: Project | None, new_project: Project) -> list[ProjectEvent]:
    """Every event that turns `old_project` into `new_project`: workflows, then stories, then epics.

    When the project's warnings or errors changed, the workflow and epic events carry the new lists too
    (`stories_updated` always does, in its summary), so a replica never shows stale notices. When they changed
    with no record (a state directory gone after its last file, a listing error that cleared, a duplicate line
    added to the story file), a `notices_updated` carries them, to every client.
    """
    events = workflow_events(old_project, new_project) + story_events(old_project, new_project) + \
        epic_events(old_project, new_project)
    if old_project is None or (old_project.warnings, old_project.errors) != (new_project.warnings,
                                                                              new_project.errors):
        carried = False
        for event_type, data, _, _ in events:
            if event_type in _CARRY_NOTICES:
                data["warnings"] = new_project.warnings
                data["errors"] = new_project.errors
                carried = True
            elif event_type == EventType.STORIES_UPDATED:
                carried = True
        if not carried and old_project is not None:
            events.append((EventType.NOTICES_UPDATED, {"warnings": new_project.warnings,
                                                       "errors": new_project.errors}, EVERY_TOPIC, None))
    return events


def snapshot_data(project: Project, topics: Collection[str],
                  workflows: Collection[str] | None = None) -> dict[str, Any]:
    """The project as a snapshot shows it to a client subscribed to `topics` (and `workflows`, if set)."""
    data: dict[str, Any] = {"summary": project.summary.to_dict(), "warnings": project.warnings,
                            "errors": project.errors}
    if "workflows" in topics:
        data["workflows"] = [w.to_dict() for w in project.workflows if workflows is None or w.name in workflows]
    if "stories" in topics:
        data["stories"] = [s.to_dict() for s in project.stories]
    if "epics" in topics:
        data["epics"] = [e.to_dict() for e in project.epics]
    return data
