"""The demo project and its simulator (README, "`madace-status serve`", `--demo`): always loadable, never a WIP
violation, atomic writes only, and visibly alive (workflows start, complete and fail; stories move)."""

import asyncio
import json
import logging
import os
import re
import threading

import pytest

from madace_status import demo
from madace_status.demo import DemoSimulator, create_demo_project, demo_project, run_simulator
from madace_status.project.loader import ProjectPaths, load_project
from madace_status.project.workflows import STATE_FILE_RE

SEED = 20261122


def load(root):
    return load_project(ProjectPaths(root=str(root)))


def assert_clean(project):
    assert project.errors == []
    assert project.violations == []
    assert project.warnings == []
    assert all(w.status != "invalid" for w in project.workflows)


def all_files(root):
    found = set()
    for folder, _, files in os.walk(str(root)):
        for name in files:
            found.add(os.path.relpath(os.path.join(folder, name), str(root)).replace(os.sep, "/"))
    return found


def stray_temp_files(root):
    return sorted(f for f in all_files(root) if os.path.basename(f).startswith(".tmp-"))


# -- create_demo_project ----------------------------------------------------------------------------

def test_created_project_loads_cleanly_with_every_kind_of_record(tmp_path):
    written = create_demo_project(str(tmp_path))
    assert written and all(os.path.isabs(p) and os.path.isfile(p) for p in written)
    assert set(all_files(tmp_path)) == {os.path.relpath(p, str(tmp_path)).replace(os.sep, "/") for p in written}

    project = load(tmp_path)
    assert_clean(project)

    # workflows: five hidden state files, both schemas, every status
    state_files = sorted(os.listdir(str(tmp_path / "madace-data" / "workflow-states")))
    assert len(state_files) == 5
    assert all(STATE_FILE_RE.match(name) for name in state_files)
    by_name = {w.name: w for w in project.workflows}
    assert {w.schema for w in project.workflows} == {"A", "B"}
    assert {w.status for w in project.workflows} == {"pending", "in_progress", "completed", "failed"}
    assert by_name["architecture-review"].error == "LLM API timeout"
    assert by_name["pm-planning"].current_step_name == "generate-initial-prd"
    assert by_name["dev-implementation"].children[0]["name"] == "code-review"

    # stories: a dozen, all four states, exactly one in TODO and one in IN PROGRESS
    counts = project.summary.states
    assert len(project.stories) == 12
    assert {state: counts[state]["count"] for state in counts} == {
        "BACKLOG": 6, "TODO": 1, "IN_PROGRESS": 1, "DONE": 4}
    assert all(s.points for s in project.stories)
    assert sum(1 for s in project.stories if s.assignee) >= 5
    assert {s.milestone for s in project.stories if s.status == "BACKLOG"} >= {
        "Milestone 2.2: Real-time collaboration", "Milestone 2.3: Observability"}
    assert project.story("STORY-V3-020").assignee == "alex"          # from its **Developer:** line
    assert project.story("STORY-V3-025").assignee == "dana"          # from its `- Owner:` line
    assert project.story("PLAN-001").checked                         # the ✅ form
    assert project.story("US-014").due_date is not None

    # the status file mixes the real-file line forms
    text = (tmp_path / "docs" / "workflow-status.md").read_text(encoding="utf-8")
    assert re.search(r"^- \[ \] \*\*\[[A-Z0-9-]+\]\*\* .* \| \d+ points", text, re.M)      # form 1
    assert re.search(r"^- \*\*\[[A-Z0-9-]+\]\*\* .*\[Points: \d+\]", text, re.M)           # form 2
    assert re.search(r"^- \[[A-Z0-9-]+\] .*\[Points: \d+\]", text, re.M)                   # form 3
    assert re.search(r"^- \u2705 \[[A-Z0-9-]+\] .* - \*\*DONE\*\*", text, re.M)           # form 4
    assert re.search(r"^\* \[[A-Z0-9-]+\] .*\[\d+ pts\]", text, re.M)                      # form 5

    # epics
    assert [e.id for e in project.epics] == ["EPIC-MAM", "EPIC-V3-001", "EPIC-V3-002"]
    assert all(e.name and e.status and e.priority for e in project.epics)


def test_state_files_use_the_sample_schemas(tmp_path):
    create_demo_project(str(tmp_path))
    folder = tmp_path / "madace-data" / "workflow-states"
    a = json.loads((folder / ".pm-planning.state.json").read_text(encoding="utf-8"))
    b = json.loads((folder / ".dev-implementation.state.json").read_text(encoding="utf-8"))
    assert {"workflow", "currentStep", "totalSteps", "status", "lastUpdated", "steps"} <= set(a)
    assert {"workflowName", "currentStep", "variables", "completed", "updatedAt"} <= set(b)
    assert b["variables"]["_TOTAL_STEPS"] == 6


# -- the simulator ----------------------------------------------------------------------------------

def test_two_hundred_steps_stay_loadable_and_show_every_kind_of_change(tmp_path):
    create_demo_project(str(tmp_path))
    first = load(tmp_path)
    points = {s.id: s.points for s in first.stories}
    assignees = {s.id: s.assignee for s in first.stories}
    epic_ids = [e.id for e in first.epics]
    simulator = DemoSimulator(str(tmp_path), seed=SEED)

    workflows = {w.name: (w.status, w.completed_steps) for w in first.workflows}
    stories = {s.id: s.status for s in first.stories}
    epics = {e.id: e.status for e in first.epics}
    transitions = set()        # (from, to) for workflows; "absent" when there is no state file
    moves = set()              # (from, to) for stories
    epic_changes = 0
    descriptions = []
    for _ in range(200):
        description = simulator.step()
        assert isinstance(description, str) and description.strip()
        assert "\n" not in description
        descriptions.append(description)

        project = load(tmp_path)
        assert_clean(project)
        assert stray_temp_files(tmp_path) == []

        now_workflows = {w.name: (w.status, w.completed_steps) for w in project.workflows}
        for name in set(workflows) | set(now_workflows):
            before = workflows.get(name, ("absent", 0))[0]
            after = now_workflows.get(name, ("absent", 0))[0]
            if before != after:
                transitions.add((before, after))
        now_stories = {s.id: s.status for s in project.stories}
        moves.update((stories[i], now_stories[i]) for i in stories if stories[i] != now_stories[i])
        now_epics = {e.id: e.status for e in project.epics}
        epic_changes += now_epics != epics
        changed = (now_workflows != workflows) + (now_stories != stories) + (now_epics != epics)
        assert changed == 1, description           # one change per step
        workflows, stories, epics = now_workflows, now_stories, now_epics

        # stories are only moved, never lost or altered
        assert {s.id: s.points for s in project.stories} == points
        assert {s.id: s.assignee for s in project.stories} == assignees
        assert [e.id for e in project.epics] == epic_ids
        for workflow in project.workflows:
            assert 0 <= workflow.progress <= 100
            assert workflow.current_step <= workflow.total_steps

    # workflows start, complete, fail, restart, disappear and come back
    assert any(after == "in_progress" for before, after in transitions if before != "in_progress")
    assert ("in_progress", "completed") in transitions
    assert ("in_progress", "failed") in transitions
    assert ("failed", "in_progress") in transitions or ("failed", "pending") in transitions
    assert ("completed", "absent") in transitions
    assert any(before == "absent" for before, _ in transitions)
    # stories move along every column, and the board is reset when everything is DONE
    assert {("BACKLOG", "TODO"), ("TODO", "IN_PROGRESS"), ("IN_PROGRESS", "DONE")} <= moves
    assert ("DONE", "BACKLOG") in moves
    assert epic_changes >= 1
    assert any("LLM API" in d for d in descriptions)


def test_progress_within_one_workflow_is_step_by_step(tmp_path):
    create_demo_project(str(tmp_path))
    simulator = DemoSimulator(str(tmp_path), seed=7)
    previous = {w.name: w for w in load(tmp_path).workflows}
    for _ in range(120):
        simulator.step()
        current = {w.name: w for w in load(tmp_path).workflows}
        for name, after in current.items():
            before = previous.get(name)
            if before is None or before.status != "in_progress" or after.status != "in_progress":
                continue
            # an advancing workflow moves one step at a time and records when
            assert after.completed_steps - before.completed_steps in (0, 1)
            if after.completed_steps != before.completed_steps:
                assert after.updated_at >= before.updated_at
        previous = current


def test_same_seed_same_changes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    create_demo_project(str(one))
    create_demo_project(str(two))
    a = DemoSimulator(str(one), seed=3)
    b = DemoSimulator(str(two), seed=3)
    assert [a.step() for _ in range(60)] == [b.step() for _ in range(60)]


def test_a_new_simulator_picks_up_where_the_files_are(tmp_path):
    create_demo_project(str(tmp_path))
    first = DemoSimulator(str(tmp_path), seed=11)
    for _ in range(45):
        first.step()
    before = load(tmp_path)
    second = DemoSimulator(str(tmp_path), seed=12)
    assert {n: r.status for n, r in second.runs.items() if r.status != "absent"} == {
        w.name: w.status for w in before.workflows}
    assert {s.id: s.state for s in second.board.stories} == {s.id: s.status for s in before.stories}
    for _ in range(60):
        second.step()
        assert_clean(load(tmp_path))


def test_simulator_on_an_empty_directory_writes_the_files_it_needs(tmp_path):
    simulator = DemoSimulator(str(tmp_path), seed=5)
    for _ in range(60):
        simulator.step()
        project = load(tmp_path)
        assert project.errors == []
        assert project.violations == []
    assert load(tmp_path).workflows and load(tmp_path).stories


def test_every_write_goes_through_a_temporary_file_in_the_same_directory(tmp_path, monkeypatch):
    replaced = []
    real_replace = os.replace

    def spy(source, target):
        replaced.append((str(source), str(target)))
        return real_replace(source, target)

    monkeypatch.setattr(demo.os, "replace", spy)
    create_demo_project(str(tmp_path))
    simulator = DemoSimulator(str(tmp_path), seed=SEED)
    for _ in range(80):
        simulator.step()
    assert len(replaced) >= 80 - 10          # removals are the only steps without a replace
    for source, target in replaced:
        name = os.path.basename(source)
        assert os.path.dirname(os.path.abspath(source)) == os.path.dirname(os.path.abspath(target))
        assert name.startswith(".tmp-")
        assert not STATE_FILE_RE.match(name)
        assert not name.endswith(".md") and not name.endswith(".json")
    assert stray_temp_files(tmp_path) == []


def test_a_concurrent_reader_never_sees_a_partial_file(tmp_path):
    create_demo_project(str(tmp_path))
    simulator = DemoSimulator(str(tmp_path), seed=SEED)
    folder = str(tmp_path / "madace-data" / "workflow-states")
    status_file = str(tmp_path / "docs" / "workflow-status.md")
    stop = threading.Event()
    problems = []
    reads = [0]

    def reader():
        while not stop.is_set():
            for name in os.listdir(folder):
                if not STATE_FILE_RE.match(name):
                    continue
                try:
                    with open(os.path.join(folder, name), encoding="utf-8") as handle:
                        text = handle.read()
                except FileNotFoundError:
                    continue
                try:
                    json.loads(text)
                except ValueError as exc:
                    problems.append("%s: %s" % (name, exc))
                reads[0] += 1
            with open(status_file, encoding="utf-8") as handle:
                if "## DONE" not in handle.read():
                    problems.append("status file read half-written")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(200):
            simulator.step()
    finally:
        stop.set()
        thread.join(10)
    assert problems == []
    assert reads[0] > 0


# -- run_simulator ----------------------------------------------------------------------------------

def test_run_simulator_steps_and_logs_until_the_stop_event(tmp_path, caplog):
    create_demo_project(str(tmp_path))
    simulator = DemoSimulator(str(tmp_path), seed=1)

    async def main():
        stop = asyncio.Event()
        task = asyncio.ensure_future(run_simulator(simulator, interval_s=0.01, stop_event=stop))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 2)

    with caplog.at_level(logging.INFO, logger="madace_status.demo"):
        asyncio.run(main())
    records = [r for r in caplog.records if r.name == "madace_status.demo" and r.levelno == logging.INFO]
    assert simulator.steps >= 3
    assert len(records) == simulator.steps
    assert_clean(load(tmp_path))


def test_run_simulator_stops_when_cancelled(tmp_path):
    create_demo_project(str(tmp_path))
    simulator = DemoSimulator(str(tmp_path), seed=2)

    async def main():
        task = asyncio.ensure_future(run_simulator(simulator, interval_s=0.01))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert simulator.steps >= 2
    assert stray_temp_files(tmp_path) == []


def test_run_simulator_survives_a_failing_step(tmp_path, caplog):
    simulator = DemoSimulator(str(tmp_path / "gone"), seed=4)

    def broken():
        simulator.steps += 1
        raise PermissionError(13, "Permission denied")

    simulator.step = broken

    async def main():
        stop = threading.Event()          # a threading.Event works too
        asyncio.get_running_loop().call_later(0.1, stop.set)
        await asyncio.wait_for(run_simulator(simulator, interval_s=0.01, stop_event=stop), 2)

    with caplog.at_level(logging.INFO, logger="madace_status.demo"):
        asyncio.run(main())
    assert simulator.steps >= 2
    assert any(r.levelno == logging.WARNING and "demo step failed" in r.getMessage() for r in caplog.records)


# -- demo_project -----------------------------------------------------------------------------------

def test_demo_project_is_removed_on_exit():
    with demo_project() as path:
        assert os.path.basename(path).startswith("madace-demo-")
        assert_clean(load(path))
        simulator = DemoSimulator(path, seed=9)
        for _ in range(10):
            simulator.step()
    assert not os.path.exists(path)


def test_demo_project_is_removed_after_an_exception():
    seen = []
    with pytest.raises(RuntimeError):
        with demo_project() as path:
            seen.append(path)
            assert os.path.isdir(path)
            raise RuntimeError("boom")
    assert seen and not os.path.exists(seen[0])


# -- the sample tree (package data) -----------------------------------------------------------------

def test_the_sample_tree_is_what_the_simulator_writes_back(tmp_path):
    """Each record read from the sample and written again gives the sample file: data and code agree."""
    from madace_status.demo.board import Board
    from madace_status.demo.epics import DemoEpic
    from madace_status.demo.tree import (EPICS_DIR, STATE_DIR, STATUS_FILE, sample_epic_files, sample_state_files,
                                         sample_text, utcnow)
    from madace_status.demo.workflows import WorkflowRun, template_from_document

    now = utcnow()
    status_text = sample_text(STATUS_FILE, now)
    assert Board(status_text).render(now.date()) == status_text
    for name in sample_epic_files():
        text = sample_text(EPICS_DIR + "/" + name, now)
        assert DemoEpic(name, text).render() == text
    documents = {name: json.loads(sample_text(STATE_DIR + "/" + name, now)) for name in sample_state_files()}
    runs = {}
    for document in documents.values():
        run = WorkflowRun(template_from_document(document))
        run.load(document)
        runs[run.name] = run
    assert {run.path_name: run.document(runs) for run in runs.values()} == documents
    assert "{{" not in "".join(open(path, encoding="utf-8").read() for path in create_demo_project(str(tmp_path)))
