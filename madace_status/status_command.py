"""`madace-status status`: one-shot status of the project or of one entity (README, `madace-status status`).

Imports stay lean on purpose: this path runs for every invocation, so nothing here pulls in asyncio,
http.server or the sync machinery, and table-only modules load only for the table format. What this command
shares with `--watch` (exit codes, rendering, writing) lives one floor down, in `console`.
"""

import os
import sys

from madace_status import settings
from madace_status.console import (EXIT_NOT_FOUND, EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, UsageError, fail,
                                   render, silence_stdout, write_text)
from madace_status.project.loader import ProjectUnreadable, load_project
from madace_status.project.registry import (ACCEPTED_PATTERNS, EntityNotFound, UnrecognisedEntity,
                                            check_entity_text, resolve)

FORMATS = ("table", "json", "markdown")


class StatusOptions(object):
    """The status command's settings, from the command line first, then MADACE_STATUS_* variables."""

    __slots__ = ("entity", "format", "paths", "ascii", "watch")

    def __init__(self, entity, format, paths, ascii=False, watch=False):
        self.entity = entity
        self.format = format
        self.paths = paths
        self.ascii = ascii
        self.watch = watch

    @classmethod
    def from_args(cls, args, environ=None):
        env = os.environ if environ is None else environ
        fmt = settings.setting(getattr(args, "format", None), "FORMAT", env) or "table"
        if fmt not in FORMATS:
            raise UsageError("%sFORMAT must be one of %s (got %r)" % (settings.ENV_PREFIX, ", ".join(FORMATS), fmt))
        return cls(getattr(args, "entity", "") or "", fmt, settings.project_paths(args, env),
                   settings.flag(getattr(args, "ascii", False), "ASCII", env), bool(getattr(args, "watch", False)))


def run(args, stdout=None, stderr=None, environ=None):
    """Run the status command for parsed `args`; returns the exit code."""
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    env = os.environ if environ is None else environ
    try:
        options = StatusOptions.from_args(args, env)
    except UsageError as exc:
        return fail(stderr, str(exc), EXIT_USAGE)
    if options.watch:
        from madace_status import watch   # asyncio and the WebSocket client load only for --watch
        return watch.run(options, args, stdout, stderr, env)
    try:
        check_entity_text(options.entity.strip())
        project = load_project(options.paths)
        entity = resolve(project, options.entity)
    except UnrecognisedEntity as exc:
        return fail(stderr, "%s\n%s" % (exc, ACCEPTED_PATTERNS), EXIT_USAGE)
    except ProjectUnreadable as exc:
        return fail(stderr, "cannot read the project: %s" % exc, EXIT_UNREADABLE)
    except EntityNotFound as exc:
        return fail(stderr, str(exc), EXIT_NOT_FOUND)
    text = render(entity, options, stdout, env)
    try:
        write_text(stdout, text)
    except BrokenPipeError:
        silence_stdout(stdout)
    return EXIT_OK
