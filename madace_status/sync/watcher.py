"""Change detection by polling: which watched files changed, appeared or disappeared since the last poll.

A file's signature is `(st_mtime_ns, st_size, st_ino)`: an in-place write changes the time or size, an atomic
rename changes the inode. Directories that do not exist yet are looked for again at every poll, so a state
directory created after start-up is picked up.

Polling cost grows with the number of files, so a large directory is polled in two speeds. Its listing is
read again only when the directory's own signature changes (a file created, removed or renamed into it),
at the poll after that, and every FULL_RESCAN_S. A file that changed in the last HOT_FOR_S seconds is stat'ed at every poll; the
others — idle ones — are stat'ed in turns so that each is still checked every COLD_RECHECK_S. Directories
of at most ALWAYS_STAT_ENTRIES entries (every ordinary project) have every file stat'ed at every poll.

With an event backend (it sets `full_pass_s`) that full pass is the safety net, at most every `full_pass_s`;
the looks in between stat the files the events named, and list a directory only when its signature changed
or an event named a file it does not hold yet (`mark_hot`).
"""

import math
import os
import time

from madace_status.project.workflows import workflow_name

ALWAYS_STAT_ENTRIES = 64
HOT_FOR_S = 10.0
COLD_RECHECK_S = 0.5
FULL_RESCAN_S = 2.0


def nearest_existing(path):
    """`path` if it is a directory, else its nearest ancestor that is one (what an event backend watches for a
    directory that does not exist yet)."""
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def file_signature(path):
    """(st_mtime_ns, st_size, st_ino) of `path` (following symlinks), or None when it cannot be stat'ed."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class _Directory:
    """One watched directory: its signature, and its accepted entries as last listed."""

    __slots__ = ("path", "accepts", "signature", "entries", "entry_set", "listed_at", "cold_cursor",
                 "changed_last_poll")

    def __init__(self, path, accepts):
        self.path = path
        self.accepts = accepts
        self.signature = None
        self.entries = []
        self.entry_set = frozenset()
        self.listed_at = None
        self.cold_cursor = 0
        self.changed_last_poll = False


class PollingWatcher:
    """Watches single files and the matching entries of directories.

    `files`: paths watched one by one (they may not exist yet). `directories`: (path, accepts) pairs where
    `accepts(name)` says which entry names count. `poll()` returns {path: signature or None} for every path
    whose signature changed since the previous poll (None: it is gone). The first poll reports every existing
    path.
    """

    def __init__(self, files=(), directories=(), clock=time.monotonic):
        self._files = list(files)
        self._directories = [_Directory(path, accepts) for path, accepts in directories]
        self._signatures = {}
        self._changed_at = {}  # path → clock time of its last change (what makes it "hot")
        self._clock = clock
        self._last_poll = None
        # Each idle file of a large directory is stat'ed at least this often; an event backend raises it (it
        # names the files that change, so the rounds are only a safety net).
        self.cold_recheck_s = COLD_RECHECK_S
        self.full_rescan_s = FULL_RESCAN_S
        # None: every poll stats every file of a small directory and lists it. An event backend sets a period:
        # a look within it of the last full pass stats only the files the events named (and lists a directory
        # only when it changed or an event named a file it does not hold yet); the full pass is the safety net.
        self.full_pass_s = None
        self._last_full_pass = None
        self._named_new_in = set()  # directories in which an event named a file not listed yet
        # What an event backend's path must be for a look to be worth it (cares_about), as absolute paths.
        self._accepts_in = {os.path.abspath(path): accepts for path, accepts in directories}
        self._file_set = frozenset(os.path.abspath(path) for path in self._files)
        self._ancestors = frozenset(_with_ancestors(list(self._accepts_in) + list(self._file_set)))

    @property
    def watched_paths(self):
        return list(self._signatures)

    def cares_about(self, path):
        """Whether a change at `path` (absolute) can change what a poll reports: a watched file, an entry of a
        watched directory that it accepts, or a watched directory or an ancestor of one (created, replaced or
        moved). An editor's swap file or an engine's temporary file beside a state file is none of these."""
        if path in self._file_set or path in self._ancestors:
            return True
        directory, name = os.path.split(path)
        accepts = self._accepts_in.get(directory)
        return accepts is not None and accepts(name)

    def mark_hot(self, paths):
        """Paths an event backend named: checked at every poll for the next HOT_FOR_S, like a changed file."""
        now = self._clock()
        for path in paths:
            self._changed_at[path] = now
            if path not in self._signatures:
                self._named_new_in.add(os.path.dirname(path))

    def poll(self):
        now = self._clock()
        elapsed = now - self._last_poll if self._last_poll is not None else None
        changes = {}
        full = self.full_pass_s is None or self._last_full_pass is None or \
            now - self._last_full_pass >= self.full_pass_s
        if full:
            self._last_full_pass = now
        for path in self._files:
            self._check(path, now, changes)
        hot = self._hot(now)
        for directory in self._directories:
            self._poll_directory(directory, now, elapsed, changes, hot, full)
        self._named_new_in.clear()
        self._last_poll = now
        return changes

    def _hot(self, now):
        """The paths that changed (or were named by an event) in the last HOT_FOR_S; older ones are forgotten, so
        this stays as small as the set of files actually changing, whatever the directory's size."""
        changed_at = self._changed_at
        cold = [path for path, at in changed_at.items() if now - at >= HOT_FOR_S]
        for path in cold:
            del changed_at[path]
        return list(changed_at)

    def _check(self, path, now, changes):
        signature = file_signature(path)
        if signature != self._signatures.get(path):
            changes[path] = signature
            if self._last_poll is not None:  # the first poll finds what exists: that is not a change
                self._changed_at[path] = now
            if signature is None:
                self._signatures.pop(path, None)
            else:
                self._signatures[path] = signature

    def _forget(self, path, changes):
        if path in self._signatures:
            del self._signatures[path]
            changes[path] = None
        self._changed_at.pop(path, None)

    def _poll_directory(self, directory, now, elapsed, changes, hot, full):
        signature = file_signature(directory.path)
        changed = signature != directory.signature
        small = len(directory.entries) <= ALWAYS_STAT_ENTRIES
        # Small directories are listed at every full pass. Any directory is listed when its signature changed,
        # and at the poll after that too: the kernel's timestamps are coarse (a few ms), so a second change
        # within the same tick as the first leaves the signature as it was; and when an event named a file
        # it does not hold (created within such a tick).
        relist = changed or directory.changed_last_poll or (small and full) or \
            directory.path in self._named_new_in or directory.listed_at is None or \
            now - directory.listed_at >= self.full_rescan_s
        directory.changed_last_poll = changed
        if relist:
            old_entries = directory.entries
            directory.signature = signature
            directory.listed_at = now
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
        # Then the next files in turn (hot ones included: a second stat is harmless), enough of them this poll
        # that each one's turn comes at least every cold_recheck_s. The cost is that slice, not the directory.
        count = min(len(entries), max(1, math.ceil(len(entries) * elapsed / self.cold_recheck_s)))
        start = directory.cold_cursor % len(entries)
        for index in range(start, start + count):
            self._check(entries[index % len(entries)], now, changes)
        directory.cold_cursor = (start + count) % len(entries)

    @staticmethod
    def _list(directory):
        try:
            with os.scandir(directory.path) as entries:
                return sorted(entry.path for entry in entries if directory.accepts(entry.name))
        except OSError:
            return []  # missing or unreadable for now: looked for again at the next poll


def _with_ancestors(paths):
    for path in paths:
        while True:
            yield path
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent


def project_watcher(paths):
    """A PollingWatcher over every file a project (`project.loader.ProjectPaths`) is read from: the state files,
    the story file candidates, every entry of the epics directory, and the root itself (to notice it go)."""
    state_dirs, _ = paths.state_dir_candidates()
    status_files, _ = paths.status_file_candidates()
    epics_dir, _ = paths.epics_dir_path()
    directories = [(directory, lambda name: workflow_name(name) is not None) for directory in state_dirs]
    directories.append((epics_dir, lambda name: not name.startswith(".")))
    return PollingWatcher(files=status_files + [paths.root], directories=directories)
