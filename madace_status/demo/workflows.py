"""The demo's workflows: one `WorkflowRun` per state file of the sample, and the state file it writes.

What a workflow is (its schema, step ids or step count, context or variables, parent and child) is read from
the sample's state file (`template_from_document`); where it stands changes as the simulator moves it, and
`document()` writes it back in the same schema.
"""

from __future__ import annotations

import json

from madace_status.project.model import WORKFLOW_STATUSES
from madace_status.project.workflows import workflow_name

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Dict, Mapping, Optional, Tuple, TypedDict

    class _TemplateBase(TypedDict):
        name: str
        schema: str   # "A" or "B"

    class WorkflowTemplate(_TemplateBase, total=False):
        """What never changes about a workflow: `steps` and `context` (schema A), or `total`, `variables`
        and a `child` or `parent` workflow's name (schema B)."""
        steps: Tuple[str, ...]
        context: Dict[str, Any]
        total: int
        variables: Dict[str, Any]
        child: Optional[str]
        parent: str

__all__ = ["WorkflowRun", "template_from_document", "state_json", "state_file_name", "text_or_none"]

_LEGACY_STATUSES: dict[str, str] = {"running": "in_progress", "done": "completed", "error": "failed"}


def text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def state_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def state_file_name(name: str) -> str:
    """`pm-planning` → `.pm-planning.state.json` (README, "What it reads")."""
    return ".%s.state.json" % name


def template_from_document(doc: dict[str, Any]) -> WorkflowTemplate:
    """What never changes about a workflow, from a state file of the sample (schema A or B)."""
    if "workflow" in doc:
        return {"name": doc["workflow"], "schema": "A", "steps": tuple(step["id"] for step in doc["steps"]),
                "context": dict(doc.get("context") or {})}
    variables = dict(doc.get("variables") or {})
    template: WorkflowTemplate = {"name": doc["workflowName"], "schema": "B", "total": variables.pop("_TOTAL_STEPS"),
                                  "variables": variables}
    children = doc.get("childWorkflows") or ()
    if children:
        template["child"] = workflow_name(children[0]["stateFile"])
    if doc.get("parentWorkflow"):
        template["parent"] = doc["parentWorkflow"]
    return template


class WorkflowRun:
    """One simulated workflow: its template (what never changes) and where it stands.

    `status` is one of `WORKFLOW_STATUSES`, or "absent" while it has no state file.
    """

    def __init__(self, template: WorkflowTemplate) -> None:
        self.template = template
        self.name = template["name"]
        self.schema = template["schema"]
        self.step_ids = tuple(template.get("steps", ()))
        self.total = len(self.step_ids) if self.schema == "A" else template["total"]
        self.status = "absent"
        self.done = 0                  # steps completed
        self.started_at: str | None = None
        self.updated_at: str | None = None
        # schema A: [startedAt, completedAt] of each step
        self.step_times: list[list[str | None]] = [[None, None] for _ in range(self.total)]
        self.error: str | None = None

    @property
    def path_name(self) -> str:
        return state_file_name(self.name)

    def start(self, now: str) -> None:
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

    def document(self, runs: Mapping[str, WorkflowRun]) -> dict[str, Any]:
        """The state file's JSON document, in this workflow's schema (`runs`: every run, for a child's status)."""
        return self._document_a() if self.schema == "A" else self._document_b(runs)

    def _document_a(self) -> dict[str, Any]:
        steps = []
        for index, step_id in enumerate(self.step_ids):
            started, completed = self.step_times[index]
            entry: dict[str, Any] = {"id": step_id}
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

    def _document_b(self, runs: Mapping[str, WorkflowRun]) -> dict[str, Any]:
        variables = dict(self.template.get("variables", {}))
        variables["_TOTAL_STEPS"] = self.total
        doc: dict[str, Any] = {"workflowName": self.name,
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
                "stateFile": state_file_name(child_name),
                "status": "completed" if child_done else "running",
                "startedAt": (child.started_at if child is not None and child.started_at else self.started_at)}]
        parent = self.template.get("parent")
        if parent:
            doc["parentWorkflow"] = parent
            doc["parentStateFile"] = state_file_name(parent)
        return doc

    def load(self, doc: dict[str, Any]) -> None:
        """Take the situation from a state file written earlier (by this module or by hand)."""
        if self.schema == "A":
            listed: object = doc.get("steps")
            steps: list[dict[str, Any]] = [s if isinstance(s, dict) else {}
                                           for s in (listed if isinstance(listed, list) else [])][:self.total]
            done = 0
            for index, step in enumerate(steps):
                self.step_times[index] = [text_or_none(step.get("startedAt")), text_or_none(step.get("completedAt"))]
                if step.get("status") == "completed" and done == index:
                    done += 1
            given: Any = doc.get("status")   # anything: only one of WORKFLOW_STATUSES is kept
            status = _LEGACY_STATUSES.get(given, given)
            if status not in WORKFLOW_STATUSES:
                status = "completed" if done >= self.total else "in_progress"
            self.error = next((text_or_none(s.get("error")) for s in steps if s.get("status") == "failed"), None)
            self.updated_at = text_or_none(doc.get("lastUpdated")) or text_or_none(doc.get("updatedAt"))
        else:
            current = doc.get("currentStep")
            done = current if isinstance(current, int) and not isinstance(current, bool) else 0
            self.error = text_or_none(doc.get("error"))
            if doc.get("completed") is True:
                status = "completed"
            elif self.error:
                status = "failed"
            elif done <= 0:
                status = "pending"
            else:
                status = "in_progress"
            self.updated_at = text_or_none(doc.get("updatedAt")) or text_or_none(doc.get("lastUpdated"))
        self.done = max(0, min(done, self.total if status == "completed" else self.total - 1))
        if status == "completed":
            self.done = self.total
        if status == "failed" and not self.error:
            self.error = "workflow failed"
        self.status = status
        self.started_at = text_or_none(doc.get("startedAt")) or self.updated_at

    def describe_position(self) -> str:
        current = self.done + 1
        if self.schema == "A":
            return "step %d/%d (%s)" % (current, self.total, self.step_ids[self.done])
        return "step %d/%d" % (current, self.total)
