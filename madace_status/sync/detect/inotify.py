"""Linux inotify through ctypes: a handful of directory watches that tell the poll loop when to look.

The watches are on directories (the state directories, the epics directory, the story file's directory, the
root), never on files, so the number of watches does not grow with the project. A directory that does not
exist yet is replaced by its nearest existing ancestor, and the watch set is computed again after any event
(a handful of stat calls): a directory created, deleted or moved is picked up at once. The records are parsed
by the sans-I/O `inotify_events.InotifyParser` (README, "How changes are found").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from typing import Callable, Iterable, Tuple

from madace_status.sync.detect.inotify_events import (DIRECTORY_MASK, IN_CLOEXEC, IN_ISDIR, IN_NONBLOCK,
                                                       SELF_GONE_MASK, InotifyEvent, InotifyParser)
from madace_status.sync.detect.watch_select import BackendUnavailable, Detector
from madace_status.sync.detect.watcher import nearest_existing

__all__ = ["FORCE_UNAVAILABLE_ENV", "READ_BYTES", "InotifyUnavailable", "InotifyWatcher"]

READ_BYTES = 64 * 1024  # one read takes up to this much of the queue; the rest comes at the next readiness
FORCE_UNAVAILABLE_ENV = "MADACE_STATUS_TEST_NO_INOTIFY"  # tests only: behave as if inotify did not exist


# inotify_init1(flags), inotify_add_watch(fd, path, mask), inotify_rm_watch(fd, wd): each returns -1 on failure
_Calls = Tuple[Callable[[int], int], Callable[[int, bytes, int], int], Callable[[int, int], int]]


class InotifyUnavailable(BackendUnavailable):
    """inotify cannot be used here; str() says why (shown in /api/sync, /metrics and the start-up log)."""


def _libc() -> _Calls:
    if os.environ.get(FORCE_UNAVAILABLE_ENV):
        raise InotifyUnavailable("inotify disabled by %s" % FORCE_UNAVAILABLE_ENV)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        init, add, rm = libc.inotify_init1, libc.inotify_add_watch, libc.inotify_rm_watch
    except (OSError, AttributeError) as error:
        raise InotifyUnavailable("no inotify in the C library (%s)" % error)
    init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
    add.argtypes, add.restype = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int
    rm.argtypes, rm.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return init, add, rm


class InotifyWatcher:
    """Directory watches on an inotify descriptor. `fileno()` is registered with the loop; `read_events()` is
    called when it is readable; `rearm()` computes the watch set again."""

    name = Detector.INOTIFY

    def __init__(self, directories: Iterable[str]) -> None:
        self._init, self._add, self._rm = _libc()
        self._directories = list(directories)
        self._fd = self._init(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            raise InotifyUnavailable("inotify_init1 failed: %s" % os.strerror(ctypes.get_errno()))
        self._parser = InotifyParser()
        self._watches: dict[str, int] = {}  # watched path → wd
        self._directory_of: dict[int, str] = {}  # wd → watched path (the events name the wd), rebuilt by rearm
        try:
            self.rearm()
        except InotifyUnavailable:
            self.close()
            raise

    def fileno(self) -> int:
        return self._fd

    @property
    def watch_count(self) -> int:
        return len(self._watches)

    def rearm(self) -> None:
        wanted = {nearest_existing(directory) for directory in self._directories}
        try:
            for path in list(self._watches):
                if path not in wanted:
                    self._rm(self._fd, self._watches.pop(path))  # fails harmlessly when the kernel dropped it
            for path in sorted(wanted):
                wd = self._add(self._fd, os.fsencode(path), DIRECTORY_MASK)
                if wd < 0:
                    code = ctypes.get_errno()
                    if code == errno.ENOSPC:
                        raise InotifyUnavailable("inotify watch limit reached (fs.inotify.max_user_watches)")
                    continue  # gone between the stat and the watch: the next event or safety rescan catches up
                old = self._watches.get(path)
                if old is not None and old != wd:
                    self._rm(self._fd, old)  # the path is another directory now: the old one's watch goes
                self._watches[path] = wd
        finally:
            self._directory_of = {wd: path for path, wd in self._watches.items()}

    def paths_of(self, events: list[InotifyEvent]) -> list[str]:
        """The paths the events name (entries of watched directories)."""
        directories = self._directory_of
        return [os.path.join(directories[event.wd], event.name) for event in events
                if event.name and event.wd in directories]

    def structural_paths(self, events: list[InotifyEvent], is_structure: Callable[[str], bool]) -> list[str]:
        """The paths whose identity the events say changed: a watched directory that reported its own deletion
        or move, and an entry of a watched directory for which `is_structure(path)` (a directory the project
        reads from, or one above it: created, deleted, renamed, or a symlink put in its place)."""
        directories = self._directory_of
        paths = []
        for event in events:
            directory = directories.get(event.wd)
            if directory is None:
                continue
            if not event.name:
                if event.mask & SELF_GONE_MASK:
                    paths.append(directory)
            elif is_structure(os.path.join(directory, event.name)):
                paths.append(os.path.join(directory, event.name))
        return paths

    def that_matter(self, events: list[InotifyEvent], cares_about: Callable[[str], bool]) -> list[InotifyEvent]:
        """The events worth a look: about a watched directory itself (or the queue), a directory entry, or a
        path `cares_about` (PollingWatcher.cares_about). The rest — the temporary file of an atomic write, an
        editor's swap file — would only make the service stat and read what did not change."""
        directories = self._directory_of
        return [event for event in events if not event.name or event.mask & IN_ISDIR or event.needs_rearm
                or event.wd not in directories or cares_about(os.path.join(directories[event.wd], event.name))]

    def read_events(self) -> list[InotifyEvent]:
        """The events queued now (possibly none)."""
        events: list[InotifyEvent] = []
        while True:
            try:
                data = os.read(self._fd, READ_BYTES)
            except BlockingIOError:
                return events
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                raise
            if not data:
                return events
            events.extend(self._parser.feed(data))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
