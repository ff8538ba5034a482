"""Which change detector `serve` uses: `--watcher auto|inotify|kqueue|poll`, and why a fallback was taken.

With an event backend the poller still runs, but only when the kernel says something happened in a watched
directory (after COALESCE_S, so a burst of writes costs one look) and as a slow safety rescan every
SAFETY_RESCAN_S, so a missed event can never leave a replica stale for long.
"""

import logging
import os
import select
import sys

WATCHER_CHOICES = ("auto", "inotify", "kqueue", "poll")
SAFETY_RESCAN_S = 2.0
# With events, an idle file of a large directory (and the directory's listing) is looked at again this often
# by the safety rescan: the events name what changes, so this is only the net for a missed one.
EVENT_COLD_RECHECK_S = 30.0
COALESCE_S = 0.002  # a writer writing in chunks within this is read once, at its final content

logger = logging.getLogger("madace_status.sync")


def watched_directories(paths):
    """Every directory whose entries can change what a project reads."""
    state_dirs, _ = paths.state_dir_candidates()
    status_files, _ = paths.status_file_candidates()
    epics_dir, _ = paths.epics_dir_path()
    directories = list(state_dirs) + [epics_dir, paths.root] + [os.path.dirname(path) for path in status_files]
    return list(dict.fromkeys(os.path.abspath(directory) for directory in directories))


def watched_files(paths):
    """A callable listing the files a kqueue backend watches one by one (a vnode watch names no entry): the
    existing story file candidates, every epic file and every state file."""
    from madace_status.project.workflows import workflow_name
    from madace_status.sync.kqueue import regular_files

    def list_files():
        state_dirs, _ = paths.state_dir_candidates()
        status_files, _ = paths.status_file_candidates()
        epics_dir, _ = paths.epics_dir_path()
        directories = [(directory, lambda name: workflow_name(name) is not None) for directory in state_dirs]
        directories.append((epics_dir, lambda name: not name.startswith(".")))
        return regular_files(status_files, directories)
    return list_files


def _open_kqueue(paths):
    from madace_status.sync.kqueue import KqueueUnavailable, KqueueWatcher
    try:
        return KqueueWatcher(watched_directories(paths), watched_files(paths)), "kqueue", None
    except KqueueUnavailable as error:
        return None, "poll", str(error)


def _open_inotify(paths):
    try:
        from madace_status.sync.inotify import InotifyUnavailable, InotifyWatcher
    except ImportError as error:  # no ctypes (some minimal builds)
        return None, "poll", "no ctypes for inotify (%s)" % error
    try:
        return InotifyWatcher(watched_directories(paths)), "inotify", None
    except InotifyUnavailable as error:
        return None, "poll", str(error)


def open_backend(kind, paths):
    """(backend or None, active name, fallback reason or None). A backend asked for by name that is not
    available falls back to polling too (the reason says so): a live view beats no view. `auto` is inotify on
    Linux, kqueue where `select.kqueue` exists (macOS, the BSDs), polling elsewhere."""
    if kind == "poll":
        return None, "poll", None
    if kind == "kqueue" or (kind == "auto" and hasattr(select, "kqueue") and not sys.platform.startswith("linux")):
        return _open_kqueue(paths)
    if kind == "inotify" or sys.platform.startswith("linux"):
        return _open_inotify(paths)
    return None, "poll", "no event backend on %s (no inotify, no select.kqueue)" % sys.platform
