"""Workflow state files `.<name>.state.json`, schema A and schema B, normalised (README, "`data` of each kind")."""

from __future__ import annotations

import json
import os
import re

from madace_status.project.files import MAX_STATE_FILE_BYTES, SourceError, display_path, read_source
from madace_status.project.model import INVALID_STATUS, WORKFLOW_STATUSES, Workflow

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time (it would slow every `status`)
if TYPE_CHECKING:
    from typing import Any, Dict, List, NoReturn, Optional, Tuple

    from madace_status.project.model import ChildWorkflow, WorkflowStep

    # What each schema's reader gives normalise_workflow(): status, current step, total steps, steps done,
    # steps, startedAt, updatedAt, context, error, children, schema.
    _SchemaFields = Tuple[str, int, int, int, List[WorkflowStep], Optional[str], Optional[str], Dict[str, Any],
                          Optional[str], List[ChildWorkflow], str]

__all__ = ["STATE_FILE_RE", "STATUS_ALIASES", "workflow_name", "read_workflow_file", "parse_workflow_bytes",
           "invalid_workflow", "detect_schema", "normalise_workflow", "list_state_files"]

STATE_FILE_RE = re.compile(r"\A\.(.+)\.state\.json\Z", re.DOTALL)
MAX_ERROR_CHARS = 500   # of an `error` that is not a string, once written as JSON
MAX_SHOWN_CHARS = 40    # of a bad field's value quoted in a warning

STATUS_ALIASES: dict[str, str] = {"pending": "pending", "in_progress": "in_progress", "completed": "completed",
                  "failed": "failed", "running": "in_progress", "done": "completed",
                  "success": "completed", "error": "failed"}

_JSON_TYPE_NAMES: dict[type, str] = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
                    int: "a number", float: "a number", type(None): "null"}


def workflow_name(filename: str) -> str | None:
    """`.pm-planning.state.json` → `pm-planning`; None for any other file name."""
    match = STATE_FILE_RE.match(filename)
    return match.group(1) if match else None


def read_workflow_file(path: str, root: str, boundary: str | None = None) -> Workflow:
    """Read and normalise one state file. Never raises: an unusable file gives status "invalid".

    `source` is shown relative to `root`; `boundary` (default `root`) is the directory a symlinked
    state file may not leave.
    """
    filename = os.path.basename(path)
    name = workflow_name(filename) or filename
    source = display_path(path, root)
    try:
        data = read_source(path, boundary or root, MAX_STATE_FILE_BYTES)
    except SourceError as exc:
        return invalid_workflow(name, source, str(exc))
    return parse_workflow_bytes(data, name, source)


def parse_workflow_bytes(data: bytes, name: str, source: str = "") -> Workflow:
    """Normalise the bytes of a state file (already read); never raises."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return invalid_workflow(name, source, "not UTF-8 text (binary data?)")
    if not text.strip():
        return invalid_workflow(name, source, "empty file")
    try:
        document = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        return invalid_workflow(name, source, "invalid JSON: nested too deeply")
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            reason = "%s (line %d, column %d)" % (exc.msg, exc.lineno, exc.colno)
        else:
            reason = str(exc)
        return invalid_workflow(name, source, "invalid JSON: " + reason)
    if not isinstance(document, dict):
        return invalid_workflow(name, source, "expected a JSON object, found %s" % _type_name(document))
    return normalise_workflow(document, name, source)


def _reject_constant(name: str) -> NoReturn:
    # Python's json accepts NaN/Infinity/-Infinity; no JSON reader does, so a state file holding one would make
    # every JSON output (status -f json, the API, WebSocket messages) invalid for its consumers.
    raise ValueError("%s is not a JSON number (NaN and Infinity are not allowed)" % name)


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("number %s is out of range" % text[:MAX_SHOWN_CHARS])   # 1e999 overflows to inf
    return value


def invalid_workflow(name: str, source: str, reason: str) -> Workflow:
    return Workflow(name=name, status=INVALID_STATUS, error=reason, source=source, schema=None)


def detect_schema(document: dict[str, Any]) -> str:
    """"B" for what the workflow engine writes, "A" for the status-provider schema."""
    if "workflowName" in document or "variables" in document or "childWorkflows" in document:
        return "B"
    if "status" not in document and isinstance(document.get("completed"), bool):
        return "B"
    return "A"


def normalise_workflow(document: dict[str, Any], name: str, source: str = "") -> Workflow:
    """Build the normalised record from a decoded JSON object (either schema)."""
    notes = _Notes(source)
    if detect_schema(document) == "B":
        fields = _schema_b(document, notes)
    else:
        fields = _schema_a(document, notes)
    status, current, total, completed_steps, steps = fields[:5]
    if status == "completed":
        completed_steps = total
        progress = 100
    elif total > 0:
        completed_steps = min(completed_steps, total)
        progress = min(100, int(100.0 * completed_steps / total + 0.5))   # half up, like Math.round
    else:
        progress = 0
    if total > 0:
        current = min(current, total)
    return Workflow(
        name=name, status=status, current_step=current, total_steps=total,
        completed_steps=completed_steps, progress=progress,
        current_step_name=_current_step_name(status, current, steps),
        started_at=fields[5], updated_at=fields[6], steps=steps, context=fields[7], error=fields[8],
        children=fields[9], source=source, schema=fields[10], warnings=notes.messages)


def _schema_a(doc: dict[str, Any], notes: _Notes) -> _SchemaFields:
    steps = _steps(doc, notes)
    total = _total_steps(doc, None, steps, notes)
    current = notes.count(doc, "currentStep")
    raw_status = notes.string(doc, "status")
    done = sum(1 for step in steps if step["status"] == "completed")
    if raw_status is not None:
        status = notes.status(raw_status, "status")
    else:
        status = _derive_status_a(steps, current)
    if not steps:
        done = max(0, current - 1) if current else 0
    if current is None:
        current = _derive_current_a(status, steps, done, total)
    error = _error_text(doc.get("error"))
    if error is None:
        error = next((s["error"] for s in steps if s["status"] == "failed" and s["error"]), None)
    return (status, current, total, done, steps,
            notes.string(doc, "startedAt"), _updated(doc, notes, "lastUpdated", "updatedAt"),
            notes.mapping(doc, "context"), error, _children(doc, notes), "A")


def _derive_status_a(steps: list[WorkflowStep], current: int | None) -> str:
    if steps and all(s["status"] == "completed" for s in steps):
        return "completed"
    if any(s["status"] == "failed" for s in steps):
        return "failed"
    if not current and not any(s["status"] in ("in_progress", "completed") for s in steps):
        return "pending"
    return "in_progress"


def _derive_current_a(status: str, steps: list[WorkflowStep], done: int, total: int) -> int:
    if status == "completed":
        return total
    if status == "pending":
        return 0
    for index, step in enumerate(steps):
        if step["status"] in ("in_progress", "failed"):
            return index + 1
    return done + 1


def _schema_b(doc: dict[str, Any], notes: _Notes) -> _SchemaFields:
    steps = _steps(doc, notes)
    variables = notes.mapping(doc, "variables")
    total = _total_steps(doc, variables, steps, notes)
    done = notes.count(doc, "currentStep") or 0            # 0-based: steps already done
    completed = doc.get("completed")
    if completed is not None and not isinstance(completed, bool):
        notes.add('"completed" should be true or false, not %s; read as false' % _shown(completed))
        completed = False
    children = _children(doc, notes)
    error = _error_text(doc.get("error"))
    failed_child = next((c for c in children if c["status"] == "failed"), None)
    if completed:
        status = "completed"
    elif error is not None or failed_child is not None:
        status = "failed"
        if error is None and failed_child is not None:
            error = "child workflow %s failed" % (failed_child["name"] or "?")
    elif done == 0:
        status = "pending"
    else:
        status = "in_progress"
    if status == "completed":
        current = total
    elif status == "pending":
        current = 0
    else:
        current = done + 1
    return (status, current, total, done, steps,
            notes.string(doc, "startedAt"), _updated(doc, notes, "updatedAt", "lastUpdated"),
            variables, error, children, "B")


def _total_steps(doc: dict[str, Any], variables: dict[str, Any] | None, steps: list[WorkflowStep],
                 notes: _Notes) -> int:
    total = notes.count(doc, "totalSteps")
    if total is None and variables:
        total = notes.count(variables, "_TOTAL_STEPS", label="variables._TOTAL_STEPS")
    if total is None:
        total = len(steps)
    return total


def _steps(doc: dict[str, Any], notes: _Notes) -> list[WorkflowStep]:
    raw = doc.get("steps")
    if raw is None:
        return []
    if not isinstance(raw, list):
        notes.add('"steps" should be an array, not %s; ignored' % _type_name(raw))
        return []
    steps: list[WorkflowStep] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            notes.add('"steps[%d]" should be an object, not %s; ignored' % (index, _type_name(item)))
            continue
        # Fast path for the usual step: every field a string (or absent) and a canonical status.
        step_id = item.get("id")
        raw_status = item.get("status")
        started = item.get("startedAt")
        completed = item.get("completedAt")
        if (type(step_id) is str and (started is None or type(started) is str)
                and (completed is None or type(completed) is str)):
            # Only a string is looked up: a list or object there is unhashable (it takes the slow path below).
            status = "pending" if raw_status is None else \
                STATUS_ALIASES.get(raw_status) if type(raw_status) is str else None
            if status is not None:
                error = item.get("error")
                steps.append({"id": step_id, "status": status, "startedAt": started, "completedAt": completed,
                              "error": None if error is None else _error_text(error)})
                continue
        label = "steps[%d]" % index
        step_id = notes.string(item, "id", label + ".id")
        if step_id is None:
            step_id = notes.string(item, "name", label + ".name")
        raw_status = notes.string(item, "status", label + ".status")
        steps.append({
            "id": step_id,
            "status": notes.status(raw_status, label + ".status") if raw_status is not None else "pending",
            "startedAt": notes.string(item, "startedAt", label + ".startedAt"),
            "completedAt": notes.string(item, "completedAt", label + ".completedAt"),
            "error": _error_text(item.get("error")),
        })
    return steps


def _children(doc: dict[str, Any], notes: _Notes) -> list[ChildWorkflow]:
    raw = doc.get("childWorkflows")
    if raw is None:
        return []
    if not isinstance(raw, list):
        notes.add('"childWorkflows" should be an array, not %s; ignored' % _type_name(raw))
        return []
    children: list[ChildWorkflow] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            notes.add('"childWorkflows[%d]" should be an object, not %s; ignored' % (index, _type_name(item)))
            continue
        label = "childWorkflows[%d]" % index
        path = notes.string(item, "workflowPath", label + ".workflowPath")
        state_file = notes.string(item, "stateFile", label + ".stateFile")
        raw_status = notes.string(item, "status", label + ".status")
        children.append({
            "name": _child_name(state_file, path),
            "workflowPath": path,
            "stateFile": state_file,
            "status": notes.status(raw_status, label + ".status") if raw_status is not None else "pending",
            "startedAt": notes.string(item, "startedAt", label + ".startedAt"),
        })
    return children


def _child_name(state_file: str | None, workflow_path: str | None) -> str | None:
    if state_file:
        name = workflow_name(os.path.basename(state_file.replace("\\", "/")))
        if name:
            return name
    if workflow_path:
        parts = [p for p in workflow_path.replace("\\", "/").split("/") if p]
        if len(parts) >= 2 and parts[-1].startswith("workflow."):
            return parts[-2]
        if parts:
            return parts[-1].rsplit(".", 1)[0]
    return None


def _updated(doc: dict[str, Any], notes: _Notes, key: str, alias: str) -> str | None:
    value = notes.string(doc, key)
    return value if value is not None else notes.string(doc, alias)


def _current_step_name(status: str, current: int, steps: list[WorkflowStep]) -> str | None:
    if status == "completed" or not steps:
        return None
    if 1 <= current <= len(steps):
        return steps[current - 1]["id"]
    return None


def _error_text(value: object) -> str | None:
    if value is None or value is False or value == "":
        return None
    if isinstance(value, str):
        return value
    message = value.get("message") if isinstance(value, dict) else None
    if isinstance(message, str):
        return message
    return _json_or_repr(value, sort_keys=True)[:MAX_ERROR_CHARS]


def _json_or_repr(value: object, sort_keys: bool = False) -> str:
    # A document built in-process (not read: reading refuses them) may still hold NaN/inf: show it as text.
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=sort_keys, allow_nan=False)
    except ValueError:
        return repr(value)


def _type_name(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _shown(value: object) -> str:
    text = _json_or_repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS - 1] + "…"


class _Notes:
    """Typed field access that records a warning (prefixed with the source) for every bad field."""

    __slots__ = ("source", "messages")

    def __init__(self, source: str) -> None:
        self.source = source
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append("%s: %s" % (self.source, message) if self.source else message)

    def string(self, obj: dict[str, Any], key: str, label: str | None = None) -> str | None:
        value: object = obj.get(key)
        if value is None or isinstance(value, str):
            return value
        self.add('"%s" should be a string, not %s; ignored' % (label or key, _shown(value)))
        return None

    def count(self, obj: dict[str, Any], key: str, label: str | None = None) -> int | None:
        """A non-negative whole number, or None when absent or unusable."""
        value: object = obj.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        self.add('"%s" should be a non-negative integer, not %s; ignored' % (label or key, _shown(value)))
        return None

    def mapping(self, obj: dict[str, Any], key: str) -> dict[str, Any]:
        value: object = obj.get(key)
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        self.add('"%s" should be an object, not %s; ignored' % (key, _type_name(value)))
        return {}

    def status(self, raw: str, label: str) -> str:
        key = raw.strip().lower().replace("-", "_").replace(" ", "_")
        status = STATUS_ALIASES.get(key)
        if status is not None:
            return status
        self.add('unknown %s "%s" (expected one of %s); kept as given'
                 % (label, raw, ", ".join(WORKFLOW_STATUSES)))
        return raw


def list_state_files(directory: str) -> list[str]:
    """Paths of the `.<name>.state.json` entries of `directory`, sorted by name (may raise OSError)."""
    with os.scandir(directory) as entries:
        names = [entry.name for entry in entries if STATE_FILE_RE.match(entry.name)]
    names.sort()
    return [os.path.join(directory, name) for name in names]
