"""Loading a whole project: the sample's exact figures, source discovery, and bad input isolated per file."""

import json
import os

import pytest

from madace_status.project.loader import ProjectPaths, ProjectUnreadable, load_project
from madace_status.project.model import Project


def test_sample_project_gives_the_figures_of_its_readme(sample_root):
    project = load_project(ProjectPaths(sample_root))
    summary = project.summary.to_dict()
    counts = {state: row["count"] for state, row in summary["states"].items()}
    points = {state: row["points"] for state, row in summary["states"].items()}
    assert counts == {"BACKLOG": 5, "TODO": 1, "IN_PROGRESS": 1, "DONE": 4}
    assert points == {"BACKLOG": 15, "TODO": 5, "IN_PROGRESS": 3, "DONE": 9}
    assert summary["total"] == {"count": 11, "points": 32}
    assert summary["violations"] == [] and project.warnings == [] and project.errors == []
    assert project.story("STORY-999") is None
    assert project.story("STORY-V3-020").assignee == "alex"
    flows = {w.name: (w.status, w.current_step, w.total_steps, w.progress, w.schema) for w in project.workflows}
    assert flows == {"pm-planning": ("in_progress", 3, 5, 40, "A"),
                     "route-workflow": ("completed", 4, 4, 100, "A"),
                     "architecture-review": ("failed", 2, 3, 33, "A"),
                     "dev-implementation": ("in_progress", 3, 6, 33, "B"),
                     "code-review": ("pending", 0, 3, 0, "B")}
    assert project.workflow("architecture-review").error == "LLM API timeout"
    assert [e.id for e in project.epics] == ["EPIC-MAM", "EPIC-V3-001", "EPIC-V3-002"]
    assert summary["epicCount"] == 3 and summary["workflowCount"] == 5


def test_the_project_is_a_pure_function_of_the_files(sample_root):
    assert load_project(ProjectPaths(sample_root)) == load_project(ProjectPaths(sample_root))


def test_project_to_dict_is_json_ready(sample_root):
    data = load_project(ProjectPaths(sample_root)).to_dict()
    assert set(data) == {"summary", "workflows", "stories", "epics", "warnings", "errors", "sources"}
    json.dumps(data)


def test_every_source_missing_is_warnings_not_errors(tmp_path):
    project = load_project(ProjectPaths(str(tmp_path)))
    assert (project.workflows, project.stories, project.epics, project.errors) == ([], [], [], [])
    assert project.warnings == [
        "no workflow state directory (looked for madace-data/workflow-states, .madace/workflow-states)",
        "no story status file (looked for docs/workflow-status.md, docs/mam-workflow-status.md)",
        "epics directory docs/v3-planning/epics does not exist"]
    assert project.summary.total == {"count": 0, "points": 0}


@pytest.mark.parametrize("make", ["missing", "file"])
def test_an_unreadable_root_raises_project_unreadable(tmp_path, make):
    root = tmp_path / "root"
    if make == "file":
        root.write_text("x")
    with pytest.raises(ProjectUnreadable) as caught:
        load_project(ProjectPaths(str(root)))
    assert str(root) in str(caught.value)


def test_both_default_state_dirs_are_read_and_the_first_of_a_name_wins(project):
    project.state("a", {"workflow": "a", "status": "pending"})
    project.state("b", {"workflow": "b", "status": "completed"})
    other = os.path.join(project.root, ".madace", "workflow-states")
    os.makedirs(other)
    with open(os.path.join(other, ".b.state.json"), "w") as handle:
        json.dump({"workflow": "b", "status": "failed"}, handle)
    with open(os.path.join(other, ".c.state.json"), "w") as handle:
        json.dump({"workflow": "c", "status": "in_progress"}, handle)
    loaded = load_project(ProjectPaths(project.root))
    assert [(w.name, w.status) for w in loaded.workflows] == [("a", "pending"), ("b", "completed"),
                                                             ("c", "in_progress")]
    assert loaded.workflow_warnings == [".madace/workflow-states/.b.state.json: workflow b is also in "
                               "madace-data/workflow-states/.b.state.json; the first is used"]


def test_the_second_default_status_file_is_used_when_the_first_is_missing(project):
    os.makedirs(os.path.join(project.root, "docs"))
    with open(os.path.join(project.root, "docs", "mam-workflow-status.md"), "w") as handle:
        handle.write("## TODO\n- [US-1] a\n")
    loaded = load_project(ProjectPaths(project.root))
    assert [s.id for s in loaded.stories] == ["US-1"]
    assert loaded.sources["statusFile"] == "docs/mam-workflow-status.md"


def test_overrides_are_relative_to_the_root(project):
    os.makedirs(os.path.join(project.root, "states"))
    with open(os.path.join(project.root, "states", ".x.state.json"), "w") as handle:
        json.dump({"workflow": "x", "status": "pending"}, handle)
    os.makedirs(os.path.join(project.root, "e"))
    with open(os.path.join(project.root, "e", "EPIC-Z.md"), "w") as handle:
        handle.write("# EPIC-Z: zed\n")
    with open(os.path.join(project.root, "s.md"), "w") as handle:
        handle.write("## DONE\n- [US-1] a\n")
    loaded = load_project(ProjectPaths(project.root, state_dirs=["states", "nope"], status_file="s.md",
                                       epics_dir="e"))
    assert [w.name for w in loaded.workflows] == ["x"]
    assert [s.id for s in loaded.stories] == ["US-1"]
    assert [e.id for e in loaded.epics] == ["EPIC-Z"]
    assert loaded.warnings == ["workflow state directory nope does not exist"]


def test_a_missing_explicit_status_file_is_a_warning(project):
    loaded = load_project(ProjectPaths(project.root, status_file="docs/none.md"))
    assert "story status file docs/none.md does not exist" in loaded.warnings


def test_every_bad_state_file_is_shown_beside_the_good_ones(project, tmp_path):
    project.state("good", {"workflow": "good", "status": "in_progress", "currentStep": 1, "totalSteps": 2})
    project.state("badjson", "{nope")
    project.state("array", "[]")
    project.state("empty", "")
    project.state("binary", b"\x00\xff\xfe\x89PNG")
    project.state("huge", b" " * (1024 * 1024 + 1))
    project.state("types", {"workflow": "types", "status": "in_progress", "currentStep": "three", "steps": {}})
    project.state("odd", {"workflow": "odd", "status": "paused"})
    os.makedirs(os.path.join(project.states, ".dir.state.json"))
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    os.symlink(str(outside), os.path.join(project.states, ".escape.state.json"))
    loaded = load_project(ProjectPaths(project.root))
    by_name = {w.name: w for w in loaded.workflows}
    assert sorted(by_name) == ["array", "badjson", "binary", "dir", "empty", "escape", "good", "huge", "odd",
                               "types"]
    assert by_name["good"].progress == 0 and by_name["good"].status == "in_progress"
    invalid = {name for name, w in by_name.items() if w.status == "invalid"}
    assert invalid == {"array", "badjson", "binary", "dir", "empty", "escape", "huge"}
    assert len(loaded.errors) == 7
    assert all(message.startswith("madace-data/workflow-states/.") for message in loaded.errors)
    assert by_name["types"].status == "in_progress" and by_name["odd"].status == "paused"
    assert len([m for m in loaded.warnings if ".types.state.json" in m]) == 2
    assert loaded.summary.workflow_status_counts["invalid"] == 7


def test_non_epic_files_are_ignored_with_a_warning(project):
    project.epic("EPIC-A.md", "# EPIC-A: a\n")
    project.epic("README.md", "# Epics\n")
    project.epic("notes.txt", "x")
    project.epic(".hidden", "x")
    loaded = load_project(ProjectPaths(project.root))
    assert [e.id for e in loaded.epics] == ["EPIC-A"]
    assert loaded.epic_warnings == [
        "docs/v3-planning/epics/README.md: not an epic file (epics are EPIC-*.md); ignored",
        "docs/v3-planning/epics/notes.txt: not an epic file (epics are EPIC-*.md); ignored"]


def test_violations_reach_the_summary_and_the_warnings(project):
    project.stories("## TODO\n- [US-1] a | 2 points\n- [US-2] b\n## IN PROGRESS\n- [US-3] c\n- [US-4] d\n")
    loaded = load_project(ProjectPaths(project.root))
    summary = loaded.summary.to_dict()
    assert summary["states"]["TODO"]["violated"] and summary["states"]["IN_PROGRESS"]["violated"]
    assert [v["state"] for v in summary["violations"]] == ["TODO", "IN_PROGRESS"]
    assert summary["violations"][0] == {"state": "TODO", "limit": 1, "storyIds": ["US-1", "US-2"], "count": 2,
                                        "message": "WIP limit exceeded: TODO holds 2 stories (limit 1): US-1, US-2"}
    assert sum("WIP limit exceeded" in m for m in loaded.warnings) == 2


def test_a_project_built_from_records_derives_its_notices():
    from madace_status.project.workflows import invalid_workflow
    project = Project("/r", [invalid_workflow("w", "s/.w.state.json", "empty file")], [], [])
    assert project.errors == ["s/.w.state.json: empty file"]
