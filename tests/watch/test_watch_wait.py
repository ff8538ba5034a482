"""Waiting in scripts (README, "Waiting in scripts"): `status --watch --exit-status`, `--until STATE` and
`--timeout` as real processes, through a real `serve` and through the local files, with real file writes."""

import json
import os

import pytest

from story_edits import move_story
from watch_helpers import STATE_DIR, WAIT_S, free_port, write_atomically



def set_workflow(root, name, **fields):
    path = os.path.join(root, STATE_DIR, ".%s.state.json" % name)
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    document.update(fields)
    write_atomically(path, json.dumps(document, indent=2))


def offline():
    """A --server nothing listens on: the view waits through the local files."""
    return "ws://127.0.0.1:%d" % free_port()


def lines_of(view):
    return [line.split(" ", 1)[1] for line in view.stdout.text.splitlines() if line]


@pytest.mark.parametrize("through", ["server", "files"])
def test_exit_status_is_0_when_the_workflow_completes_with_one_line_per_state_change(project, start_server, watch,
                                                                                    through):
    server_url = "ws://127.0.0.1:%d" % start_server(project).ws_port if through == "server" else offline()
    view = watch("pm-planning", "--exit-status", "--root", project, "--server", server_url, "--interval", "0.2")
    view.stdout.wait_for(lambda text: "pm-planning in_progress step 3/5" in text)
    set_workflow(project, "pm-planning", currentStep=4)
    view.stdout.wait_for(lambda text: "step 4/5" in text)
    set_workflow(project, "pm-planning", currentStep=5, status="completed")
    assert view.wait(WAIT_S) == 0
    assert lines_of(view) == ["pm-planning in_progress step 3/5 40%", "pm-planning in_progress step 4/5 40%",
                              "pm-planning completed step 5/5 100%"]
    assert view.stderr.text == ""  # the exit code says it all


@pytest.mark.parametrize("through", ["server", "files"])
def test_exit_status_is_1_when_the_workflow_fails_and_until_completed_too(project, start_server, watch, through):
    server_url = "ws://127.0.0.1:%d" % start_server(project).ws_port if through == "server" else offline()
    waiting = [watch("pm-planning", "--exit-status", "--root", project, "--server", server_url),
               watch("pm-planning", "--until", "completed", "--root", project, "--server", server_url)]
    for view in waiting:
        view.stdout.wait_for(lambda text: "pm-planning in_progress" in text)
    set_workflow(project, "pm-planning", status="failed", error="LLM quota exhausted")
    for view in waiting:
        assert view.wait(WAIT_S) == 1
        assert lines_of(view)[-1] == "pm-planning failed step 3/5 40%: LLM quota exhausted"


def test_until_a_story_state_ends_when_the_story_gets_there(project, start_server, watch):
    server = start_server(project)
    view = watch("STORY-V3-020", "--until", "done", "--root", project, "--server", "ws://127.0.0.1:%d" % server.ws_port)
    view.stdout.wait_for(lambda text: "STORY-V3-020 IN PROGRESS" in text)
    move_story(project, "STORY-V3-020")
    assert view.wait(WAIT_S) == 0
    assert lines_of(view) == ["STORY-V3-020 IN PROGRESS", "STORY-V3-020 DONE"]


def test_the_whole_project_exits_once_every_workflow_finished_1_when_one_failed(project, watch):
    view = watch("--exit-status", "--root", project, "--server", offline(), "--interval", "0.2")
    view.stdout.wait_for(lambda text: "workflows:" in text)
    set_workflow(project, "pm-planning", status="completed")  # schema A
    view.stdout.wait_for(lambda text: "2 completed" in text)
    assert view.process.poll() is None  # two workflows still run: the wait goes on
    for name in ("code-review", "dev-implementation"):  # schema B
        set_workflow(project, name, completed=True)
    assert view.wait(WAIT_S) == 1  # architecture-review failed in the sample
    assert lines_of(view)[-1].startswith("workflows: 4 completed, 1 failed; stories: BACKLOG 5")


def test_timeout_exits_124_naming_what_it_waited_for(project, watch):
    view = watch("pm-planning", "--until", "completed", "--timeout", "0.5", "--root", project, "--server", offline())
    assert view.wait(WAIT_S) == 124
    assert view.stderr.text == ("madace-status: timed out after 0.5 s waiting for pm-planning "
                                  "(pm-planning in_progress step 3/5 40%)\n")


def test_json_keeps_its_documents_and_exits_with_the_code(project, watch):
    view = watch("pm-planning", "--exit-status", "-f", "json", "--root", project, "--server", offline(),
                 "--interval", "0.2")
    view.stdout.wait_for(lambda text: '"currentStep": 3' in text or '"currentStep":3' in text)
    set_workflow(project, "pm-planning", status="completed", currentStep=5)
    assert view.wait(WAIT_S) == 0
    last = json.loads(view.stdout.text.strip().splitlines()[-1])
    assert last["data"]["status"] == "completed" and last["connection"]["mode"] == "polling"


@pytest.mark.parametrize("arguments, message", [
    (["stories", "--exit-status"], "--exit-status and --until wait for a workflow, a story or the whole project"),
    (["STORY-V3-020", "--until", "blocked"], "--until for a story must be one of BACKLOG, TODO, IN_PROGRESS, DONE"),
    (["pm-planning", "--until", "done"], "--until for a workflow must be one of pending, in_progress, completed"),
    (["--until", "all"], "--until for a project must be one of finished, completed"),
    (["pm-planning", "--timeout", "3"], "--timeout only applies with --exit-status or --until"),
    (["pm-planning", "--exit-status", "--timeout", "0"], "--timeout must be a number of seconds above 0"),
])
def test_what_cannot_be_waited_for_is_a_usage_error(project, watch, arguments, message):
    view = watch(*arguments, "--root", project, "--server", offline())
    assert view.wait(WAIT_S) == 2
    assert view.stderr.text.startswith("madace-status: " + message) and view.stdout.text == ""


def test_on_a_terminal_the_frames_are_drawn_and_the_exit_code_is_the_goals(project, tty_watch):
    tty = tty_watch("pm-planning", "--exit-status", "--root", project, "--server", offline(), "--interval", "0.2")
    tty.output.wait_for(lambda text: "Workflow pm-planning" in text or "pm-planning" in text)
    set_workflow(project, "pm-planning", status="completed", currentStep=5)
    assert tty.wait(WAIT_S) == 0
    assert tty.attributes() == tty.attributes_before  # the terminal as it was
