"""The demo's simulator: one realistic change to the project's files per step, and the loop that steps it.

Every write is atomic (see `tree.atomic_write`). After every step the project loads with no error, no warning
and no WIP violation (at most one story in TODO and one in IN PROGRESS).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time

from madace_status.demo.board import NEXT_STATE, Board
from madace_status.demo.epics import EPIC_STATUSES, DemoEpic
from madace_status.demo.tree import (EPICS_DIR, STATE_DIR, STATUS_FILE, atomic_write, iso, read_text,
                                     sample_epic_files, sample_state_files, sample_text, utcnow)
from madace_status.demo.workflows import WorkflowRun, state_json, template_from_document
from madace_status.logsafe import escape
from madace_status.project.model import STATE_LABELS

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time
if TYPE_CHECKING:
    import datetime
    from typing import Any, Callable, Protocol

    class StopFlag(Protocol):
        """What `run_simulator` stops on: an `asyncio.Event`, a `threading.Event`, or anything with `is_set()`."""

        def is_set(self) -> bool: ...

__all__ = ["LOGGER_NAME", "DEFAULT_STEP_INTERVAL_S", "DemoSimulator", "run_simulator"]

LOGGER_NAME = "madace_status.demo"
DEFAULT_STEP_INTERVAL_S = 2.5
STOP_CHECK_S = 0.1  # how often a threading.Event stop flag is looked at between steps

# The failures a running workflow may meet (the first one twice: it is the common one).
ERRORS = (
    "LLM API timeout",
    "LLM API timeout",
    "LLM API rate limit exceeded (HTTP 429)",
    "Template variable 'project_name' is undefined",
    "Agent response could not be parsed as YAML",
    "Child process exited with code 1",
)


class DemoSimulator:
    """Moves a demo project along, one realistic change per `step()`.

    `directory` is a project made by `create_demo_project` (the simulator picks up the current state
    of its files, so it may also be restarted on an older demo directory; a missing file is simply
    written again when its turn comes). `seed` makes the sequence of changes reproducible.

    A step does exactly one of:
    - a running workflow completes its current step and starts the next one (`currentStep`, step
      statuses and `lastUpdated`/`updatedAt` updated), or completes when that was the last step;
    - now and then a running workflow fails at its current step with an error such as
      "LLM API timeout";
    - a pending workflow (schema B) starts;
    - a completed or failed workflow is restarted from step 1, or a completed one has its state file
      removed, and a removed one is created again later;
    - a story moves one column, BACKLOG -> TODO -> IN PROGRESS -> DONE, never breaking the MADACE rule
      (at most one story in TODO and one in IN PROGRESS); when every story is DONE the board is reset
      for a new iteration, so the demo runs forever;
    - now and then an epic's status changes (Planning -> In Progress -> Done -> Planning).

    Each step rewrites a single file atomically (or removes one state file) and returns a one-line
    description of the change.
    """

    FAIL_PROBABILITY = 0.12
    STORY_PROBABILITY = 0.3
    EPIC_PROBABILITY = 0.05

    def __init__(self, directory: str, seed: int | None = None) -> None:
        self.root = os.path.abspath(directory)
        self.state_dir = os.path.join(self.root, *STATE_DIR.split("/"))
        self.status_file = os.path.join(self.root, *STATUS_FILE.split("/"))
        self.epics_dir = os.path.join(self.root, *EPICS_DIR.split("/"))
        self.random = random.Random(seed)
        self.steps = 0
        now = utcnow()
        self.runs: dict[str, WorkflowRun] = {}
        for file_name in sample_state_files():
            run = WorkflowRun(template_from_document(json.loads(sample_text(STATE_DIR + "/" + file_name, now))))
            text = read_text(os.path.join(self.state_dir, run.path_name))
            if text is not None:
                try:
                    doc = json.loads(text)
                except ValueError:
                    doc = None
                if isinstance(doc, dict):
                    run.load(doc)
                else:           # unusable: rewritten as a fresh run when its turn comes
                    run.start(iso(utcnow()))
                    run.status = "failed"
                    run.error = "state file was unreadable"
            self.runs[run.name] = run
        self.board = Board(sample_text(STATUS_FILE, now))
        text = read_text(self.status_file)
        if text is not None:
            self.board.load(text)
        self.epics = [DemoEpic(name, sample_text(EPICS_DIR + "/" + name, now)) for name in sample_epic_files()]
        for epic in self.epics:
            text = read_text(os.path.join(self.epics_dir, epic.filename))
            if text is not None:
                epic.load(text)

    # -- one step -----------------------------------------------------------------------------------

    def step(self) -> str:
        """Make one change to the project's files; return a one-line description of it."""
        self.steps += 1
        roll = self.random.random()
        if roll < self.STORY_PROBABILITY:
            return self._story_step()
        if roll < self.STORY_PROBABILITY + self.EPIC_PROBABILITY:
            return self._epic_step()
        return self._workflow_step()

    def _workflow_step(self) -> str:
        choices: list[tuple[float, WorkflowRun, Callable[[WorkflowRun], str]]] = []
        for run in self.runs.values():
            if run.status == "in_progress":
                choices.append((3.0, run, self._advance))
            elif run.status == "pending":
                choices.append((1.5, run, self._start))
            elif run.status == "absent":
                choices.append((1.2, run, self._create))
            elif run.status in ("completed", "failed"):
                choices.append((0.5, run, self._restart))
                if run.status == "completed":
                    choices.append((0.25, run, self._remove))
            else:
                choices.append((1.0, run, self._restart))
        total = sum(weight for weight, _, _ in choices)
        pick = self.random.random() * total
        for weight, run, action in choices:
            pick -= weight
            if pick < 0:
                return action(run)
        weight, run, action = choices[-1]
        return action(run)

    def _write_run(self, run: WorkflowRun) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        atomic_write(os.path.join(self.state_dir, run.path_name), state_json(run.document(self.runs)))

    def _advance(self, run: WorkflowRun) -> str:
        now = iso(utcnow())
        run.updated_at = now
        if self.random.random() < self.FAIL_PROBABILITY:
            where = run.describe_position()
            run.status = "failed"
            run.error = self.random.choice(ERRORS)
            self._write_run(run)
            return "workflow %s failed at %s: %s" % (run.name, where, run.error)
        if run.schema == "A":
            run.step_times[run.done][1] = now
        run.done += 1
        if run.done >= run.total:
            run.done = run.total
            run.status = "completed"
            self._write_run(run)
            return "workflow %s completed (%d/%d steps)" % (run.name, run.total, run.total)
        if run.schema == "A":
            run.step_times[run.done] = [now, None]
        self._write_run(run)
        return "workflow %s: %s started" % (run.name, run.describe_position())

    def _start(self, run: WorkflowRun) -> str:
        now = iso(utcnow())
        run.updated_at = now
        run.status = "in_progress"
        if run.schema == "A":
            run.done = 0
            run.step_times[0] = [now, None]
        else:
            run.done = max(1, run.done)       # schema B: first step done, the next one running
        self._write_run(run)
        return "workflow %s started: %s" % (run.name, run.describe_position())

    def _restart(self, run: WorkflowRun) -> str:
        was = run.status
        run.start(iso(utcnow()))
        self._write_run(run)
        if run.status == "pending":
            return "workflow %s restarted from step 1 (was %s; waiting to run)" % (run.name, was)
        return "workflow %s restarted from step 1 (was %s)" % (run.name, was)

    def _remove(self, run: WorkflowRun) -> str:
        try:
            os.remove(os.path.join(self.state_dir, run.path_name))
        except FileNotFoundError:
            pass
        run.status = "absent"
        return "workflow %s finished; its state file was removed" % run.name

    def _create(self, run: WorkflowRun) -> str:
        run.start(iso(utcnow()))
        self._write_run(run)
        if run.status == "pending":
            return "workflow %s created (pending, %d steps)" % (run.name, run.total)
        return "workflow %s created: %s started" % (run.name, run.describe_position())

    def _story_step(self) -> str:
        board = self.board
        now = utcnow()
        today = now.date()
        moves = []
        for state in ("IN_PROGRESS", "TODO", "BACKLOG"):
            column = board.column(state)
            target = NEXT_STATE[state]
            if column and (target == "DONE" or not board.column(target)):
                moves.append((column[0], state, target))
        if not moves:
            if board.column("BACKLOG") or board.column("TODO") or board.column("IN_PROGRESS"):
                # cannot happen with the columns above, but never loop or raise on odd input
                return self._workflow_step()
            board.reset(sample_text(STATUS_FILE, now))
            self._write_board(today)
            return "story board reset for a new iteration: %d stories back in BACKLOG/TODO/IN PROGRESS" % (
                len(board.stories) - len(board.done_order))
        story, source, target = self.random.choice(moves)
        story.state = target
        if target == "IN_PROGRESS":
            story.started = today.isoformat()
        elif target == "DONE":
            story.completed = today.isoformat()
            board.done_order.append(story.id)
        self._write_board(today)
        return "story %s (%s): %s -> %s" % (story.id, story.title, STATE_LABELS[source], STATE_LABELS[target])

    def _write_board(self, today: datetime.date) -> None:
        os.makedirs(os.path.dirname(self.status_file), exist_ok=True)
        atomic_write(self.status_file, self.board.render(today))

    def _epic_step(self) -> str:
        epic = self.random.choice(self.epics)
        before = epic.status.split(" ", 1)[1]
        epic.status_index = (epic.status_index + 1) % len(EPIC_STATUSES)
        epic.updated = utcnow().date().isoformat()
        os.makedirs(self.epics_dir, exist_ok=True)
        atomic_write(os.path.join(self.epics_dir, epic.filename), epic.render())
        return "epic %s status: %s -> %s" % (epic.epic_id, before, epic.status.split(" ", 1)[1])


async def run_simulator(simulator: DemoSimulator, interval_s: float = DEFAULT_STEP_INTERVAL_S,
                        stop_event: StopFlag | None = None) -> None:
    """Call `simulator.step()` every `interval_s` seconds until cancelled or `stop_event` is set.

    `stop_event` is an `asyncio.Event` (or anything with `is_set()`, e.g. a `threading.Event`).
    Each change is logged at INFO on the "madace_status.demo" logger; a step that fails (the demo
    directory was removed, a disk error) is logged as a warning and the loop goes on.
    """
    log = logging.getLogger(LOGGER_NAME)
    interval_s = max(0.0, float(interval_s))
    wait: Any = getattr(stop_event, "wait", None)   # an asyncio.Event's is awaited; a threading.Event's would block
    waits = stop_event is not None and asyncio.iscoroutinefunction(wait)
    while stop_event is None or not stop_event.is_set():
        try:
            description = simulator.step()
        except OSError as exc:
            log.warning("demo step failed: %s", escape(exc))
        else:
            log.info("%s", escape(description))  # names read back from the demo's files
        if waits:
            try:
                await asyncio.wait_for(wait(), interval_s)
            except asyncio.TimeoutError:
                pass
        elif stop_event is None:
            await asyncio.sleep(interval_s)
        else:
            deadline = time.monotonic() + interval_s
            while not stop_event.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await asyncio.sleep(min(left, STOP_CHECK_S))
