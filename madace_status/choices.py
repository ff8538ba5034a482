"""The values the commands' options and exits take, defined once: the exit codes, the change detectors, the
output formats and the compression modes (README, "Options"). Standard library only: every layer may
import it, and `cli` builds its `choices=` from it without loading what the commands run."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """A command's exit status (README, "Exit codes"); equal to the number the shell sees."""

    OK = 0
    NOT_FOUND = 1  # status: no such story, epic or workflow
    FAILED = 1  # serve: a port in use or that cannot be bound; status --watch --exit-status: the workflow failed
    USAGE = 2  # a bad option, variable or ENTITY
    UNREADABLE = 3  # the project root cannot be read
    TIMED_OUT = 124  # status --watch --timeout: what timeout(1) exits with
    INTERRUPTED = 130  # 128 + SIGINT, as shells report it


WATCHER_BACKENDS = ("inotify", "kqueue", "poll")  # change detectors, in the order `auto` tries them
WATCHER_CHOICES = ("auto",) + WATCHER_BACKENDS
OUTPUT_FORMATS = ("table", "json", "markdown")
COMPRESSION_MODES = ("auto", "off")  # serve --compression: permessage-deflate when offered, or never

__all__ = ["COMPRESSION_MODES", "OUTPUT_FORMATS", "WATCHER_BACKENDS", "WATCHER_CHOICES", "ExitCode"]
