"""Workflow state files: both schemas, every normalisation rule of README, "`data` of each kind", and every bad file."""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from madace_status.project.files import MAX_STATE_FILE_BYTES
from madace_status.project.workflows import (list_state_files, normalise_workflow, parse_workflow_bytes,
                                             read_workflow_file, workflow_name)


def normalise(document, name="wf"):
    return normalise_workflow(document, name, "x/.%s.state.json" % name)


# --- schema A ---------------------------------------------------------------------------------------

def test_schema_a_is_read_with_one_based_current_step_and_progress_from_completed_steps():
    w = normalise({"workflow": "pm-planning", "currentStep": 3, "totalSteps": 5, "status": "in_progress",
                   "startedAt": "2025-10-29T10:00:00.000Z", "lastUpdated": "2025-10-29T10:30:00.000Z",
                   "steps": [{"id": "a", "status": "completed"}, {"id": "b", "status": "completed"},
                             {"id": "c", "status": "in_progress"}, {"id": "d", "status": "pending"},
                             {"id": "e", "status": "pending"}],
                   "context": {"projectName": "Test"}}, "pm-planning")
    assert (w.schema, w.status, w.current_step, w.total_steps, w.completed_steps, w.progress) == \
        ("A", "in_progress", 3, 5, 2, 40)
    assert w.current_step_name == "c"
    assert w.updated_at == "2025-10-29T10:30:00.000Z"
    assert w.context == {"projectName": "Test"}
    assert w.warnings == []


def test_schema_a_failed_step_error_becomes_the_workflow_error():
    w = normalise({"workflow": "x", "currentStep": 2, "totalSteps": 3, "status": "failed",
                   "steps": [{"id": "a", "status": "completed"},
                             {"id": "b", "status": "failed", "error": "LLM API timeout"},
                             {"id": "c", "status": "pending"}]})
    assert (w.status, w.error, w.current_step_name, w.progress) == ("failed", "LLM API timeout", "b", 33)


def test_the_workflow_name_comes_from_the_file_name():
    assert workflow_name(".pm-planning.state.json") == "pm-planning"
    assert workflow_name("pm-planning.state.json") is None
    assert workflow_name(".pm-planning.json") is None
    assert workflow_name("..state.json") is None


@pytest.mark.parametrize("alias,expected", [("running", "in_progress"), ("done", "completed"),
                                            ("success", "completed"), ("error", "failed"),
                                            ("In Progress", "in_progress"), ("COMPLETED", "completed")])
def test_status_aliases_are_normalised(alias, expected):
    assert normalise({"workflow": "x", "status": alias, "totalSteps": 2, "currentStep": 1}).status == expected


def test_unknown_status_is_kept_as_given_and_flagged():
    w = normalise({"workflow": "x", "status": "paused", "totalSteps": 4, "currentStep": 2})
    assert w.status == "paused"
    assert len(w.warnings) == 1 and '"paused"' in w.warnings[0] and w.warnings[0].startswith("x/.wf.state.json: ")
    assert w.progress == 25


def test_unknown_step_status_is_flagged_too():
    w = normalise({"workflow": "x", "status": "in_progress", "steps": [{"id": "a", "status": "skipped"}]})
    assert w.steps[0]["status"] == "skipped"
    assert any("steps[0].status" in m for m in w.warnings)


def test_completed_workflow_is_100_percent_even_without_steps():
    w = normalise({"workflow": "x", "status": "completed"})
    assert (w.progress, w.total_steps, w.current_step_name) == (100, 0, None)


def test_zero_total_steps_gives_zero_progress_not_nan():
    w = normalise({"workflow": "x", "status": "in_progress", "currentStep": 1, "totalSteps": 0})
    assert w.progress == 0 and isinstance(w.progress, int)


def test_progress_rounds_half_up():
    w = normalise({"workflow": "x", "status": "in_progress", "totalSteps": 8, "currentStep": 2,
                   "steps": [{"id": "a", "status": "completed"}] + [{"id": str(i)} for i in range(7)]})
    assert w.progress == 13            # 12.5 → 13, not banker's 12


def test_total_steps_falls_back_to_the_length_of_steps():
    w = normalise({"workflow": "x", "status": "in_progress",
                   "steps": [{"id": "a", "status": "completed"}, {"id": "b", "status": "in_progress"}]})
    assert (w.total_steps, w.current_step, w.current_step_name, w.progress) == (2, 2, "b", 50)


def test_current_step_name_is_null_not_unknown_when_there_is_no_step_list():
    w = normalise({"workflow": "x", "status": "in_progress", "currentStep": 2, "totalSteps": 4})
    assert w.current_step_name is None
    assert w.to_dict()["currentStepName"] is None


def test_to_dict_has_exactly_the_spec_keys():
    w = normalise({"workflow": "x", "status": "pending"})
    assert list(w.to_dict()) == ["name", "status", "currentStep", "totalSteps", "completedSteps", "progress",
                                 "currentStepName", "startedAt", "updatedAt", "steps", "context", "error",
                                 "children", "source", "schema"]


# --- schema B ---------------------------------------------------------------------------------------

def test_schema_b_current_step_is_zero_based_and_total_comes_from_variables():
    w = normalise({"workflowName": "dev", "currentStep": 2, "completed": False,
                   "variables": {"project_name": "Acme", "_TOTAL_STEPS": 6},
                   "startedAt": "s", "updatedAt": "u",
                   "childWorkflows": [{"workflowPath": "a/code-review/workflow.yaml",
                                       "stateFile": ".code-review.state.json", "status": "running"}]})
    assert (w.schema, w.status, w.current_step, w.total_steps, w.completed_steps, w.progress) == \
        ("B", "in_progress", 3, 6, 2, 33)
    assert w.context["project_name"] == "Acme"
    assert w.children[0]["name"] == "code-review" and w.children[0]["status"] == "in_progress"
    assert (w.started_at, w.updated_at) == ("s", "u")


def test_schema_b_completed_flag_means_completed():
    w = normalise({"workflowName": "x", "currentStep": 3, "completed": True, "variables": {"_TOTAL_STEPS": 3}})
    assert (w.status, w.progress, w.current_step) == ("completed", 100, 3)


def test_schema_b_error_field_means_failed():
    w = normalise({"workflowName": "x", "currentStep": 1, "completed": False, "error": "boom",
                   "variables": {"_TOTAL_STEPS": 3}})
    assert (w.status, w.error) == ("failed", "boom")


def test_schema_b_child_in_error_means_failed():
    w = normalise({"workflowName": "x", "currentStep": 1, "completed": False,
                   "childWorkflows": [{"stateFile": ".child.state.json", "status": "error"}]})
    assert w.status == "failed" and "child" in w.error


def test_schema_b_step_zero_is_pending():
    w = normalise({"workflowName": "x", "currentStep": 0, "completed": False, "variables": {"_TOTAL_STEPS": 3}})
    assert (w.status, w.current_step, w.total_steps, w.progress) == ("pending", 0, 3, 0)


def test_schema_b_total_steps_prefers_the_field_then_variables_then_steps_then_zero():
    base = {"workflowName": "x", "currentStep": 1, "completed": False}
    assert normalise(dict(base, totalSteps=4, variables={"_TOTAL_STEPS": 9})).total_steps == 4
    assert normalise(dict(base, variables={"_TOTAL_STEPS": 9})).total_steps == 9
    assert normalise(dict(base, steps=[{"id": "a"}, {"id": "b"}])).total_steps == 2
    zero = normalise(dict(base))
    assert (zero.total_steps, zero.progress) == (0, 0)


# --- wrong field types ------------------------------------------------------------------------------

def test_current_step_of_the_wrong_type_is_ignored_with_a_warning():
    w = normalise({"workflow": "x", "status": "in_progress", "currentStep": "three", "totalSteps": 5})
    assert w.status == "in_progress" and isinstance(w.current_step, int)
    assert any('"currentStep" should be a non-negative integer, not "three"' in m for m in w.warnings)


def test_steps_as_an_object_is_ignored_with_a_warning():
    w = normalise({"workflow": "x", "status": "in_progress", "steps": {}, "totalSteps": 2, "currentStep": 1})
    assert w.steps == [] and w.total_steps == 2
    assert any('"steps" should be an array, not an object' in m for m in w.warnings)


@pytest.mark.parametrize("field,value", [("totalSteps", True), ("totalSteps", -1), ("totalSteps", 2.5),
                                         ("status", 7), ("context", []), ("startedAt", 5),
                                         ("childWorkflows", "x"), ("variables", [1])])
def test_other_wrong_field_types_never_break_the_record(field, value):
    w = normalise({"workflow": "x", "status": "in_progress", field: value})
    assert 0 <= w.progress <= 100
    assert w.warnings
    json.dumps(w.to_dict())


# --- files that cannot be used -------------------------------------------------------------------------

def read(path, root):
    return read_workflow_file(str(path), str(root))


def test_invalid_json_is_kept_with_status_invalid_and_the_reason(project):
    path = project.state("broken", '{"workflow": "broken", ')
    w = read(path, project.root)
    assert (w.name, w.status, w.progress) == ("broken", "invalid", 0)
    assert w.error.startswith("invalid JSON: ") and "line 1" in w.error
    assert w.source == "madace-data/workflow-states/.broken.state.json"


@pytest.mark.parametrize("content,reason", [("[1, 2]", "expected a JSON object, found an array"),
                                            ('"text"', "expected a JSON object, found a string"),
                                            ("null", "expected a JSON object, found null"),
                                            ("", "empty file"), ("  \n", "empty file")])
def test_a_file_that_is_not_an_object_is_invalid(project, content, reason):
    assert read(project.state("x", content), project.root).error == reason


def test_binary_garbage_is_invalid(project):
    w = read(project.state("bin", bytes(range(256)) * 4), project.root)
    assert w.status == "invalid" and "UTF-8" in w.error


def test_a_file_over_one_mebibyte_is_invalid_without_being_parsed(project):
    big = '{"workflow": "big", "pad": "%s"}' % ("x" * MAX_STATE_FILE_BYTES)
    w = read(project.state("big", big), project.root)
    assert w.status == "invalid" and w.error.startswith("file too large") and "1 MiB" in w.error


def test_a_utf8_bom_is_accepted(project):
    w = read(project.state("bom", b"\xef\xbb\xbf" + json.dumps({"workflow": "bom", "status": "pending"}).encode()),
             project.root)
    assert w.status == "pending"


def test_a_directory_named_like_a_state_file_is_invalid(project):
    os.makedirs(os.path.join(project.states, ".dir.state.json"))
    w = read(os.path.join(project.states, ".dir.state.json"), project.root)
    assert (w.name, w.status, w.error) == ("dir", "invalid", "is a directory, not a file")


def test_a_symlink_leaving_the_root_is_invalid_and_not_read(project, tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps({"workflow": "secret", "status": "completed"}))
    os.makedirs(project.states, exist_ok=True)
    link = os.path.join(project.states, ".escape.state.json")
    os.symlink(str(outside), link)
    w = read(link, project.root)
    assert w.status == "invalid" and "symlink points outside the project root" in w.error


def test_a_symlink_inside_the_root_is_followed(project):
    target = project.state("real", {"workflow": "real", "status": "completed"})
    link = os.path.join(project.states, ".alias.state.json")
    os.symlink(target, link)
    assert read(link, project.root).status == "completed"


def test_a_broken_symlink_is_reported_as_unreadable(project):
    os.makedirs(project.states, exist_ok=True)
    link = os.path.join(project.states, ".gone.state.json")
    os.symlink(os.path.join(project.states, "missing-target"), link)
    w = read(link, project.root)
    assert w.status == "invalid" and w.error.startswith("cannot read: broken symlink")


def test_a_fifo_named_like_a_state_file_is_not_opened(project):
    # Opening a FIFO for reading would block until a writer comes; the reader must refuse it first.
    os.makedirs(project.states, exist_ok=True)
    fifo = os.path.join(project.states, ".pipe.state.json")
    os.mkfifo(fifo)
    w = read(fifo, project.root)
    assert (w.status, w.error) == ("invalid", "not a regular file")


def test_an_unreadable_file_is_invalid_with_the_os_reason(project, monkeypatch):
    # The tests run as root, so chmod 000 would not stop the read: make open() fail instead.
    path = project.state("locked", {"workflow": "locked", "status": "pending"})
    real_open = os.open

    def refusing_open(target, *args, **kwargs):
        if os.fspath(target) == path:
            raise PermissionError(13, "Permission denied")
        return real_open(target, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    w = read(path, project.root)
    assert (w.status, w.error) == ("invalid", "cannot read: Permission denied")


def test_deeply_nested_json_is_invalid_not_a_crash():
    w = parse_workflow_bytes(b"[" * 100000 + b"]" * 100000, "deep")
    assert w.status == "invalid" and w.error.startswith("invalid JSON")


def test_only_dot_name_state_json_files_are_listed(project):
    project.state("b", {"workflow": "b"})
    project.state("a", {"workflow": "a"})
    with open(os.path.join(project.states, "notes.txt"), "w") as handle:
        handle.write("x")
    with open(os.path.join(project.states, "c.state.json"), "w") as handle:
        handle.write("{}")
    names = [os.path.basename(p) for p in list_state_files(project.states)]
    assert names == [".a.state.json", ".b.state.json"]


scalars = st.none() | st.booleans() | st.integers(-3, 10) | st.floats(allow_nan=True) | st.text(max_size=12)
json_values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=6), scalars, max_size=3)
field_names = st.sampled_from(["workflow", "workflowName", "status", "currentStep", "totalSteps", "steps",
                               "completed", "variables", "childWorkflows", "error", "context", "startedAt",
                               "lastUpdated", "updatedAt"])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(field_names, json_values | st.lists(st.dictionaries(
    st.sampled_from(["id", "status", "error", "name", "stateFile", "workflowPath"]), json_values), max_size=4)))
def test_any_json_object_gives_a_record_with_integer_progress_between_0_and_100(document):
    w = normalise_workflow(document, "fuzz")
    assert isinstance(w.progress, int) and 0 <= w.progress <= 100
    assert isinstance(w.total_steps, int) and isinstance(w.current_step, int)
    assert w.current_step_name is None or isinstance(w.current_step_name, str)
    json.dumps(w.to_dict(), allow_nan=True)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_record_and_never_raise(data):
    w = parse_workflow_bytes(data, "fuzz")
    assert w.status == "invalid" or w.schema in ("A", "B")
