"""watch/goal.py, sans-I/O: when a wait ends and with which code (README, "Waiting in scripts")."""

import pytest

from madace_status.choices import ExitCode
from madace_status.console import UsageError
from madace_status.project.model import Project, Story, Workflow
from madace_status.project.registry import EPIC, STORIES, STORY, SUMMARY, WORKFLOW, Entity
from madace_status.watch.goal import Goal


def workflow(status, name="w", error=None):
    return Workflow(name=name, status=status, current_step=2, total_steps=4, completed_steps=1, progress=25,
                    error=error)


def summary_of(*statuses):
    project = Project("/p", [workflow(status, "w%d" % n) for n, status in enumerate(statuses)], [], [])
    return Entity(SUMMARY, None, project.summary, [], [])


@pytest.mark.parametrize("until, status, code", [
    (None, "in_progress", None), (None, "completed", ExitCode.OK), (None, "failed", ExitCode.FAILED),
    (None, "invalid", None), ("in-progress", "in_progress", ExitCode.OK), ("Completed", "failed", ExitCode.FAILED),
    ("failed", "failed", ExitCode.OK), ("pending", "in_progress", None),
])
def test_a_workflow(until, status, code):
    assert Goal(WORKFLOW, until).exit_code(Entity(WORKFLOW, "w", workflow(status), [], [])) == code


@pytest.mark.parametrize("until, state, code", [
    (None, "IN_PROGRESS", None), (None, "DONE", ExitCode.OK), ("todo", "TODO", ExitCode.OK),
    ("in progress", "IN_PROGRESS", ExitCode.OK), ("done", "BACKLOG", None),
])
def test_a_story(until, state, code):
    story = Story(id="US-1", title="t", status=state)
    assert Goal(STORY, until).exit_code(Entity(STORY, "US-1", story, [], [])) == code


@pytest.mark.parametrize("until, statuses, code", [
    (None, (), None), (None, ("completed", "in_progress"), None), (None, ("completed", "completed"), ExitCode.OK),
    (None, ("completed", "failed"), ExitCode.FAILED), ("finished", ("completed", "failed"), ExitCode.OK),
    ("completed", ("completed", "failed"), ExitCode.FAILED), ("completed", ("failed", "pending"), None),
])
def test_the_whole_project(until, statuses, code):
    assert Goal(SUMMARY, until).exit_code(summary_of(*statuses)) == code


@pytest.mark.parametrize("kind, until", [(STORIES, None), (EPIC, None), (STORY, "blocked"), (WORKFLOW, "done"),
                                         (SUMMARY, "all")])
def test_what_cannot_be_waited_for(kind, until):
    with pytest.raises(UsageError):
        Goal(kind, until)


def test_the_state_line_keeps_control_characters_out_of_the_terminal():
    entity = Entity(WORKFLOW, "w", workflow("failed", "w\x1b[31m", "boom\x07"), [], [])
    line = Goal(WORKFLOW, None).state_line(entity)
    assert "\x1b" not in line and "\x07" not in line and line.startswith("w") and "failed step 2/4 25%" in line
