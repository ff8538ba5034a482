"""The demo's sample tree (data files of the package, under `sample/`) and how it becomes a project.

The files under `sample/` are the demo project exactly as `create_demo_project` writes it, except for the
times: a time or date relative to now is written as a placeholder and filled in when the tree is copied,
so a fresh demo always looks current:

- `{{time}}`, `{{time-30m}}`: now, or 30 minutes ago, as an ISO 8601 UTC timestamp with milliseconds;
- `{{date}}`, `{{date-5d}}`, `{{date+30d}}`: today, 5 days ago, in 30 days, as YYYY-MM-DD.

The tree is read as the package's resources (importlib.resources), so it works installed (it is package data, see
pyproject.toml), from a plain copy of the package folder and from a single-file zip application alike. Every write
is atomic: a `.tmp-…` file in the same directory, then `os.replace`, so a watcher never reads half a file and never
mistakes the temporary file for a state file (`.<name>.state.json`), a status file or an epic (`*.md`).
"""

from __future__ import annotations

import datetime
import importlib.resources
import os
import re
import tempfile
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable

__all__ = ["STATE_DIR", "STATUS_FILE", "EPICS_DIR", "SAMPLE_DIR", "utcnow", "iso", "fill_times", "sample_files",
           "sample_text", "sample_state_files", "sample_epic_files", "create_demo_project", "atomic_write",
           "read_text"]

# Where the files are, relative to the project root: the loader's default locations (README, "What it reads").
STATE_DIR = "madace-data/workflow-states"
STATUS_FILE = "docs/workflow-status.md"
EPICS_DIR = "docs/v3-planning/epics"

SAMPLE_DIR = "sample"  # a resource directory of this package
_TEMP_PREFIX = ".tmp-"
_REPLACE_ATTEMPTS = 10  # Windows: replacing a file another process holds open fails for a moment
_REPLACE_RETRY_S = 0.02
_TIME_PLACEHOLDER = re.compile(r"\{\{time(?:-(\d+)m)?\}\}")
_DATE_PLACEHOLDER = re.compile(r"\{\{date(?:([+-]\d+)d)?\}\}")


# -- times ----------------------------------------------------------------------------------------------

def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment: datetime.datetime) -> str:
    """`moment` as the state files write it: 2026-11-22T09:41:00.000Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def fill_times(text: str, now: datetime.datetime) -> str:
    """`text` with every time and date placeholder replaced, relative to `now` (an aware UTC datetime)."""
    text = _TIME_PLACEHOLDER.sub(
        lambda match: iso(now - datetime.timedelta(minutes=int(match.group(1) or 0))), text)
    today = now.date()
    return _DATE_PLACEHOLDER.sub(
        lambda match: (today + datetime.timedelta(days=int(match.group(1) or 0))).isoformat(), text)


# -- the sample tree ------------------------------------------------------------------------------------

def _sample_root() -> Traversable:
    return importlib.resources.files(__package__) / SAMPLE_DIR


def sample_files() -> list[str]:
    """The sample tree's files as paths relative to its root, with `/` separators, sorted."""
    found = []
    folders = [(_sample_root(), "")]
    while folders:
        folder, prefix = folders.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                folders.append((entry, prefix + entry.name + "/"))
            elif entry.name != "__pycache__":
                found.append(prefix + entry.name)
    return sorted(found)


def sample_text(relative: str, now: datetime.datetime) -> str:
    """One file of the sample tree, its placeholders filled in for `now`."""
    resource = _sample_root()
    for part in relative.split("/"):
        resource = resource / part
    return fill_times(resource.read_bytes().decode("utf-8"), now)


def sample_state_files() -> list[str]:
    """The sample's workflow state file names (`.<name>.state.json`), sorted."""
    return _sample_names(STATE_DIR)


def sample_epic_files() -> list[str]:
    """The sample's epic file names, sorted."""
    return _sample_names(EPICS_DIR)


def _sample_names(folder: str) -> list[str]:
    """The names of the files directly in `folder` of the sample tree, sorted."""
    prefix = folder + "/"
    return [path[len(prefix):] for path in sample_files() if path.startswith(prefix) and "/" not in
            path[len(prefix):]]


def create_demo_project(directory: str) -> list[str]:
    """Copy the sample tree into `directory`, times relative to now; return the absolute paths written.

    `directory` should exist and be empty (it is created when missing; files of the same names are
    overwritten, others are left alone). The project holds, at the loader's default locations:

    - `madace-data/workflow-states/.<name>.state.json`: five workflows, schema A (`pm-planning`
      in progress, `route-workflow` completed, `architecture-review` failed with "LLM API timeout")
      and schema B (`dev-implementation` in progress with a child, `code-review` pending);
    - `docs/workflow-status.md`: twelve stories (6 BACKLOG under milestones, 1 TODO, 1 IN PROGRESS,
      4 DONE) in the real-file line forms, with points, assignees, due/started/completed dates;
    - `docs/v3-planning/epics/`: EPIC-MAM, EPIC-V3-001 and EPIC-V3-002;
    - `README.md` saying what the directory is.
    """
    root = os.path.abspath(directory)
    now = utcnow()
    written = []
    for relative in sample_files():
        path = os.path.join(root, *relative.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, sample_text(relative, now))
        written.append(path)
    return written


# -- files ----------------------------------------------------------------------------------------------

def atomic_write(path: str, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically: a `.tmp-…` file in the same directory, then
    `os.replace`. A reader sees the old file or the new one, never a part of either."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        try:
            os.chmod(temp, 0o644)
        except OSError:
            pass
        _replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


def _replace(source: str, target: str) -> None:
    for attempt in range(_REPLACE_ATTEMPTS):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if os.name != "nt" or attempt == _REPLACE_ATTEMPTS - 1:
                raise
            time.sleep(_REPLACE_RETRY_S)


def read_text(path: str) -> str | None:
    """The file's text, or None when it cannot be read."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None
