"""Change detection by polling: which watched files changed, appeared or disappeared since the last poll
(README, "How changes are found").

A file's signature is `(st_mtime_ns, st_size, st_ino, st_ctime_ns)`: an in-place write changes the times or
the size, an atomic rename changes the inode, and the change time cannot be set back (a tool that restores the
modification time still moves it). Directories that do not exist yet are looked for again at every poll, so a
state directory created after start-up is picked up.

Timestamps are coarse on most kernels (a clock tick, 1-10 ms; a whole second or two on some file systems): a
second write of the same size within the tick of the first leaves the signature as it was. A signature whose
change time is within RACY_WINDOW_S of the moment it was read is "racy" (git's word for the same problem):
the file is reported once more, as changed, at the first poll after the window (its content read again). An
event backend names each file it sees written (`mark_hot`), and those are reported whatever their signature,
so with events no racy re-check is needed.

Polling cost grows with the number of files, so a large directory is polled in two speeds. Its listing is
read again only when the directory's own signature changes (a file created, removed or renamed into it),
at the poll after that, and every FULL_RESCAN_S. A file that changed in the last HOT_FOR_S seconds is stat'ed
at every poll; the others — idle ones — are stat'ed in turns so that each is still checked every
COLD_RECHECK_S. Directories of at most ALWAYS_STAT_ENTRIES entries (every ordinary project) have every file
stat'ed at every poll.

With an event backend (it sets `full_pass_s`) that full pass is the safety net, at most every `full_pass_s`;
the looks in between stat the files the events named, and list a directory only when its signature changed
or an event named a file it does not hold yet (`mark_hot`).
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple

from madace_status.project.workflows import workflow_name

if TYPE_CHECKING:
    from madace_status.project.loader import ProjectPaths

__all__ = [
    "ALWAYS_STAT_ENTRIES", "COARSE_RACY_WINDOW_S", "COLD_RECHECK_S", "FULL_RESCAN_S", "HOT_FOR_S", "RACY_WINDOW_S",
    "Accepts", "Changes", "PollingWatcher", "Signature", "file_signature", "nearest_existing", "project_inputs",
    "project_watcher", "racy_window_ns",
]

Signature = Tuple[int, int, int, int]  # (st_mtime_ns, st_size, st_ino, st_ctime_ns): see file_signature
Changes = Dict[str, Optional[Signature]]  # what a poll reports: path → its signature now, None when it is gone
Accepts = Callable[[str], bool]  # which entry names of a watched directory count

ALWAYS_STAT_ENTRIES = 64
HOT_FOR_S = 10.0
COLD_RECHECK_S = 0.5
FULL_RESCAN_S = 2.0
# A signature read within this of its change time may hide a second change in the same clock tick (Linux: one
# jiffy, at most 10 ms); it is read again once the window has passed.
RACY_WINDOW_S = 0.02
# A change time in whole seconds comes from a file system that keeps no finer time (FAT: 2 s; HFS+, ext3, some
# network file systems: 1 s): the window is as wide as its tick.
COARSE_RACY_WINDOW_S = 2.0
_NS_PER_S = 1000 * 1000 * 1000


def nearest_existing(path: str) -> str:
    """`path` if it is a directory, else its nearest ancestor that is one (what an event backend watches for a
    directory that does not exist yet)."""
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def file_signature(path: str) -> Signature | None:
    """(st_mtime_ns, st_size, st_ino, st_ctime_ns) of `path` (following symlinks), or None when it cannot be
    stat'ed."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino, info.st_ctime_ns)


def racy_window_ns(signature: Signature, read_at_ns: int) -> int:
    """How long after `read_at_ns` (wall clock) a signature must be read again, in ns; 0 when it is not racy:
    its change time is older than the file system's tick (see the module's docstring)."""
    changed_ns = signature[3]
    window_s = COARSE_RACY_WINDOW_S if changed_ns % _NS_PER_S == 0 else RACY_WINDOW_S
    window_ns = int(window_s * _NS_PER_S)
    return window_ns if changed_ns >= read_at_ns - window_ns else 0


class _Directory:
    """One watched directory: its signature, and its accepted entries as last listed."""

    __slots__ = ("path", "accepts", "signature", "entries", "entry_set", "listed_at", "cold_cursor",
                 "changed_last_poll", "racy_until")

    def __init__(self, path: str, accepts: Accepts) -> None:
        self.path = path
        self.accepts = accepts
        self.signature: Signature | None = None
        self.entries: list[str] = []
        self.entry_set: frozenset[str] = frozenset()
        self.listed_at: float | None = None
        self.cold_cursor = 0
        self.changed_last_poll = False
        # The clock time after which a listing taken within its signature's tick is redone.
        self.racy_until: float | None = None


class PollingWatcher:
    """Watches single files and the matching entries of directories.

    `files`: paths watched one by one (they may not exist yet). `directories`: (path, accepts) pairs where
    `accepts(name)` says which entry names count. `poll()` returns {path: signature or None} for every path
    whose signature changed since the previous poll (None: it is gone), every path an event backend named
    since (`mark_hot`) that exists, and every racy path whose window has passed. The first poll, and the first
    after `reset()`, reports every existing path.
    """

    def __init__(self, files: Iterable[str] = (), directories: Sequence[tuple[str, Accepts]] = (),
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._files = list(files)
        self._directory_specs = list(directories)
        self._clock = clock
        self._wall_clock_ns = wall_clock_ns
        # With no event backend, a racy signature is read again after its window (an event names every write).
        self.racy_recheck = True
        self._full_read_requested = False
        self.reset()
        # Each idle file of a large directory is stat'ed at least this often; an event backend raises it (it
        # names the files that change, so the rounds are only a safety net).
        self.cold_recheck_s = COLD_RECHECK_S
        self.full_rescan_s = FULL_RESCAN_S
        # None: every poll stats every file of a small directory and lists it. An event backend sets a period:
        # a look within it of the last full pass stats only the files the events named (and lists a directory
        # only when it changed or an event named a file it does not hold yet); the full pass is the safety net.
        self.full_pass_s: float | None = None
        # What an event backend's path must be for a look to be worth it (cares_about), as absolute paths.
        self._accepts_in = {os.path.abspath(path): accepts for path, accepts in directories}
        self._file_set = frozenset(os.path.abspath(path) for path in self._files)
        self._ancestors = frozenset(_with_ancestors(list(self._accepts_in) + list(self._file_set)))
        # A watched directory or file, or a directory above one: an event naming it means the tree itself moved.
        self._structure = self._ancestors - self._file_set

    def reset(self) -> None:
        """Forget everything seen: the next poll reports every existing path, as the first one did (after a look
        that failed, the service reads the whole project again from this new baseline)."""
        self._directories = [_Directory(path, accepts) for path, accepts in self._directory_specs]
        self._signatures: dict[str, Signature] = {}
        self._changed_at: dict[str, float] = {}  # path → clock time of its last change (what makes it "hot")
        self._named: set[str] = set()  # paths an event named since the last poll: reported whatever their signature
        self._structure_changed: set[str] = set()  # directories an event said changed identity: reported as they are
        self._named_new_in: set[str] = set()  # directories in which an event named a file not listed yet
        self._racy: dict[str, float] = {}  # path → clock time after which its racy signature is read again
        self._real: dict[str, str] = {}  # watched directory or file → its real path at the last full pass
        self._read_at_ns = self._wall_clock_ns()  # the wall clock at the start of the poll (for racy_window_ns)
        self._last_poll: float | None = None
        self._last_full_pass: float | None = None

    @property
    def watched_paths(self) -> list[str]:
        return list(self._signatures)

    def cares_about(self, path: str) -> bool:
        """Whether a change at `path` (absolute) can change what a poll reports: a watched file, an entry of a
        watched directory that it accepts, or a watched directory or an ancestor of one (created, replaced or
        moved). An editor's swap file or an engine's temporary file beside a state file is none of these."""
        return path in self._ancestors or self._may_be_read(path)

    def request_full_read(self) -> None:
        """The event backend lost events (its queue overflowed): what changed is unknown, so the reader of this
        watcher should read everything again (take_full_read_request)."""
        self._full_read_requested = True

    def take_full_read_request(self) -> bool:
        """True once after request_full_read()."""
        requested, self._full_read_requested = self._full_read_requested, False
        return requested

    def is_structure(self, path: str) -> bool:
        """Whether `path` is a watched directory, or a directory above a watched directory or file."""
        return path in self._structure

    def mark_structure_changed(self, paths: Iterable[str]) -> None:
        """Paths an event backend says changed identity (see `is_structure`; a watched directory deleted or
        moved): reported at the next poll as they are, so the reader reads what depends on them again."""
        self._structure_changed.update(paths)

    def mark_hot(self, paths: Iterable[str]) -> None:
        """Paths an event backend named: reported at the next poll (the event is the proof of a write, whatever
        the signature says; a name the watcher never saw is reported as gone, and the reader decides), then
        checked at every poll for the next HOT_FOR_S, like a changed file."""
        now = self._clock()
        for path in paths:
            self._changed_at[path] = now
            self._named.add(path)
            if path not in self._signatures:
                self._named_new_in.add(os.path.dirname(path))

    def poll(self) -> Changes:
        now = self._clock()
        self._read_at_ns = self._wall_clock_ns()
        elapsed = now - self._last_poll if self._last_poll is not None else None
        changes: Changes = {}
        full = self.full_pass_s is None or self._last_full_pass is None or \
            now - self._last_full_pass >= self.full_pass_s
        if full:
            self._last_full_pass = now
            self._check_real_paths(changes)
        for path in self._files:
            self._check(path, now, changes)
        hot = self._hot(now)
        for directory in self._directories:
            self._poll_directory(directory, now, elapsed, changes, hot, full)
        self._recheck_named_and_racy(now, changes)
        self._named_new_in.clear()
        self._last_poll = now
        return changes

    def _check_real_paths(self, changes: Changes) -> None:
        """Report a watched directory or file whose real path changed: it (or a directory above it) was swapped
        for a symlink, or a symlink was pointed elsewhere. Its files may keep their signatures, yet whether they
        may be read at all (a symlink out of the root) changed: the reader decides, so it must look."""
        real_paths = self._real
        for path in [directory.path for directory in self._directories] + self._files:
            real = os.path.realpath(path)
            if real_paths.get(path, real) != real:
                changes[path] = file_signature(path)
            real_paths[path] = real

    def _recheck_named_and_racy(self, now: float, changes: Changes) -> None:
        """Report what an event named, and each racy signature whose window has passed, even when its signature
        is the one already seen (a write within the same clock tick). A named file the watcher never saw (made
        and removed between two polls, after the reader listed it) is reported as gone: the reader decides.
        A directory whose identity changed is reported as it is: the tree itself changed."""
        due: Sequence[str] = [path for path, until in self._racy.items() if until <= now] if self._racy else ()
        for path in due:
            del self._racy[path]
        for path in list(self._named) + list(due):
            if path in changes:
                continue
            signature = self._signatures.get(path)
            if signature is not None or self._may_be_read(path):
                changes[path] = signature
        for path in self._structure_changed:
            if path not in changes:
                changes[path] = file_signature(path)
        self._named.clear()
        self._structure_changed.clear()

    def _may_be_read(self, path: str) -> bool:
        """A watched file, or a name a watched directory accepts (whether it exists or not)."""
        if path in self._file_set:
            return True
        directory, name = os.path.split(path)
        accepts = self._accepts_in.get(directory)
        return accepts is not None and accepts(name)

    def _hot(self, now: float) -> list[str]:
        """The paths that changed (or were named by an event) in the last HOT_FOR_S; older ones are forgotten, so
        this stays as small as the set of files actually changing, whatever the directory's size."""
        changed_at = self._changed_at
        cold = [path for path, at in changed_at.items() if now - at >= HOT_FOR_S]
        for path in cold:
            del changed_at[path]
        return list(changed_at)

    def _check(self, path: str, now: float, changes: Changes) -> None:
        signature = file_signature(path)
        if signature != self._signatures.get(path):
            changes[path] = signature
            if self._last_poll is not None:  # the first poll finds what exists: that is not a change
                self._changed_at[path] = now
            if signature is None:
                self._signatures.pop(path, None)
                self._racy.pop(path, None)
            else:
                self._signatures[path] = signature
                self._mark_if_racy(path, signature, now)

    def _mark_if_racy(self, path: str, signature: Signature, now: float) -> None:
        if self.racy_recheck:
            window_ns = racy_window_ns(signature, self._read_at_ns)
            if window_ns:
                self._racy[path] = now + window_ns / _NS_PER_S
                self._changed_at[path] = now  # hot: stat'ed at every poll until then, even in a large directory

    def _forget(self, path: str, changes: Changes) -> None:
        if path in self._signatures:
            del self._signatures[path]
            changes[path] = None
        self._changed_at.pop(path, None)
        self._racy.pop(path, None)

    def _poll_directory(self, directory: _Directory, now: float, elapsed: float | None, changes: Changes,
                        hot: list[str], full: bool) -> None:
        signature = file_signature(directory.path)
        changed = signature != directory.signature
        small = len(directory.entries) <= ALWAYS_STAT_ENTRIES
        # Small directories are listed at every full pass. Any directory is listed when its signature changed,
        # and at the poll after that too: the kernel's timestamps are coarse (a few ms), so a second change
        # within the same tick as the first leaves the signature as it was; and when an event named a file
        # it does not hold (created within such a tick).
        racy_due = directory.racy_until is not None and directory.racy_until <= now
        relist = changed or directory.changed_last_poll or (small and full) or racy_due or \
            directory.path in self._named_new_in or directory.listed_at is None or \
            now - directory.listed_at >= self.full_rescan_s
        directory.changed_last_poll = changed
        if changed and directory.listed_at is not None and _identity(signature) != _identity(directory.signature):
            changes[directory.path] = signature  # it appeared, went or was replaced: the notices of it change too
        if relist:
            old_entries = directory.entries
            directory.signature = signature
            directory.listed_at = now
            window_ns = racy_window_ns(signature, self._read_at_ns) \
                if signature is not None and self.racy_recheck else 0
            directory.racy_until = now + window_ns / _NS_PER_S if window_ns else None
            directory.entries = self._list(directory) if signature is not None else []
            current = directory.entry_set = frozenset(directory.entries)
            for path in old_entries:
                if path not in current:
                    self._forget(path, changes)
            known = self._signatures
            for path in directory.entries:
                if path not in known:
                    self._check(path, now, changes)  # new: looked at now, whatever its speed would be
        entries = directory.entries
        if elapsed is None or (small and full):
            for path in entries:
                self._check(path, now, changes)
            return
        members = directory.entry_set
        for path in hot:
            if path in members:
                self._check(path, now, changes)
        if small:
            return  # a look between full passes: the files the events named
        if not entries:
            return  # emptied since the last listing: no turn to take
        # Then the next files in turn (hot ones included: a second stat is harmless), enough of them this poll
        # that each one's turn comes at least every cold_recheck_s. The cost is that slice, not the directory.
        count = min(len(entries), max(1, math.ceil(len(entries) * elapsed / self.cold_recheck_s)))
        start = directory.cold_cursor % len(entries)
        for index in range(start, start + count):
            self._check(entries[index % len(entries)], now, changes)
        directory.cold_cursor = (start + count) % len(entries)

    @staticmethod
    def _list(directory: _Directory) -> list[str]:
        try:
            with os.scandir(directory.path) as entries:
                return sorted(entry.path for entry in entries if directory.accepts(entry.name))
        except OSError:
            return []  # missing or unreadable for now: looked for again at the next poll


def _identity(signature: Signature | None) -> int | None:
    """A directory's identity in its signature: None when it does not exist, else its inode."""
    return None if signature is None else signature[2]


def _with_ancestors(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        while True:
            yield path
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent


def _is_state_file(name: str) -> bool:
    return workflow_name(name) is not None


def _is_not_hidden(name: str) -> bool:
    return not name.startswith(".")


def project_inputs(paths: ProjectPaths) -> tuple[list[str], list[tuple[str, Accepts]]]:
    """What a project is read from, as its paths say now: (the story file candidates, [(directory, accepts)] for
    each state directory candidate and the epics directory)."""
    state_dirs, _ = paths.state_dir_candidates()
    status_files, _ = paths.status_file_candidates()
    epics_dir, _ = paths.epics_dir_path()
    directories: list[tuple[str, Accepts]] = [(directory, _is_state_file) for directory in state_dirs]
    directories.append((epics_dir, _is_not_hidden))
    return status_files, directories


def project_watcher(paths: ProjectPaths) -> PollingWatcher:
    """A PollingWatcher over every file a project (`project.loader.ProjectPaths`) is read from: the state files,
    the story file candidates, every entry of the epics directory, and the root itself (to notice it go)."""
    status_files, directories = project_inputs(paths)
    return PollingWatcher(files=status_files + [paths.root], directories=directories)
