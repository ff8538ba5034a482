"""`madace-status status`: one-shot status of the project or of one entity (SPEC §5.1).

Imports stay lean on purpose: this path runs for every invocation, so nothing here pulls in asyncio,
http.server or the sync machinery, and table-only modules load only for the table format.
"""

import os
import sys

from madace_status import settings
from madace_status.project.loader import ProjectUnreadable, load_project
from madace_status.project.registry import (ACCEPTED_PATTERNS, EntityNotFound, UnrecognisedEntity,
                                            check_entity_text, resolve)

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_UNREADABLE = 3

FORMATS = ("table", "json", "markdown")
PROG = "madace-status"


class UsageError(Exception):
    """A bad option value found after argparse (e.g. in an environment variable)."""


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
        return _fail(stderr, str(exc), EXIT_USAGE)
    if options.watch:
        from madace_status import watch   # asyncio and the WebSocket client load only for --watch
        return watch.run(options, args, stdout, stderr, env)
    try:
        check_entity_text(options.entity.strip())
        project = load_project(options.paths)
        entity = resolve(project, options.entity)
    except UnrecognisedEntity as exc:
        return _fail(stderr, "%s\n%s" % (exc, ACCEPTED_PATTERNS), EXIT_USAGE)
    except ProjectUnreadable as exc:
        return _fail(stderr, "cannot read the project: %s" % exc, EXIT_UNREADABLE)
    except EntityNotFound as exc:
        return _fail(stderr, str(exc), EXIT_NOT_FOUND)
    text = render(entity, options, stdout, env)
    try:
        write_text(stdout, text)
    except BrokenPipeError:
        _silence_stdout(stdout)
    return EXIT_OK


def render(entity, options, stdout, environ):
    """The text for `entity` in the chosen format, suited to `stdout` (encoding, TTY, width)."""
    encoding = getattr(stdout, "encoding", None) or "ascii"
    if options.format == "json":
        from madace_status.project.render.envelope import render_json
        text = render_json(entity)
        try:
            text.encode(encoding)
        except (UnicodeError, LookupError):
            text = render_json(entity, ensure_ascii=True)
        return text
    if options.format == "markdown":
        from madace_status.project.render.markdown import render_markdown
        return render_markdown(entity)
    from madace_status.project.render.table import TableStyle, render_table
    from madace_status.project.render.text import glyphs_for
    style = TableStyle(glyphs=glyphs_for(encoding, options.ascii), color=use_color(stdout, environ),
                       width=terminal_width())
    return render_table(entity, style)


def use_color(stream, environ):
    """Colour only on a TTY, and never when NO_COLOR is set (no-color.org) or TERM is dumb."""
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def terminal_width():
    import shutil
    return shutil.get_terminal_size().columns


def write_text(stream, text):
    """Write and flush; characters the stream's encoding cannot carry become replacement marks."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "replace").decode(encoding))
    stream.flush()


def _silence_stdout(stream):
    """After EPIPE (`| head`), point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _fail(stderr, message, code):
    stderr.write("%s: %s\n" % (PROG, message))
    stderr.flush()
    return code
