"""Reading one source file safely: size limit, no FIFOs or devices, no symlink escaping the root."""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["MAX_STATE_FILE_BYTES", "MAX_MARKDOWN_BYTES", "MAX_LINE_CHARS", "MAX_LISTED_LINES", "SourceError",
           "SourceBusy", "display_path", "is_within", "is_busy_reason", "directory_error", "read_source",
           "decode_markdown", "os_reason"]

MAX_STATE_FILE_BYTES = 1024 * 1024          # a state file over 1 MiB is invalid (README, "What it reads")
MAX_MARKDOWN_BYTES = 4 * 1024 * 1024        # story status file and epics: generous, but bounded
# A longer markdown line is skipped with a warning: no real story, field or heading comes near it, and it
# bounds what any per-line pattern is given.
MAX_LINE_CHARS = 4096
MAX_LISTED_LINES = 5                         # line numbers named in that warning; the rest are counted
_READ_CHUNK_BYTES = 64 * 1024
# O_NOFOLLOW: a file swapped for a symlink after the containment check is refused, not followed.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
_NO_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)


class SourceError(Exception):
    """A file that cannot be used; str() is the reason, phrased for a person."""


class SourceBusy(SourceError):
    """The file could not be opened for lack of file descriptors (EMFILE/ENFILE): the process is short of
    resources, the file is not broken. A watcher keeps the last good state and retries."""


def display_path(path: str, root: str) -> str:
    """`path` relative to `root` when it lies inside it (with `/` separators), else absolute."""
    if not _is_normal_absolute(path):   # the loader's paths already are: skip the normpath work
        path = os.path.abspath(path)
    if not _is_normal_absolute(root):
        root = os.path.abspath(root)
    if path == root:
        return "."
    prefix = root.rstrip(os.sep) + os.sep
    if path.startswith(prefix):
        return path[len(prefix):].replace(os.sep, "/")
    return path


def _is_normal_absolute(path: str) -> bool:
    return (os.path.isabs(path) and os.sep + "." not in path and os.sep + os.sep not in path
            and (os.altsep is None or os.altsep not in path) and not path.endswith(os.sep))


def is_within(path: str, boundary: str) -> bool:
    """True when the real location of `path` is `boundary` or below it."""
    real = os.path.realpath(path)
    limit = os.path.realpath(boundary)
    return real == limit or real.startswith(limit.rstrip(os.sep) + os.sep)


def is_busy_reason(reason: str) -> bool:
    """True when a reason (from any layer: read, list) says the process ran out of file descriptors."""
    return any(os.strerror(code) in reason for code in _NO_DESCRIPTORS)


def directory_error(directory: str, root: str) -> str | None:
    """Why `directory` may not be read (a reason), or None. A directory named inside the root must really be
    inside it: one that is (or lies under) a symlink leading out of the root is refused, as a file would be.
    A directory named outside the root (an explicit option) is read where it is."""
    lexical = os.path.abspath(directory)
    top = os.path.abspath(root)
    if lexical != top and not lexical.startswith(top.rstrip(os.sep) + os.sep):
        return None
    if is_within(directory, root):
        return None
    return "symlink points outside the project root (to %s)" % os.path.realpath(directory)


_SWAP_RETRIES = 3   # an atomic rename between the check and the open is normal: check and open again


class _Swapped(SourceError):
    pass


def read_source(path: str, boundary: str, max_bytes: int) -> bytes:
    """Return the bytes of `path`, or raise SourceError saying why the file cannot be used.

    `boundary` is the directory a symlink may not leave. Nothing that is not a regular file is opened,
    so a FIFO named like a source cannot block the reader. The descriptor opened must be the file checked
    (same device and inode), else the check is redone.
    """
    for _ in range(_SWAP_RETRIES - 1):
        try:
            return _read_checked(path, boundary, max_bytes)
        except _Swapped:
            continue
    return _read_checked(path, boundary, max_bytes)


def _read_checked(path: str, boundary: str, max_bytes: int) -> bytes:
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise SourceError("cannot read: %s" % os_reason(exc))
    target = path
    if stat.S_ISLNK(info.st_mode):
        target = os.path.realpath(path)
        if not is_within(path, boundary):
            raise SourceError("symlink points outside the project root (to %s)" % os.path.realpath(path))
        try:
            info = os.stat(path)
        except OSError as exc:
            raise SourceError("cannot read: broken symlink (%s)" % os_reason(exc))
    if stat.S_ISDIR(info.st_mode):
        raise SourceError("is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise SourceError("not a regular file")
    if info.st_size > max_bytes:
        raise SourceError(_too_large(info.st_size, max_bytes))
    try:
        # O_NONBLOCK: if the file was swapped for a FIFO since the stat, reading it cannot block.
        fd = os.open(target, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in _NO_DESCRIPTORS:
            raise SourceBusy("cannot read now: %s" % os_reason(exc))
        if exc.errno == errno.ELOOP:
            raise _Swapped("became a symlink while being read; refused")
        raise SourceError("cannot read: %s" % os_reason(exc))
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(opened.st_mode):
            # swapped between the check and the open: what was checked is not what would be read
            raise _Swapped("changed while being read (swapped for another file); refused")
        data = os.read(fd, info.st_size + 1)   # one read when the size is as stat'ed
        if len(data) > info.st_size:            # it grew: read on, up to the limit
            chunks = [data]
            size = len(data)
            while size <= max_bytes:
                chunk = os.read(fd, _READ_CHUNK_BYTES)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
    except OSError as exc:
        raise SourceError("cannot read: %s" % os_reason(exc))
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise SourceError(_too_large(len(data), max_bytes))
    return data


def decode_markdown(data: bytes) -> tuple[str, str | None]:
    """Decode markdown bytes: (text, warning or None). A BOM is dropped; bad bytes become U+FFFD; lines
    over MAX_LINE_CHARS are emptied (their numbering kept) and named in the warning."""
    warnings: list[str] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("utf-8-sig", "replace")
        warnings.append("contains bytes that are not valid UTF-8; they were replaced with \ufffd")
    text, skipped = _drop_long_lines(text)
    if skipped:
        warnings.append(_long_lines_warning(skipped))
    return text, "; ".join(warnings) or None


def _drop_long_lines(text: str) -> tuple[str, list[int]]:
    """(text with every line over MAX_LINE_CHARS emptied, their 1-based numbers). Linear in the text."""
    if len(text) <= MAX_LINE_CHARS:
        return text, []
    lines = text.splitlines(True)  # the parsers number lines the same way
    skipped = [number for number, line in enumerate(lines, 1) if len(line.rstrip("\r\n")) > MAX_LINE_CHARS]
    for number in skipped:
        lines[number - 1] = "\n"
    return ("".join(lines) if skipped else text), skipped


def _long_lines_warning(skipped: list[int]) -> str:
    listed = ", ".join(str(number) for number in skipped[:MAX_LISTED_LINES])
    more = " (and %d more)" % (len(skipped) - MAX_LISTED_LINES) if len(skipped) > MAX_LISTED_LINES else ""
    return "%s %s%s %s longer than %s characters and %s skipped" % (
        "line" if len(skipped) == 1 else "lines", listed, more, "is" if len(skipped) == 1 else "are",
        format(MAX_LINE_CHARS, ","), "was" if len(skipped) == 1 else "were")


def _too_large(size: int, max_bytes: int) -> str:
    return "file too large (%s bytes; the limit is %s)" % (format(size, ","), _human_bytes(max_bytes))


def _human_bytes(count: int) -> str:
    if count % (1024 * 1024) == 0:
        return "%d MiB" % (count // (1024 * 1024))
    return "%s bytes" % format(count, ",")


def os_reason(exc: OSError) -> str:
    """What an OSError says for a person: its strerror (no errno, no path), else its whole text."""
    return exc.strerror or str(exc)
