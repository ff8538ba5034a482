"""Change detection by polling: which watched files changed, appeared or disappeared since the last poll.

A file's signature is `(st_mtime_ns, st_size, st_ino)`: an in-place write changes the time or size, an atomic
rename changes the inode. Directories that do not exist yet are looked for again at every poll, so a state
directory created after start-up is picked up.
"""

import os

from madace_status.project.workflows import workflow_name


def file_signature(path):
    """(st_mtime_ns, st_size, st_ino) of `path` (following symlinks), or None when it cannot be stat'ed."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class PollingWatcher:
    """Watches single files and the matching entries of directories.

    `files`: paths watched one by one (they may not exist yet). `directories`: (path, accepts) pairs where
    `accepts(name)` says which entry names count. `poll()` returns {path: signature or None} for every path
    whose signature changed since the previous poll (None: it is gone). The first poll reports every existing
    path.
    """

    def __init__(self, files=(), directories=()):
        self._files = list(files)
        self._directories = list(directories)
        self._signatures = {}

    @property
    def watched_paths(self):
        return list(self._signatures)

    def _current(self):
        current = {}
        for path in self._files:
            signature = file_signature(path)
            if signature is not None:
                current[path] = signature
        for directory, accepts in self._directories:
            try:
                entries = os.scandir(directory)
            except OSError:
                continue  # missing for now: looked for again at the next poll
            with entries:
                for entry in entries:
                    if accepts(entry.name):
                        signature = file_signature(entry.path)
                        if signature is not None:
                            current[entry.path] = signature
        return current

    def poll(self):
        current = self._current()
        previous = self._signatures
        changes = {}
        for path, signature in current.items():
            if previous.get(path) != signature:
                changes[path] = signature
        for path in previous:
            if path not in current:
                changes[path] = None
        self._signatures = current
        return changes


def project_watcher(paths):
    """A PollingWatcher over every file a project (`project.loader.ProjectPaths`) is read from: the state files,
    the story file candidates, every entry of the epics directory, and the root itself (to notice it go)."""
    state_dirs, _ = paths.state_dir_candidates()
    status_files, _ = paths.status_file_candidates()
    epics_dir, _ = paths.epics_dir_path()
    directories = [(directory, lambda name: workflow_name(name) is not None) for directory in state_dirs]
    directories.append((epics_dir, lambda name: not name.startswith(".")))
    return PollingWatcher(files=status_files + [paths.root], directories=directories)
