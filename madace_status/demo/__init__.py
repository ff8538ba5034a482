"""The `serve --demo` sample project and the simulator that keeps it moving (README, `madace-status serve`).

The project is data: the files under `sample/` (workflow state files in both schemas, a story status file
mixing the story-line forms, three epics, a README), with times relative to now written as placeholders
(`tree.py` says which). It shares nothing with the tests' fixture; where each comes from is written once, in
tests/fixtures/sample-project/README.md. The code only copies and moves it:

- `tree.py`: `create_demo_project(directory)` copies the sample tree, times filled in for now;
  `atomic_write()` is how every file of the demo is written;
- `workflows.py`, `board.py`, `epics.py`: each file's kind of record, read from the sample, and the file
  written back after a change;
- `simulator.py`: `DemoSimulator(directory, seed=None).step()` makes one realistic change (a workflow
  advances, completes, fails, restarts, disappears or reappears; a story moves one column; an epic changes
  status) and returns a one-line description of it; `run_simulator()` calls it on a timer;
- `demo_project()` below: a temporary demo project, removed on exit.
"""

from __future__ import annotations

import contextlib
import os  # noqa: F401 (the tests watch every atomic write through `demo.os.replace`)
import shutil
import tempfile

from madace_status.demo.simulator import LOGGER_NAME, DemoSimulator, run_simulator
from madace_status.demo.tree import EPICS_DIR, STATE_DIR, STATUS_FILE, atomic_write, create_demo_project

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time
if TYPE_CHECKING:
    from typing import Iterator

__all__ = ["STATE_DIR", "STATUS_FILE", "EPICS_DIR", "LOGGER_NAME", "atomic_write", "create_demo_project",
           "DemoSimulator", "run_simulator", "demo_project"]

_TEMP_DIR_PREFIX = "madace-demo-"


@contextlib.contextmanager
def demo_project() -> Iterator[str]:
    """A temporary demo project: yields its path; the directory is removed on exit (also on error)."""
    path = tempfile.mkdtemp(prefix=_TEMP_DIR_PREFIX)
    try:
        create_demo_project(path)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
