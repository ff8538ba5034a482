"""The flow history's file operations, each refusing what is not the server's own private file: the cache
directory made 0700 and checked to be ours, reads and appends through `O_NOFOLLOW` and a check of the opened
descriptor (a regular file, one link, our owner: a hard link planted at the path is not written through), and the
one-writer lock. Used by `store.py` (README, "Flow history").
"""

from __future__ import annotations

import errno
import os
import stat

try:
    import fcntl
except ImportError:  # Windows: no advisory lock; two servers on one project then both write its history
    fcntl = None  # type: ignore[assignment]

__all__ = ["DIR_MODE", "FILE_MODE", "LOCK_SUFFIX", "READ_CHUNK_BYTES", "NotOurFile", "WriterLock", "append",
           "check_private_file", "make_private_directory", "read_capped", "write_all"]

READ_CHUNK_BYTES = 1024 * 1024
DIR_MODE = 0o700
FILE_MODE = 0o600
LOCK_SUFFIX = ".lock"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO put in the file's place fails at once instead of blocking


class NotOurFile(OSError):
    """The path holds something other than a private regular file of ours (a FIFO, a hard link, another owner)."""


def make_private_directory(directory: str) -> str | None:
    """Make `directory` (0700) if needed; the reason it cannot hold the history, or None."""
    try:
        os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
        info = os.lstat(directory)
        if not stat.S_ISDIR(info.st_mode):
            return "not a directory"
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            return "owned by another user"
        if info.st_mode & 0o077:
            os.chmod(directory, DIR_MODE)
    except OSError as error:
        return error.strerror or str(error)
    return None


def check_private_file(fd: int) -> None:
    """Raise NotOurFile unless the open `fd` is a regular file with one link, owned by this user."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise NotOurFile("not a regular file")
    if info.st_nlink != 1:
        raise NotOurFile("a file with %d links (a hard link put in its place)" % info.st_nlink)
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise NotOurFile("owned by another user")


def read_capped(path: str, cap: int) -> bytes:
    """Up to `cap` + 1 bytes of our private file `path` (not following a symlink): more than `cap` means too big."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK)
    try:
        check_private_file(fd)
        chunks = []
        left = cap + 1
        while left > 0:
            chunk = os.read(fd, min(left, READ_CHUNK_BYTES))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def append(path: str, data: bytes) -> int:
    """Append `data` to our private file `path` (made 0600 when missing); returns the bytes written."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _NONBLOCK, FILE_MODE)
    try:
        check_private_file(fd)
        write_all(fd, data)
    finally:
        os.close(fd)
    return len(data)


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class WriterLock:
    """The one-writer lock of a history file: an exclusive advisory lock (flock) on `<file>.lock`, a file that is
    never replaced (the history file itself is, at each rotation), held from `acquire()` until `release()` or the
    process's end. `acquire()` never waits: False when another process holds it."""

    def __init__(self, history_path: str) -> None:
        self.path = history_path + LOCK_SUFFIX
        self._fd: int | None = None

    def acquire(self) -> bool:
        """True when this process is (now) the writer. Raises OSError when the lock file cannot be used."""
        if self._fd is not None or fcntl is None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _NONBLOCK, FILE_MODE)
        try:
            check_private_file(fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock
