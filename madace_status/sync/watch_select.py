"""Which change detector `serve` uses: `--watcher auto|inotify|kqueue|poll`, and why a fallback was taken.

With an event backend the poller still runs, but only when the kernel says something happened in a watched
directory (after COALESCE_S, so a burst of writes costs one look) and as a slow safety rescan every
SAFETY_RESCAN_S, so a missed event can never leave a replica stale for long.
"""

import logging
import os
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


def open_backend(kind, paths):
    """(backend or None, active name, fallback reason or None). A backend asked for by name that is not
    available falls back to polling too (the reason says so): a live view beats no view."""
    if kind == "poll":
        return None, "poll", None
    if kind == "kqueue" or (kind == "auto" and not sys.platform.startswith("linux")):
        return None, "poll", "no kqueue backend yet; no event backend on %s" % sys.platform
    from madace_status.sync.inotify import InotifyUnavailable, InotifyWatcher
    try:
        return InotifyWatcher(watched_directories(paths)), "inotify", None
    except InotifyUnavailable as error:
        return None, "poll", str(error)
