"""What `status` and `status --watch` share on the terminal side: usage errors, an entity rendered
for a stream, and writing to a stream that may refuse characters or go away.

Both commands import this module and neither imports the other's internals (`status_command` only starts
the watch). Imports stay lean on purpose: this path runs for every `status`, so table-only modules load only
for the table format.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time (it would slow every `status`)
if TYPE_CHECKING:
    from typing import IO, Any, Mapping, Protocol, TextIO

    from madace_status.project.registry import Entity

    class RenderOptions(Protocol):
        """What `render` reads of the command's options (argparse's namespace has both)."""

        @property
        def format(self) -> str: ...

        @property
        def ascii(self) -> bool: ...

__all__ = ["UsageError", "render", "is_terminal", "can_encode", "write_text", "silence_stdout", "fail"]

PROG = "madace-status"


class UsageError(Exception):
    """A bad option value found after argparse (e.g. in an environment variable)."""


def render(entity: Entity, options: RenderOptions, stdout: TextIO, environ: Mapping[str, str]) -> str:
    """The text for `entity` in the chosen format, suited to `stdout` (encoding, TTY, width)."""
    if options.format == "json":
        from madace_status.project.render.envelope import render_json
        text = render_json(entity)
        if not can_encode(stdout, text):
            text = render_json(entity, ensure_ascii=True)
        return text
    from madace_status.project.render.text import glyphs_for
    glyphs = glyphs_for(_encoding(stdout), options.ascii)  # as the table format: ASCII when asked, or needed
    if options.format == "markdown":
        from madace_status.project.render.markdown import render_markdown
        return render_markdown(entity, glyphs)
    from madace_status.project.render.table import TableStyle, render_table
    style = TableStyle(glyphs=glyphs, color=use_color(stdout, environ),
                       width=terminal_width())
    return render_table(entity, style)


def use_color(stream: IO[Any] | None, environ: Mapping[str, str]) -> bool:
    """Colour only on a TTY, and never when NO_COLOR is set (no-color.org) or TERM is dumb."""
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    return is_terminal(stream)


def is_terminal(stream: IO[Any] | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def terminal_width() -> int:
    import shutil
    return shutil.get_terminal_size().columns


def _encoding(stream: IO[Any]) -> str:
    """The encoding `stream` writes in; ASCII when it does not say."""
    return getattr(stream, "encoding", None) or "ascii"


def can_encode(stream: IO[Any], sample: str) -> bool:
    """True when `stream`'s encoding can carry `sample`."""
    try:
        sample.encode(_encoding(stream))
    except (UnicodeError, LookupError):
        return False
    return True


def write_text(stream: TextIO, text: str) -> None:
    """Write and flush; characters the stream's encoding cannot carry become replacement marks."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = _encoding(stream)
        stream.write(text.encode(encoding, "replace").decode(encoding))
    stream.flush()


def silence_stdout(stream: IO[Any]) -> None:
    """After EPIPE (`| head`), point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def fail(stderr: TextIO, message: str, code: int) -> int:
    """`madace-status: message` on stderr; returns `code`."""
    stderr.write("%s: %s\n" % (PROG, message))
    stderr.flush()
    return code
