"""`status --watch`: the live terminal view (README, `madace-status status --watch`).

WebSocket first: the view keeps a replica of the project built from the server's `snapshot` and the events
that follow (`madace_status.sync.replica`, where the rules are written down), and renders it with the same
renderers as one-shot `status`. When the server cannot be reached, or drops, it polls the local files every
`--interval` seconds and reconnects in the background (exponential backoff with full jitter), resuming from
the last event it saw so nothing that changed meanwhile is missed.

One job per module: `settings` (options, the subscription, the server URL), `backoff`, `screen` (header and
frames), `keyboard` (`q`), `live` (the session, the polling fallback, the redraws); `run()` below is the command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING, Mapping, Optional, TextIO

from madace_status.choices import ExitCode
from madace_status.console import UsageError, fail
from madace_status.project.model import Project
from madace_status.project.registry import ACCEPTED_PATTERNS, EntityNotFound, UnrecognisedEntity, resolve
from madace_status.watch.goal import Goal
from madace_status.watch.live import LiveView
from madace_status.watch.settings import WatchSettings, initial_query

if TYPE_CHECKING:
    from madace_status.watch.live import ViewOptions

__all__ = ["STOPPED_MESSAGE", "run"]

STOPPED_MESSAGE = "Watch mode stopped"


def run(options: ViewOptions, args: argparse.Namespace, stdout: Optional[TextIO] = None,
        stderr: Optional[TextIO] = None, environ: Optional[Mapping[str, str]] = None,
        stdin: Optional[TextIO] = None, project: Optional[Project] = None) -> int:
    """Run `status --watch` until q, Ctrl+C or a signal; returns the exit code. `project`, --root's as the command
    read it: unless --server named a server (whose project is shown, whatever it is), an entity it does not hold
    is exit 1 at once, as for one-shot `status`."""
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    try:
        settings = WatchSettings.from_args(args, environ)
        query = initial_query(options.entity, options.paths)
        goal = Goal(query.kind, settings.until) if settings.exit_status or settings.until is not None else None
    except UsageError as error:
        return fail(stderr, str(error), ExitCode.USAGE)
    except UnrecognisedEntity as error:
        return fail(stderr, "%s\n%s" % (error, ACCEPTED_PATTERNS), ExitCode.USAGE)
    if project is not None and not settings.server_chosen:
        try:
            resolve(project, options.entity)
        except EntityNotFound as error:
            return fail(stderr, str(error), ExitCode.NOT_FOUND)
    view = LiveView(options, settings, query, stdout, environ, goal)
    try:
        code = asyncio.run(view.main(stdin))
    except KeyboardInterrupt:  # Ctrl+C before the signal handlers were in place
        code = ExitCode.OK
    if view.fatal_message is not None:
        return fail(stderr, view.fatal_message, code)
    if view.goal_reached:
        return code  # a script's wait is over: its exit code says how, nothing more to say
    try:
        stderr.write(STOPPED_MESSAGE + "\n")
        stderr.flush()
    except (OSError, ValueError):
        pass
    return code
