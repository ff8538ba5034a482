"""Issue 10 §5/§6 against a real `status`: a multi-megabyte line built to make a regex backtrack, and a state
file holding NaN, neither stalls nor corrupts the output."""
import json
import os
import shutil

from status_cli_helpers import run_status

from madace_status.project.files import MAX_LINE_CHARS

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "sample-project")
HOSTILE_LINE_CHARS = 3 * 1024 * 1024   # under the 4 MiB file cap, far over the line cap
QUICK_S = 60                           # the run is ~1 s; before the fix it would have taken days


def _copy(tmp_path):
    root = str(tmp_path / "project")
    shutil.copytree(SAMPLE, root)
    return root


def _strict(text):
    def refuse(name):
        raise AssertionError("non-standard JSON constant %s in output" % name)
    return json.loads(text, parse_constant=refuse)


def test_status_skips_megabyte_lines_with_a_warning_and_reads_the_rest(tmp_path):
    root = _copy(tmp_path)
    with open(os.path.join(root, "docs", "v3-planning", "epics", "EPIC-V3-099-hostile.md"), "w",
              encoding="utf-8") as handle:
        handle.write("# EPIC-V3-099: Hostile\n\n**Owner:** a" + "-" * HOSTILE_LINE_CHARS + "b\n**Priority:** P1\n")
    with open(os.path.join(root, "docs", "workflow-status.md"), "a", encoding="utf-8") as handle:
        handle.write("\n## TODO\n- [ ] **[STORY-999]** x" + " " * HOSTILE_LINE_CHARS + "y - **Done**\n"
                     "- [ ] **[STORY-998]** " + "z" * (MAX_LINE_CHARS - 40) + " - **Done**\n")
    epic = run_status("--root", root, "--format", "json", "EPIC-V3-099", timeout=QUICK_S)
    document = _strict(epic.stdout)
    assert epic.returncode == 0, epic
    assert document["data"]["owner"] is None and document["data"]["priority"] == "P1"
    assert any("line 3 is longer than 4,096 characters and was skipped" in w for w in document["warnings"])
    story = run_status("--root", root, "--format", "json", "STORY-999", timeout=QUICK_S)
    assert story.returncode == 1, story  # its line was skipped: not found, and not a crash
    kept = _strict(run_status("--root", root, "--format", "json", "STORY-998", timeout=QUICK_S).stdout)
    assert kept["data"]["title"].startswith("zzz")  # a long line under the cap is still a story
    summary = _strict(run_status("--root", root, "--format", "json", timeout=QUICK_S).stdout)
    assert any("workflow-status.md" in w and "longer than 4,096 characters" in w for w in summary["warnings"])


def test_state_file_with_nan_is_invalid_and_output_is_strict_json(tmp_path):
    root = _copy(tmp_path)
    state_dir = os.path.join(root, "madace-data", "workflow-states")
    with open(os.path.join(state_dir, ".hostile.state.json"), "w", encoding="utf-8") as handle:
        handle.write('{"workflow": "hostile", "status": "failed", "progress": NaN, "eta": Infinity}')
    result = run_status("--root", root, "--format", "json", timeout=QUICK_S)
    document = _strict(result.stdout)
    text = json.dumps(document)
    assert "hostile" in text and "NaN is not a JSON number" in text, result


BIDI = "\u202e\u2066\u200f\u061c"


def test_bidi_controls_from_a_file_never_reach_the_terminal(tmp_path):
    root = _copy(tmp_path)
    with open(os.path.join(root, "docs", "workflow-status.md"), "a", encoding="utf-8") as handle:
        handle.write("\n## TODO\n- [ ] **[STORY-998]** safe%sevil\n" % BIDI)
    for fmt in ("table", "markdown", "json"):
        result = run_status("--root", root, "--format", fmt, "STORY-998", timeout=QUICK_S)
        assert result.returncode == 0, result
        assert not any(char in result.stdout for char in BIDI), (fmt, result)
        assert "safe" in result.stdout and "evil" in result.stdout
    result = run_status("--root", root, "--format", "json", "STORY-998", timeout=QUICK_S)
    assert _strict(result.stdout)["data"]["title"] == "safe%sevil" % BIDI   # escaped, not altered


def _move_and_link(root, relative, target):
    """Move `root/relative` to `target` and leave a symlink to it in its place."""
    source = os.path.join(root, relative)
    shutil.move(source, target)
    os.symlink(target, source)


def test_state_epics_and_status_dirs_symlinked_out_of_the_root_are_refused(tmp_path):
    root = _copy(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    _move_and_link(root, os.path.join("madace-data", "workflow-states"), str(outside / "states"))
    _move_and_link(root, os.path.join("docs", "v3-planning"), str(outside / "planning"))
    result = run_status("--root", root, "--format", "json", timeout=QUICK_S)
    document = _strict(result.stdout)
    errors = " ".join(document["errors"])
    assert "workflow state directory madace-data/workflow-states: symlink points outside the project root" in errors
    assert document["data"]["workflowCount"] == 0
    result = run_status("--root", root, "--format", "json", "epics", timeout=QUICK_S)
    assert "epics directory docs/v3-planning/epics: symlink points outside the project root" in result.stdout


def test_symlinked_dirs_that_stay_inside_the_root_still_work(tmp_path):
    root = _copy(tmp_path)
    baseline = _strict(run_status("--root", root, "--format", "json", timeout=QUICK_S).stdout)
    _move_and_link(root, os.path.join("madace-data", "workflow-states"), os.path.join(root, "real-states"))
    result = run_status("--root", root, "--format", "json", timeout=QUICK_S)
    document = _strict(result.stdout)
    assert document["errors"] == baseline["errors"]
    assert document["data"]["workflowCount"] == baseline["data"]["workflowCount"] > 0


def test_a_step_status_that_is_a_list_or_an_object_is_a_warning_not_a_crash(tmp_path):
    # The fast path for well-formed steps looked a step's status up in a dict: a list there raised TypeError
    # (found by the hypothesis test of normalise_workflow), a traceback instead of the project's status.
    root = _copy(tmp_path)
    state_dir = os.path.join(root, "madace-data", "workflow-states")
    with open(os.path.join(state_dir, ".hostile.state.json"), "w", encoding="utf-8") as handle:
        json.dump({"workflow": "hostile", "status": "in_progress",
                   "steps": [{"id": "a", "status": []}, {"id": "b", "status": {"x": 1}},
                             {"id": "c", "status": "done"}]}, handle)
    result = run_status("--root", root, "--format", "json", "hostile", timeout=QUICK_S)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    document = _strict(result.stdout)
    assert [step["status"] for step in document["data"]["steps"]] == ["pending", "pending", "completed"]
    assert any('"steps[0].status" should be a string, not []' in w for w in document["warnings"]), document
