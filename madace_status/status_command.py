"""`madace-status status`: one-shot status of the project or of one entity (README, `madace-status status`).

Imports stay lean on purpose: this path runs for every invocation, so nothing here pulls in asyncio,
http.server or the sync machinery, and table-only modules load only for the table format. What this command
shares with `--watch` (exit codes, rendering, writing) lives one floor down, in `console`.
"""

from __future__ import annotations

import os
import sys

from madace_status import settings
from madace_status.choices import OUTPUT_FORMATS, ExitCode
from madace_status.console import UsageError, fail, render, silence_stdout, write_text
from madace_status.project.loader import ProjectUnreadable, check_root, load_project
from madace_status.project.registry import (ACCEPTED_PATTERNS, EntityNotFound, UnrecognisedEntity,
                                            check_entity_text, resolve)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not loaded at run time: every `status` pays for each import
    import argparse
    from typing import Mapping, Optional, TextIO

    from madace_status.project.loader import ProjectPaths

__all__ = ["StatusSettings", "WATCH_ONLY_OPTIONS", "refuse_watch_only_options", "run"]

# Options (argparse destinations) that only the live view reads; their variables may be set for every run, so only
# the command line is checked.
WATCH_ONLY_OPTIONS = ("interval", "server", "token", "watcher", "exit_status", "until", "timeout", "cafile")
HISTORY_ENTITY = "history"  # `status history`: the flow history, not a project entity


class StatusSettings:
    """The status command's settings, resolved once: the command line first, then MADACE_STATUS_* variables,
    then the defaults. The live view's own (--interval, --server, --token, --watcher) are resolved by the watch
    when it starts (watch/settings.py), so a one-shot `status` never loads them."""

    __slots__ = ("entity", "format", "paths", "ascii", "watch")

    def __init__(self, entity: str, format: str, paths: ProjectPaths, ascii: bool = False,
                 watch: bool = False) -> None:
        self.entity = entity
        self.format = format
        self.paths = paths
        self.ascii = ascii
        self.watch = watch

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Optional[Mapping[str, str]] = None) -> StatusSettings:
        env = os.environ if environ is None else environ
        fmt = settings.setting(getattr(args, "format", None), "FORMAT", env) or "table"
        if fmt not in OUTPUT_FORMATS:
            raise UsageError("%sFORMAT must be one of %s (got %r)" % (settings.ENV_PREFIX, ", ".join(OUTPUT_FORMATS),
                                                                        fmt))
        return cls(getattr(args, "entity", "") or "", fmt, settings.project_paths(args, env),
                   settings.flag(getattr(args, "ascii", False), "ASCII", env), bool(getattr(args, "watch", False)))


def refuse_watch_only_options(args: argparse.Namespace, allowed: tuple[str, ...] = ()) -> None:
    """UsageError when an option of the live view is given without --watch (it would be silently ignored)."""
    given = ["--" + option.replace("_", "-") for option in WATCH_ONLY_OPTIONS
             if option not in allowed and getattr(args, option, None) is not None]
    if given:
        raise UsageError("%s only %s with --watch" % (" and ".join(given), "applies" if len(given) == 1 else "apply"))


def history(options: StatusSettings, args: argparse.Namespace, stdout: TextIO, stderr: TextIO,
            env: Mapping[str, str]) -> int:
    """`status history` (README, "`status history`"): the flow history as `serve` serves it, from the stored
    samples and git, without a server; --since and --until (a day or a UTC time) bound it."""
    if options.watch:
        raise UsageError("history has no live view: leave out --watch")
    refuse_watch_only_options(args, allowed=("until",))
    from madace_status.console import can_encode, terminal_width, use_color
    from madace_status.project.render import history as history_render  # loaded only for history
    from madace_status.project.render.table import TableStyle
    from madace_status.project.render.text import glyphs_for
    from madace_status.project.time_range import time_bound, within
    from madace_status.sync import read_history  # git and the history file: loaded only for history
    try:
        since = time_bound(getattr(args, "since", None), end=False)
        until = time_bound(getattr(args, "until", None), end=True)
    except ValueError as error:
        raise UsageError("--since and --until: %s" % error)
    try:
        check_root(options.paths.root)  # the root must be readable, as for every status
    except ProjectUnreadable as exc:
        return fail(stderr, "cannot read the project: %s" % exc, ExitCode.UNREADABLE)
    found, warnings = read_history(options.paths.root, options.paths.status_file_in_use(), env)
    samples = within(found, since, until)
    if options.format == "json":
        text = history_render.render_history_json(samples, warnings)
        if not can_encode(stdout, text):
            text = history_render.render_history_json(samples, warnings, ensure_ascii=True)
    else:
        glyphs = glyphs_for(getattr(stdout, "encoding", None), options.ascii)
        if options.format == "markdown":
            text = history_render.render_history_markdown(samples, warnings, glyphs)
        else:
            style = TableStyle(glyphs=glyphs, color=use_color(stdout, env), width=terminal_width())
            text = history_render.render_history_table(samples, warnings, style)
    try:
        write_text(stdout, text)
    except BrokenPipeError:
        silence_stdout(stdout)
    return ExitCode.OK


def run(args: argparse.Namespace, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None,
        environ: Optional[Mapping[str, str]] = None) -> int:
    """Run the status command for parsed `args`; returns the exit code."""
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    env = os.environ if environ is None else environ
    try:
        options = StatusSettings.from_args(args, env)
        if options.entity.strip().lower() == HISTORY_ENTITY:
            return history(options, args, stdout, stderr, env)
        if getattr(args, "since", None) is not None:
            raise UsageError("--since only applies to status history")
        if not options.watch:
            refuse_watch_only_options(args)
    except UsageError as exc:
        return fail(stderr, str(exc), ExitCode.USAGE)
    # The root is checked once, as one-shot status does, before a watch starts: a root that cannot be read is an
    # exit code, not a live view of an error. Whether the entity exists is the shown project's to say (the
    # server's when --server names one), so the watch decides that.
    try:
        check_entity_text(options.entity.strip())
        project = load_project(options.paths)
        if options.watch:
            from madace_status import watch   # asyncio and the WebSocket client load only for --watch
            return watch.run(options, args, stdout, stderr, env, project=project)
        entity = resolve(project, options.entity)
    except UnrecognisedEntity as exc:
        return fail(stderr, "%s\n%s" % (exc, ACCEPTED_PATTERNS), ExitCode.USAGE)
    except ProjectUnreadable as exc:
        return fail(stderr, "cannot read the project: %s" % exc, ExitCode.UNREADABLE)
    except EntityNotFound as exc:
        return fail(stderr, str(exc), ExitCode.NOT_FOUND)
    text = render(entity, options, stdout, env)
    try:
        write_text(stdout, text)
    except BrokenPipeError:
        silence_stdout(stdout)
    return ExitCode.OK
