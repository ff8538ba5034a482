"""macOS and the BSDs: `select.kqueue` with EVFILT_VNODE watches that tell the poll loop when to look.

The same contract as the inotify backend (`fileno()`, `read_events()`, `that_matter()`, `paths_of()`, `rearm()`,
`close()`):
the kqueue descriptor is registered with the loop; each batch of kevents becomes VnodeChanges (sans-I/O, in
`kqueue_events`); the paths they name are stat'ed at the next poll. A vnode watch needs an open descriptor per
path, and names no entry, so the directories (state directories, epics directory, the story file's directory,
the root; a missing one through its nearest existing ancestor) *and* the story file, each epic file and each
state file are watched, within `kqueue_events.MAX_DESCRIPTORS`: a project needing more is polled.

Descriptors are opened O_RDONLY | O_EVTONLY (macOS: the watch does not keep a volume from unmounting) |
O_CLOEXEC | O_NONBLOCK (never block on a special file), and all closed at close; a rearm closes every one that
no longer stands for its path (device and inode compared) and opens what is missing (README, "How changes are
found").
"""

from __future__ import annotations

import errno
import os
import select
import stat
from typing import Any, Callable, Iterable

from madace_status.sync.detect.kqueue_events import (
    VNODE_FFLAGS, BudgetExceeded, Plan, VnodeChange, descriptor_budget, files_by_directory, interpret,
    paths_to_recheck, plan_watches)
from madace_status.sync.detect.watch_select import BackendUnavailable, Detector
from madace_status.sync.detect.watcher import Accepts, nearest_existing

__all__ = ["FORCE_UNAVAILABLE_ENV", "MAX_EVENTS_PER_READ", "OPEN_FLAGS", "KqueueUnavailable", "KqueueWatcher",
           "regular_files"]

MAX_EVENTS_PER_READ = 256  # one control() call takes up to this many kevents; a full batch is followed by another
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_EVTONLY", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
FORCE_UNAVAILABLE_ENV = "MADACE_STATUS_TEST_NO_KQUEUE"  # tests only: behave as if kqueue did not exist

# typeshed declares select.kqueue, select.kevent and the KQ_* constants only where they exist (not on Linux, where
# the tests put stand-ins in their place): they are reached through this untyped view of the module.
_select: Any = select


class KqueueUnavailable(BackendUnavailable):
    """kqueue cannot be used here; str() says why (shown in /api/sync, /metrics and the start-up log)."""


def _soft_fd_limit() -> int | None:
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    return None if soft == getattr(resource, "RLIM_INFINITY", -1) else soft


def _same_file(fd: int, path: str) -> bool:
    """Whether the open descriptor still stands for what `path` names now (not replaced by a rename)."""
    try:
        held, current = os.fstat(fd), os.stat(path)
    except (OSError, ValueError):
        return False
    return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)


class KqueueWatcher:
    """Vnode watches on a kqueue. `directories`: where entries can change what a project reads (they may not
    exist yet). `list_files()`: the existing regular files to watch one by one (called at every rearm)."""

    name = Detector.KQUEUE

    def __init__(self, directories: Iterable[str], list_files: Callable[[], list[str]]) -> None:
        if os.environ.get(FORCE_UNAVAILABLE_ENV):
            raise KqueueUnavailable("kqueue disabled by %s" % FORCE_UNAVAILABLE_ENV)
        if not hasattr(select, "kqueue"):
            raise KqueueUnavailable("no select.kqueue on this platform")
        self._directories = list(directories)
        self._list_files = list_files
        self._budget = descriptor_budget(_soft_fd_limit())
        self._watches: dict[int, tuple[str, bool]] = {}  # descriptor → (path, is_directory)
        self._gone: set[int] = set()  # descriptors whose path was deleted, renamed or revoked: reopened at rearm
        self._files_by_directory: dict[str, list[str]] = {}
        self._kqueue: Any = None  # the select.kqueue, until close()
        try:
            self._kqueue = _select.kqueue()  # non-inheritable (PEP 446): closed across exec
        except OSError as error:
            raise KqueueUnavailable("kqueue() failed: %s" % (error.strerror or error))
        try:
            self.rearm()
        except KqueueUnavailable:
            self.close()
            raise

    def fileno(self) -> int:
        return int(self._kqueue.fileno())

    @property
    def watch_count(self) -> int:
        return len(self._watches)

    def _plan(self) -> Plan:
        directories = sorted({nearest_existing(directory) for directory in self._directories})
        try:
            return plan_watches(directories, self._list_files(), self._budget)
        except BudgetExceeded as error:
            raise KqueueUnavailable(str(error))

    def rearm(self) -> None:
        """Compute the watch set again (a handful of stats): close every descriptor that no longer stands for a
        wanted path (the path went, was replaced by a rename, or a watch reported itself gone), open the missing
        ones, keep the rest. A kevent queued for a closed descriptor is dropped by the kernel or by `interpret`."""
        plan = self._plan()
        wanted = dict(plan)
        kept: dict[str, int] = {}
        for fd, (path, is_directory) in list(self._watches.items()):
            if fd not in self._gone and wanted.get(path) == is_directory and _same_file(fd, path):
                kept[path] = fd
            else:
                self._close_watch(fd)
        self._gone = set()
        changes: list[Any] = []  # select.kevent
        for path, is_directory in plan:
            if path in kept:
                continue
            try:
                fd = os.open(path, OPEN_FLAGS)
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE):
                    raise KqueueUnavailable("out of file descriptors for kqueue watches (%d wanted)" % len(plan))
                continue  # gone or unreadable since the listing: the next event or safety rescan catches up
            self._watches[fd] = (path, is_directory)
            changes.append(_select.kevent(fd, filter=_select.KQ_FILTER_VNODE,
                                          flags=_select.KQ_EV_ADD | _select.KQ_EV_CLEAR, fflags=VNODE_FFLAGS))
        if changes:
            try:
                self._kqueue.control(changes, 0, 0)  # no events asked for: a failed registration raises
            except OSError as error:
                self._close_watches()
                raise KqueueUnavailable("kevent registration failed: %s" % (error.strerror or error))
        self._files_by_directory = files_by_directory(list(self._watches.values()), os.path.dirname)

    def read_events(self) -> list[VnodeChange]:
        """The changes queued now (possibly none), one VnodeChange per watched path."""
        kevents: list[Any] = []  # select.kevent
        while True:
            try:
                batch = self._kqueue.control(None, MAX_EVENTS_PER_READ, 0)
            except InterruptedError:
                continue
            kevents.extend(batch)
            if len(batch) < MAX_EVENTS_PER_READ:
                changes = interpret(kevents, self._watches, _select.KQ_FILTER_VNODE)
                self._gone.update(change.ident for change in changes if change.gone)
                return changes

    @staticmethod
    def that_matter(events: list[VnodeChange], cares_about: Callable[[str], bool]) -> list[VnodeChange]:
        """Every event: kqueue watches only what the project reads (a directory's change names no entry)."""
        return events

    def paths_of(self, events: list[VnodeChange]) -> list[str]:
        """The paths the changes name, with the watched files of a directory whose entries changed."""
        return paths_to_recheck(events, self._files_by_directory)

    @staticmethod
    def structural_paths(events: list[VnodeChange], is_structure: Callable[[str], bool]) -> list[str]:
        """The watched directories that went, were renamed or revoked (their entries changing is not that)."""
        return [change.path for change in events if change.is_directory and change.gone]

    def _close_watch(self, fd: int) -> None:
        self._watches.pop(fd, None)
        try:
            os.close(fd)  # closing the descriptor removes its knote from the kqueue
        except OSError:
            pass

    def _close_watches(self) -> None:
        for fd in list(self._watches):
            self._close_watch(fd)
        self._files_by_directory = {}

    def close(self) -> None:
        self._close_watches()
        if self._kqueue is not None:
            self._kqueue.close()
            self._kqueue = None


def regular_files(candidates: Iterable[str], directories: Iterable[tuple[str, Accepts]]) -> list[str]:
    """The existing regular files among `candidates`, then the accepted regular entries of each (path, accepts)
    directory, sorted: what `KqueueWatcher` watches one by one."""
    files: list[str] = []
    for path in candidates:
        try:
            if stat.S_ISREG(os.stat(path).st_mode):
                files.append(os.path.abspath(path))
        except (OSError, ValueError):
            continue
    for directory, accepts in directories:
        try:
            with os.scandir(directory) as entries:
                files.extend(sorted(os.path.abspath(entry.path) for entry in entries
                                    if accepts(entry.name) and entry.is_file()))
        except OSError:
            continue  # missing or unreadable: its nearest existing ancestor is watched instead
    return files

