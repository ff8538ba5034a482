"""What `status --watch --exit-status` / `--until STATE` waits for, and the one line it prints per state change
(README, "Waiting in scripts"). Sans-I/O: given what the view shows, whether the wait is over and with which exit
code; the live view does the waiting, through the server or the local files alike.

- A workflow: `--exit-status` ends at `completed` (exit 0) or `failed` (exit 1); `--until STATUS` ends at that
  status (0), or at `failed` when waiting for another one (1: a failed workflow will not get there by itself).
- A story: `--exit-status` ends when it is DONE; `--until STATE` when it is in that state (0).
- The whole project (the summary): `--exit-status` ends once every workflow is finished — `completed` or `failed`
  — exit 0 when none failed, else 1; `--until finished` the same but always 0; `--until completed` ends at 0 once
  every workflow is completed, at 1 as soon as every one is finished and one failed.
"""

from __future__ import annotations

from typing import Optional

from madace_status.choices import ExitCode
from madace_status.console import UsageError
from madace_status.project.model import STATE_LABELS, STORY_STATES, WORKFLOW_STATUSES, Story, Summary, Workflow
from madace_status.project.registry import STORY, SUMMARY, WORKFLOW, Entity
from madace_status.project.render.text import clean

__all__ = ["PROJECT_GOALS", "Goal"]

COMPLETED, FAILED = "completed", "failed"
FINISHED_STATUSES = frozenset((COMPLETED, FAILED))
PROJECT_GOALS = ("finished", COMPLETED)  # what --until accepts for the whole project
KINDS_WAITED_FOR = (WORKFLOW, STORY, SUMMARY)


class Goal:
    """The end of a wait for one entity kind: `until` (a state, status or project goal) or the `--exit-status`
    default. UsageError, at once, for a kind or a state that cannot be waited for."""

    def __init__(self, kind: str, until: Optional[str]) -> None:
        if kind not in KINDS_WAITED_FOR:
            raise UsageError("--exit-status and --until wait for a workflow, a story or the whole project "
                             "(the summary), not for %s" % ("a list" if kind.endswith("s") else "an epic"))
        self.kind = kind
        self.until = None if until is None else _normalise(kind, until)

    def exit_code(self, entity: Entity) -> Optional[ExitCode]:
        """The exit code when `entity` (of this goal's kind) ends the wait, else None."""
        if self.kind == WORKFLOW:
            workflow: Workflow = entity.record
            if self.until is None:
                return {COMPLETED: ExitCode.OK, FAILED: ExitCode.FAILED}.get(workflow.status)
            if workflow.status == self.until:
                return ExitCode.OK
            return ExitCode.FAILED if workflow.status == FAILED else None
        if self.kind == STORY:
            story: Story = entity.record
            return ExitCode.OK if story.status == (self.until or "DONE") else None
        summary: Summary = entity.record
        statuses = [workflow["status"] for workflow in summary.workflows]
        if not statuses or any(status not in FINISHED_STATUSES for status in statuses):
            return None
        failed = FAILED in statuses
        if self.until == "finished":
            return ExitCode.OK
        return ExitCode.FAILED if failed else ExitCode.OK

    def state_line(self, entity: Entity) -> str:
        """The entity's state in one line (without the time): what is printed each time it changes. Names and
        errors come from files: control characters are replaced (render.text.clean)."""
        return clean(self._state_text(entity))

    def _state_text(self, entity: Entity) -> str:
        if self.kind == WORKFLOW:
            workflow: Workflow = entity.record
            line = "%s %s step %d/%d %d%%" % (workflow.name, workflow.status, workflow.current_step,
                                              workflow.total_steps, workflow.progress)
            return line + (": %s" % workflow.error if workflow.status == FAILED and workflow.error else "")
        if self.kind == STORY:
            story: Story = entity.record
            return "%s %s" % (story.id, STATE_LABELS[story.status])
        summary: Summary = entity.record
        counts = summary.workflow_status_counts
        workflows = ", ".join("%d %s" % (counts[status], status) for status in sorted(counts)) or "none"
        stories = ", ".join("%s %d" % (STATE_LABELS[state], summary.states[state]["count"]) for state in STORY_STATES)
        return "workflows: %s; stories: %s" % (workflows, stories)


def _normalise(kind: str, until: str) -> str:
    """`until` as the model writes it (case and `-`/`_`/space forgiven); UsageError listing what is accepted."""
    word = until.strip().lower().replace("-", "_").replace(" ", "_")
    if kind == WORKFLOW:
        accepted = WORKFLOW_STATUSES
        chosen = word if word in accepted else None
    elif kind == STORY:
        accepted = STORY_STATES
        chosen = word.upper() if word.upper() in accepted else None
    else:
        accepted = PROJECT_GOALS
        chosen = word if word in accepted else None
    if chosen is None:
        raise UsageError("--until for a %s must be one of %s" % (
            {WORKFLOW: "workflow", STORY: "story", SUMMARY: "project"}[kind], ", ".join(accepted)))
    return chosen
