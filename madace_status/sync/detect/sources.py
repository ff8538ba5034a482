"""What the sync service has read of a project, source by source, and the grace period of a file caught
mid-write (README, "How changes are found"): a state file, the story file or the epics are read again on their
own, and the Project is assembled from the last good record of each.

Not thread-safe: the service reads either on its loop (small changes) or in its one reader thread, never both
at once.
"""

from __future__ import annotations

import enum
import os
import time
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, TypedDict

from madace_status.project.files import is_busy_reason
from madace_status.project.loader import (assemble_workflows, check_root, list_workflow_sources, load_epics,
                                          load_stories)
from madace_status.project.model import Epic, Project, Story, Workflow
from madace_status.project.workflows import read_workflow_file

if TYPE_CHECKING:
    from madace_status.project.loader import ProjectPaths

__all__ = ["INVALID_GRACE_S", "ProjectSources", "ReadScope", "Retry"]

INVALID_GRACE_S = 0.5  # a file must stay unparseable this long before it is reported invalid

# What to read again: (state files, or None for all of them; the story file?; the epics?).
ReadScope = Tuple[Optional[List[str]], bool, bool]


class Retry(enum.Enum):
    """Besides a state file (known by its path), what `bad_since` holds: read again at every look until it reads
    well (README, "How changes are found")."""

    STORIES = "stories"  # the story file: unparseable within its grace period, or out of descriptors
    LISTING = "listing"  # the state directories could not be listed for lack of descriptors
    EPICS = "epics"  # an epic file could not be opened for lack of descriptors


# (records, source-level warnings, source-level errors) of the story file or the epics
_Stories = Tuple[List[Story], List[str], List[str]]
_Epics = Tuple[List[Epic], List[str], List[str]]


class _Parts(TypedDict, total=False):
    stories: _Stories
    epics: _Epics


class ProjectSources:
    """The records read so far and what is waiting out its grace period (`bad_since`)."""

    def __init__(self, paths: ProjectPaths) -> None:
        self.paths = paths
        # A state file (its path) or a Retry → the monotonic time it first failed to read well.
        self.bad_since: dict[str | Retry, float] = {}
        self.workflow_files: list[tuple[str, str]] = []  # [(state file, symlink boundary)] in reading order
        # The state directories' own warnings and errors.
        self.workflow_source_notices: tuple[list[str], list[str]] = ([], [])
        self.workflow_records: dict[str, Workflow] = {}  # state file → its record (the last good one in a grace)
        self.parts: _Parts = {}  # the story file's and the epics' (records, warnings, errors)

    def retrying(self) -> ReadScope:
        """(state files waiting out a grace period, stories?, epics?): read again at every look."""
        files = [key for key in self.bad_since if isinstance(key, str)]
        return files, Retry.STORIES in self.bad_since, Retry.EPICS in self.bad_since

    def needs_listing(self, state_files: list[str] | None) -> bool:
        """Whether reading `state_files` lists the state directories first (a new or vanished file)."""
        return state_files is None or Retry.LISTING in self.bad_since or \
            any(path not in self.workflow_records or not os.path.lexists(path) for path in state_files)

    def load_all(self, previous_sources: dict[str, Any] | None = None, check: bool = True) -> Project:
        """Forget what was read and read everything again (with `check`, raise ProjectUnreadable for a root that
        cannot be read, as at start; a root that went while serving shows as a project with nothing in it)."""
        if check:
            check_root(self.paths.root)
        self.workflow_records = {}
        self.bad_since = {}
        self.parts = {}
        self.reload(None, True, True, grace=False)  # no last good state to keep: it is what is in doubt
        return self.build_project(previous_sources)

    def build_project(self, previous_sources: dict[str, Any] | None = None) -> Project:
        records = [self.workflow_records[path] for path, _ in self.workflow_files if path in self.workflow_records]
        workflows, duplicate_warnings = assemble_workflows(records)
        workflow_warnings, workflow_errors = self.workflow_source_notices
        stories, story_warnings, story_errors = self.parts["stories"]
        epics, epic_warnings, epic_errors = self.parts["epics"]
        return Project(self.paths.root, workflows, stories, epics, workflow_warnings + duplicate_warnings,
                       workflow_errors, story_warnings, story_errors, epic_warnings, epic_errors,
                       previous_sources)

    def reload(self, state_files: list[str] | None, reload_stories: bool, reload_epics: bool,
               grace: bool = True) -> None:
        """Read again the state files named (None: list the state directories and read them all), and the
        story file and epics when asked."""
        now = time.monotonic()
        if self.needs_listing(state_files):
            _, listed, warnings, errors = list_workflow_sources(self.paths)
            if any(is_busy_reason(error) for error in errors):
                # out of descriptors, not out of files: keep what was listed and look again at the next poll
                self.bad_since.setdefault(Retry.LISTING, now)
            else:
                self.bad_since.pop(Retry.LISTING, None)
                self.workflow_files = listed
                self.workflow_source_notices = (warnings, errors)
        boundaries = dict(self.workflow_files)
        if state_files is None:
            state_files = list(boundaries) + [path for path in self.workflow_records if path not in boundaries]
        for path in state_files:
            if path not in boundaries:
                self.workflow_records.pop(path, None)
                self.bad_since.pop(path, None)
                continue
            self._read_state_file(path, boundaries[path], now, grace)
        if reload_stories:
            _, stories, warnings, errors = load_stories(self.paths)
            previous = self.parts.get("stories")
            if previous is not None and any(is_busy_reason(error) for error in errors):
                self.bad_since.setdefault(Retry.STORIES, now)   # out of descriptors: keep, retry next poll
            elif errors and grace and previous is not None and not previous[2] and \
                    self._within_grace(Retry.STORIES, now):
                pass  # unreadable for now: keep the last good stories and look again at the next poll
            else:
                self.bad_since.pop(Retry.STORIES, None)
                self.parts["stories"] = (stories, warnings, errors)
        if reload_epics:
            epics, warnings, errors = load_epics(self.paths)[1:]
            busy = any(is_busy_reason(epic.error or "") for epic in epics) or any(map(is_busy_reason, errors))
            if busy and self.parts.get("epics") is not None:
                self.bad_since.setdefault(Retry.EPICS, now)   # out of descriptors: keep, retry next poll
            else:
                self.bad_since.pop(Retry.EPICS, None)
                self.parts["epics"] = (epics, warnings, errors)

    def _read_state_file(self, path: str, boundary: str, now: float, grace: bool) -> None:
        """A file caught mid-write keeps its last good record (a new one stays unseen) until it has been bad for
        INVALID_GRACE_S; meanwhile it is read again at every poll."""
        record = read_workflow_file(path, self.paths.root, boundary)
        before = self.workflow_records.get(path)
        if record.is_invalid and is_busy_reason(record.error or ""):
            # EMFILE/ENFILE: the file is not broken, the process is short of descriptors. Keep the last good
            # record (a new file stays unseen), whatever the grace, and read it again at the next poll.
            self.bad_since.setdefault(path, now)
            return
        if grace and record.is_invalid and (before is None or not before.is_invalid) and \
                self._within_grace(path, now):
            return
        self.bad_since.pop(path, None)
        self.workflow_records[path] = record

    def _within_grace(self, key: str | Retry, now: float) -> bool:
        first = self.bad_since.setdefault(key, now)
        return now - first < INVALID_GRACE_S
