"""What `status` and `status --watch` share on the terminal side: exit codes, usage errors, an entity rendered
for a stream, and writing to a stream that may refuse characters or go away.

Both commands import this module and neither imports the other's internals (`status_command` only starts
the watch). Imports stay lean on purpose: this path runs for every `status`, so table-only modules load only
for the table format.
"""

import os

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_UNREADABLE = 3

PROG = "madace-status"


class UsageError(Exception):
    """A bad option value found after argparse (e.g. in an environment variable)."""


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


def is_terminal(stream):
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def terminal_width():
    import shutil
    return shutil.get_terminal_size().columns


def can_encode(stream, sample):
    """True when `stream`'s encoding can carry `sample`."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        sample.encode(encoding)
    except (UnicodeError, LookupError):
        return False
    return True


def write_text(stream, text):
    """Write and flush; characters the stream's encoding cannot carry become replacement marks."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "replace").decode(encoding))
    stream.flush()


def silence_stdout(stream):
    """After EPIPE (`| head`), point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def fail(stderr, message, code):
    """`madace-status: message` on stderr; returns `code`."""
    stderr.write("%s: %s\n" % (PROG, message))
    stderr.flush()
    return code
