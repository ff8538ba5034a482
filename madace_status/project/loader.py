"""Loading a whole project: find the sources under a root (README, "What it reads") and read each of them."""

from __future__ import annotations

import os
import stat

from madace_status.project.epics import list_epic_files, read_epic_file
from madace_status.project.files import directory_error, display_path, is_within, os_reason
from madace_status.project.model import Project
from madace_status.project.stories import read_story_file
from madace_status.project.workflows import list_state_files, read_workflow_file

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time (it would slow every `status`)
if TYPE_CHECKING:
    from typing import Iterable

    from madace_status.project.model import Epic, Story, Workflow

__all__ = ["DEFAULT_STATE_DIRS", "DEFAULT_STATUS_FILES", "DEFAULT_EPICS_DIR", "ProjectUnreadable", "ProjectPaths",
           "check_root", "load_project", "load_workflows", "list_workflow_sources", "assemble_workflows",
           "load_stories", "load_epics", "ROOT_FINGERPRINT_HEX", "root_identity"]

DEFAULT_STATE_DIRS = ("madace-data/workflow-states", ".madace/workflow-states")
DEFAULT_STATUS_FILES = ("docs/workflow-status.md", "docs/mam-workflow-status.md")
DEFAULT_EPICS_DIR = "docs/v3-planning/epics"


class ProjectUnreadable(Exception):
    """The project cannot be read at all (its root is missing, not a directory, or not listable)."""


class ProjectPaths:
    """Where the sources are. None means "the defaults"; relative paths are relative to `root`."""

    __slots__ = ("root", "state_dirs", "status_file", "epics_dir")

    def __init__(self, root: str = ".", state_dirs: Iterable[str] | None = None, status_file: str | None = None,
                 epics_dir: str | None = None) -> None:
        self.root = os.path.abspath(os.path.expanduser(root))
        self.state_dirs = list(state_dirs) if state_dirs else None
        self.status_file = status_file or None
        self.epics_dir = epics_dir or None

    def resolve(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.root, os.path.expanduser(path)))

    def state_dir_candidates(self) -> tuple[list[str], bool]:
        """(paths, explicit): the configured directories, or the defaults."""
        if self.state_dirs:
            return [self.resolve(p) for p in self.state_dirs], True
        return [self.resolve(p) for p in DEFAULT_STATE_DIRS], False

    def status_file_candidates(self) -> tuple[list[str], bool]:
        if self.status_file:
            return [self.resolve(self.status_file)], True
        return [self.resolve(p) for p in DEFAULT_STATUS_FILES], False

    def status_file_in_use(self) -> str | None:
        """The story status file the project reads: the first candidate that exists, or None."""
        return next((path for path in self.status_file_candidates()[0] if os.path.lexists(path)), None)

    def epics_dir_path(self) -> tuple[str, bool]:
        if self.epics_dir:
            return self.resolve(self.epics_dir), True
        return self.resolve(DEFAULT_EPICS_DIR), False

    def __repr__(self) -> str:
        return "ProjectPaths(root=%r, state_dirs=%r, status_file=%r, epics_dir=%r)" % (
            self.root, self.state_dirs, self.status_file, self.epics_dir)


ROOT_FINGERPRINT_HEX = 16  # 64 bits of a SHA-256: tells two project roots apart, says nothing of the path


def root_identity(root: str) -> dict[str, str]:
    """What a server tells its clients of the project it serves (README, "The WebSocket protocol"): `name`, the
    root folder's name, and `root`, a fingerprint of its real path, which a client compares with its own --root's
    (the path itself is not sent)."""
    import hashlib  # here: one-shot `status` never needs it
    real = os.path.realpath(root)
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:ROOT_FINGERPRINT_HEX]
    return {"name": os.path.basename(real) or real, "root": digest}


def check_root(root: str) -> None:
    """Raise ProjectUnreadable unless `root` is a directory that can be listed."""
    try:
        info = os.stat(root)
    except FileNotFoundError:
        raise ProjectUnreadable("the project root %s does not exist" % root)
    except OSError as exc:
        raise ProjectUnreadable("cannot read the project root %s: %s" % (root, os_reason(exc)))
    if not stat.S_ISDIR(info.st_mode):
        raise ProjectUnreadable("the project root %s is not a directory" % root)
    try:
        os.scandir(root).close()
    except OSError as exc:
        raise ProjectUnreadable("cannot list the project root %s: %s" % (root, os_reason(exc)))


def load_project(paths: ProjectPaths) -> Project:
    """Read every source under `paths` into a Project. Only an unreadable root raises (ProjectUnreadable)."""
    root = paths.root
    check_root(root)
    workflows, workflow_warnings, workflow_errors, state_dirs = load_workflows(paths)
    story_file, stories, story_warnings, story_errors = load_stories(paths)
    epics_dir, epics, epic_warnings, epic_errors = load_epics(paths)
    sources = {"root": root,
               "stateDirs": [display_path(d, root) for d in state_dirs],
               "statusFile": display_path(story_file, root) if story_file else None,
               "epicsDir": display_path(epics_dir, root) if epics_dir else None}
    return Project(root, workflows, stories, epics, workflow_warnings, workflow_errors,
                   story_warnings, story_errors, epic_warnings, epic_errors, sources)


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def _not_a_directory(path: str) -> str:
    """Why `path`, which `_is_dir` refused, is no directory to read."""
    return "is not a directory" if os.path.exists(path) else "does not exist"


def load_workflows(paths: ProjectPaths) -> tuple[list[Workflow], list[str], list[str], list[str]]:
    """(workflows sorted by name, warnings, errors, the state directories read)."""
    found_dirs, files, warnings, errors = list_workflow_sources(paths)
    records = [read_workflow_file(path, paths.root, boundary) for path, boundary in files]
    workflows, duplicate_warnings = assemble_workflows(records)
    return workflows, warnings + duplicate_warnings, errors, found_dirs


def list_workflow_sources(paths: ProjectPaths) -> tuple[list[str], list[tuple[str, str]], list[str], list[str]]:
    """The state directories and their state files: (directories found, [(file, symlink boundary)] in reading
    order, warnings, errors). The file watcher of the sync service uses this too."""
    root = paths.root
    candidates, explicit = paths.state_dir_candidates()
    warnings: list[str] = []
    errors: list[str] = []
    found_dirs: list[str] = []
    for directory in candidates:
        if _is_dir(directory):
            found_dirs.append(directory)
        elif explicit:
            warnings.append("workflow state directory %s %s" % (display_path(directory, root),
                                                                 _not_a_directory(directory)))
    if not found_dirs and not explicit:
        warnings.append("no workflow state directory (looked for %s)" % ", ".join(DEFAULT_STATE_DIRS))
    files: list[tuple[str, str]] = []
    for directory in list(found_dirs):
        refused = directory_error(directory, root)
        if refused:
            errors.append("workflow state directory %s: %s" % (display_path(directory, root), refused))
            found_dirs.remove(directory)
            continue
        try:
            listed = list_state_files(directory)
        except OSError as exc:
            errors.append("cannot list %s: %s" % (display_path(directory, root), os_reason(exc)))
            continue
        boundary = source_boundary(directory, root)
        files.extend((path, boundary) for path in listed)
    return found_dirs, files, warnings, errors


def source_boundary(directory: str, root: str) -> str:
    """The directory a symlinked source file in `directory` may not leave: the root, or `directory` itself when
    it was named explicitly outside the root."""
    return root if is_within(directory, root) else directory


def assemble_workflows(records: Iterable[Workflow]) -> tuple[list[Workflow], list[str]]:
    """Workflow records in reading order → (sorted by name, warnings for names read twice: the first wins)."""
    by_name: dict[str, Workflow] = {}
    warnings: list[str] = []
    for workflow in records:
        if workflow.name in by_name:
            warnings.append("%s: workflow %s is also in %s; the first is used"
                            % (workflow.source, workflow.name, by_name[workflow.name].source))
            continue
        by_name[workflow.name] = workflow
    return [by_name[name] for name in sorted(by_name)], warnings


def load_stories(paths: ProjectPaths) -> tuple[str | None, list[Story], list[str], list[str]]:
    """(the status file read or None, stories, warnings, errors)."""
    root = paths.root
    candidates, explicit = paths.status_file_candidates()
    path = paths.status_file_in_use()
    if path is not None:
        folder = os.path.dirname(path)
        refused = directory_error(folder, root)
        if refused:
            return None, [], [], ["story status file %s: its directory %s" % (display_path(path, root), refused)]
        story_file, error = read_story_file(path, root, source_boundary(folder, root))
        return path, story_file.stories, story_file.warnings, [error] if error else []
    if explicit:
        return None, [], ["story status file %s does not exist" % display_path(candidates[0], root)], []
    return None, [], ["no story status file (looked for %s)" % ", ".join(DEFAULT_STATUS_FILES)], []


def load_epics(paths: ProjectPaths) -> tuple[str | None, list[Epic], list[str], list[str]]:
    """(the epics directory read or None, epics sorted by id, warnings, errors)."""
    root = paths.root
    directory, explicit = paths.epics_dir_path()
    shown = display_path(directory, root)
    if not _is_dir(directory):
        return None, [], ["epics directory %s %s" % (shown, _not_a_directory(directory))], []
    refused = directory_error(directory, root)
    if refused:
        return None, [], [], ["epics directory %s: %s" % (shown, refused)]
    try:
        epic_paths, others = list_epic_files(directory)
    except OSError as exc:
        return directory, [], [], ["cannot list %s: %s" % (shown, os_reason(exc))]
    boundary = source_boundary(directory, root)
    warnings = ["%s/%s: not an epic file (epics are EPIC-*.md); ignored" % (shown, name) for name in others]
    by_id: dict[str, Epic] = {}
    for path in epic_paths:
        epic, warning = read_epic_file(path, root, boundary)
        if warning:
            warnings.append(warning)
        if epic.id in by_id:
            warnings.append("%s: epic %s is also in %s; the first is used"
                            % (epic.source, epic.id, by_id[epic.id].source))
            continue
        by_id[epic.id] = epic
    epics = [by_id[key] for key in sorted(by_id)]
    return directory, epics, warnings, []
