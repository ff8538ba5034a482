"""Exit codes and bad input: a clear message, no traceback, and every other entity still shown."""

import json
import os
import subprocess
import sys

import pytest

from status_cli_helpers import REPO_ROOT, SAMPLE_PROJECT, clean_env, run_status


def write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content.encode("utf-8") if isinstance(content, str) else content)


@pytest.fixture
def messy_root(tmp_path):
    """A project with one of every kind of bad input beside good entities."""
    root = str(tmp_path / "messy")
    states = os.path.join(root, "madace-data", "workflow-states")
    write(os.path.join(states, ".good.state.json"),
          json.dumps({"workflow": "good", "status": "in_progress", "currentStep": 2, "totalSteps": 4,
                      "steps": [{"id": "a", "status": "completed"}, {"id": "b", "status": "in_progress"},
                                {"id": "c"}, {"id": "d"}]}))
    write(os.path.join(states, ".badjson.state.json"), '{"workflow": ')
    write(os.path.join(states, ".notobject.state.json"), "[1, 2, 3]")
    write(os.path.join(states, ".empty.state.json"), "")
    write(os.path.join(states, ".huge.state.json"), "{" + " " * (1024 * 1024) + "}")
    write(os.path.join(states, ".garbage.state.json"), bytes(range(256)))
    write(os.path.join(states, ".types.state.json"),
          json.dumps({"workflow": "types", "status": "in_progress", "currentStep": "three", "steps": {}}))
    write(os.path.join(states, ".paused.state.json"), json.dumps({"workflow": "paused", "status": "paused"}))
    os.makedirs(os.path.join(states, ".folder.state.json"))
    outside = str(tmp_path / "outside.json")
    write(outside, json.dumps({"workflow": "outside", "status": "completed"}))
    os.symlink(outside, os.path.join(states, ".escape.state.json"))
    # Unreadable: the tests run as root, for whom chmod 000 changes nothing; a broken symlink inside the
    # root cannot be opened by anyone, and a FIFO must be refused without being opened (it would block).
    os.symlink(os.path.join(states, "no-such-target"), os.path.join(states, ".dangling.state.json"))
    os.mkfifo(os.path.join(states, ".fifo.state.json"))
    write(os.path.join(root, "docs", "workflow-status.md"),
          b"\xef\xbb\xbf# Status\r\n\r\n## \xf0\x9f\x94\x84 IN PROGRESS\r\n- [ ] **[US-3]** third \xff bytes | 2 points\r\n"
          b"## TODO\r\n- [US-1] one\r\n- [US-2] two\r\n## DONE \xe2\x9c\x85\r\n- [US-4] four\r\n- [us-4] again\r\n")
    epics = os.path.join(root, "docs", "v3-planning", "epics")
    write(os.path.join(epics, "EPIC-OK.md"), "# EPIC-OK: Fine\n**Status:** 📋 Planning\n")
    write(os.path.join(epics, "notes.txt"), "not an epic")
    return root


EXPECTED_ERRORS = {
    "badjson": "invalid JSON: ", "notobject": "expected a JSON object, found an array", "empty": "empty file",
    "huge": "file too large", "garbage": "not UTF-8 text", "folder": "is a directory, not a file",
    "escape": "symlink points outside the project root", "dangling": "cannot read: broken symlink",
    "fifo": "not a regular file"}


def assert_clean(result, code=0):
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_messy_project_json_keeps_every_entity_and_says_why_each_file_failed(messy_root):
    result = run_status("--root", messy_root, "-f", "json")
    assert_clean(result)
    document = json.loads(result.stdout)
    flows = {w["name"]: w for w in document["data"]["workflows"]}
    assert set(flows) == set(EXPECTED_ERRORS) | {"good", "types", "paused"}
    for name, reason in EXPECTED_ERRORS.items():
        assert flows[name]["status"] == "invalid" and reason in flows[name]["error"], name
        assert any(m.startswith("madace-data/workflow-states/.%s.state.json: " % name) and reason in m
                   for m in document["errors"]), name
    assert (flows["good"]["status"], flows["good"]["progress"]) == ("in_progress", 25)
    assert flows["types"]["status"] == "in_progress" and flows["paused"]["status"] == "paused"
    warnings = "\n".join(document["warnings"])
    assert '"currentStep" should be a non-negative integer, not "three"' in warnings
    assert '"steps" should be an array, not an object' in warnings
    assert 'unknown status "paused"' in warnings
    assert "not valid UTF-8" in warnings
    assert "duplicate story id US-4" in warnings
    assert "WIP limit exceeded: TODO holds 2 stories (limit 1): US-1, US-2" in warnings
    assert "notes.txt: not an epic file" in warnings
    states = document["data"]["states"]
    assert {s: r["count"] for s, r in states.items()} == {"BACKLOG": 0, "TODO": 2, "IN_PROGRESS": 1, "DONE": 1}
    assert states["TODO"]["violated"] and document["data"]["violations"][0]["storyIds"] == ["US-1", "US-2"]
    assert document["data"]["epicCount"] == 1


def test_messy_project_table_shows_violation_errors_and_good_entities(messy_root):
    result = run_status("--root", messy_root)
    assert_clean(result)
    out = result.stdout
    assert "│ TODO ⚠" in out and "│ IN PROGRESS " in out
    assert "⚠ WIP limit exceeded: TODO holds 2 stories" in out
    assert "│ good " in out and "[█████░░░░░░░░░░░░░░░] 25%" in out
    assert "Errors (9)" in out
    for reason in EXPECTED_ERRORS.values():
        assert reason in out, reason


def test_messy_project_markdown_shows_the_same(messy_root):
    result = run_status("--root", messy_root, "-f", "markdown")
    assert_clean(result)
    assert "| TODO ⚠ | 2 |" in result.stdout and "## Errors (9)" in result.stdout
    assert "> ⚠ **WIP limit exceeded: TODO holds 2 stories (limit 1): US-1, US-2**" in result.stdout


@pytest.mark.parametrize("entity", ["stories", "epics", "workflows", "US-3", "EPIC-OK", "good", "badjson", "types"])
@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_every_entity_of_the_messy_project_still_renders(messy_root, entity, fmt):
    assert_clean(run_status(entity, "--root", messy_root, "-f", fmt))


def test_the_story_with_emoji_heading_bom_crlf_and_bad_bytes_is_read(messy_root):
    data = json.loads(run_status("US-3", "--root", messy_root, "-f", "json").stdout)["data"]
    assert (data["status"], data["points"], data["title"]) == ("IN_PROGRESS", 2, "third \ufffd bytes")


def test_a_story_in_a_violated_state_carries_the_violation(messy_root):
    result = run_status("US-1", "--root", messy_root)
    assert_clean(result)
    assert "TODO ⚠" in result.stdout and "WIP limit exceeded" in result.stdout
    document = json.loads(run_status("US-1", "--root", messy_root, "-f", "json").stdout)
    assert any("WIP limit exceeded" in m for m in document["warnings"])


def test_an_invalid_workflow_shown_alone_names_its_error(messy_root):
    result = run_status("badjson", "--root", messy_root)
    assert_clean(result)
    assert "invalid" in result.stdout and "invalid JSON" in result.stdout


def test_every_source_missing_is_an_empty_summary_with_warnings(tmp_path):
    result = run_status("--root", str(tmp_path), "-f", "json")
    assert_clean(result)
    document = json.loads(result.stdout)
    assert document["data"]["total"] == {"count": 0, "points": 0} and document["errors"] == []
    assert len(document["warnings"]) == 3
    table = run_status("--root", str(tmp_path))
    assert_clean(table)
    assert "No workflows." in table.stdout and "no story status file" in table.stdout


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_not_found_exits_1_with_suggestions_on_stderr(sample_root, fmt):
    result = run_status("STORY-V3-099", "--root", sample_root, "-f", fmt)
    assert_clean(result, 1)
    assert result.stdout == ""
    assert result.stderr.startswith("madace-status: story STORY-V3-099 not found; did you mean STORY-V3-0")


def test_not_found_workflow_suggests_close_names(sample_root):
    result = run_status("planning", "--root", sample_root)
    assert_clean(result, 1)
    assert "did you mean pm-planning?" in result.stderr


def test_not_found_epic(sample_root):
    result = run_status("EPIC-V3-003", "--root", sample_root)
    assert_clean(result, 1)
    assert "epic EPIC-V3-003 not found; did you mean EPIC-V3-00" in result.stderr


@pytest.mark.parametrize("entity", ["Foo Bar", "../etc/passwd", "../", "a/../b", "x" * 10240, "\x1b[2J",
                                    "tab\there", "story:../../x", "workflow:../x", "PM-Planning", "?"])
def test_unrecognised_entities_exit_2_listing_the_patterns(sample_root, entity):
    result = run_status(entity, "--root", sample_root)
    assert_clean(result, 2)
    assert result.stdout == ""
    assert "accepted ENTITY values:" in result.stderr and "STORY-V3-020" in result.stderr
    assert "\x1b" not in result.stderr and len(result.stderr) < 2000


def test_the_empty_entity_is_the_summary(sample_root):
    result = run_status("", "--root", sample_root, "-f", "json")
    assert_clean(result)
    assert json.loads(result.stdout)["entityType"] == "summary"


def test_a_missing_root_exits_3(tmp_path):
    result = run_status("--root", str(tmp_path / "nope"))
    assert_clean(result, 3)
    assert result.stdout == ""
    assert result.stderr == "madace-status: cannot read the project: the project root %s does not exist\n" % (
        tmp_path / "nope")


def test_a_root_that_is_a_file_exits_3(tmp_path):
    (tmp_path / "file").write_text("x")
    result = run_status("--root", str(tmp_path / "file"), "-f", "json")
    assert_clean(result, 3)
    assert "is not a directory" in result.stderr


def test_an_unknown_format_is_a_usage_error(sample_root):
    result = run_status("--root", sample_root, "-f", "xml")
    assert_clean(result, 2)
    assert "invalid choice: 'xml'" in result.stderr


@pytest.mark.parametrize("options, named", [
    (["--token", "secret"], "--token only applies with --watch"),
    (["-i", "3"], "--interval only applies with --watch"),
    (["--server", "ws://127.0.0.1:1", "--watcher", "poll"], "--server and --watcher only apply with --watch"),
])
def test_an_option_of_the_live_view_without_watch_is_a_usage_error_not_ignored(options, named):
    result = run_status(*options, "--root", SAMPLE_PROJECT)
    assert result.returncode == 2, result
    assert result.stderr == "madace-status: %s\n" % named and result.stdout == ""


def test_the_live_views_variables_without_watch_are_not_an_error():
    # Variables may be set for every run (a shell profile): only the command line is checked.
    env = clean_env(MADACE_STATUS_TOKEN="secret", MADACE_STATUS_INTERVAL="3", MADACE_STATUS_WATCHER="poll")
    result = run_status("--root", SAMPLE_PROJECT, env=env)
    assert result.returncode == 0 and "Stories" in result.stdout, result


@pytest.mark.parametrize("arguments, code, message", [
    (["--root", "/nonexistent/madace"], 3,
     "madace-status: cannot read the project: the project root /nonexistent/madace does not exist\n"),
    (["STORY-404", "--root", SAMPLE_PROJECT], 1, "madace-status: story STORY-404 not found; did you mean "),
])
def test_watch_checks_the_root_and_the_entity_before_it_starts_like_one_shot_status(arguments, code, message):
    one_shot = run_status(*arguments)
    # No server on the default port in the tests: were the watch to start, it would poll until the timeout.
    watch = run_status("--watch", *arguments, timeout=20)
    assert one_shot.returncode == watch.returncode == code, (one_shot, watch)
    assert watch.stderr.startswith(message) and watch.stderr == one_shot.stderr and watch.stdout == "", watch


def test_watch_of_a_server_named_with_server_leaves_the_entity_to_the_servers_project():
    # Its project may hold what --root's does not: the view starts (and, with no server there, polls).
    process = subprocess.Popen([sys.executable, "-m", "madace_status", "status", "--watch", "STORY-404", "--root",
                                SAMPLE_PROJECT, "--server", "ws://127.0.0.1:9", "-f", "json"], cwd=REPO_ROOT,
                               env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = json.loads(process.stdout.readline())  # the first frame: drawn, not an exit
        assert first["errors"][0].startswith("story STORY-404 not found")
    finally:
        process.kill()
        process.wait(10)
        process.stdout.close()
        process.stderr.close()
