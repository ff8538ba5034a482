"""The flow history's file: one small append-only JSON-lines file per project root in the user's cache directory
(`$XDG_CACHE_HOME/madace_status/`, else `~/.cache/madace_status/`; `~/Library/Caches/madace_status/` on macOS), named
from a hash of the root's real path, never inside the project. The line format and the log are `history.py`'s.

Bounds: at most HISTORY_MAX_SAMPLES samples and HISTORY_MAX_FILE_BYTES; past either, the newest half is kept and the
file rewritten atomically (a private temporary file, then os.replace). Reading is one linear pass over at most
HISTORY_READ_MAX_BYTES, opened with O_NOFOLLOW. A corrupt line is skipped; a corrupt, unreadable or missing file is
not an error: the history starts again with one warning in the log. A cache directory that cannot be written keeps
the history in memory only (one warning). Files are created 0600 in a 0700 directory.

Writes run in the store's own writer thread (one, so they stay in order), never on the event loop: an append is
one write() of a line under HISTORY_MAX_LINE_BYTES, but the cache directory may sit on a slow or network disk, and a
rotation rewrites up to HISTORY_MAX_FILE_BYTES. Writes are not fsync'ed: this is a cache, and a file cut short by
a crash is read back with a corrupt last line, skipped.
"""

import concurrent.futures
import hashlib
import logging
import os
import re
import stat
import sys
import tempfile
import threading
import time

from madace_status.logsafe import escape
from madace_status.sync.history import (HISTORY_MAX_FILE_BYTES, HISTORY_MAX_SAMPLES, HISTORY_READ_MAX_BYTES,
                                        HistoryLog, encode_sample, parse_history, sample_of)

logger = logging.getLogger("madace_status.history")

HISTORY_CLOSE_TIMEOUT_S = 2.0  # at shutdown, how long the last write may take
MAX_NAME_CHARS = 40  # of the project's name in the file name (the hash makes it unique)
READ_CHUNK_BYTES = 1024 * 1024
DIR_NAME = "madace_status"
DIR_MODE = 0o700
FILE_MODE = 0o600
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO put in the file's place fails at once instead of blocking


# -- where the file lives ----------------------------------------------------------------------------------------

def cache_directory(environ=None, platform=None):
    """`$XDG_CACHE_HOME/madace_status` (an absolute value only, as the XDG spec says), else the user's cache."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        darwin = (platform or sys.platform) == "darwin"
        base = os.path.join(home, "Library", "Caches") if darwin else os.path.join(home, ".cache")
    return os.path.join(base, DIR_NAME)


def history_file_name(root):
    """`<project name>-<16 hex of sha256(real path)>.jsonl`: one file per project root, readable by a person."""
    real = os.path.realpath(root)
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    name = _NAME_CHARS.sub("-", os.path.basename(real))[:MAX_NAME_CHARS].strip(".-") or "root"
    return "%s-%s.jsonl" % (name, digest)


def _inside(path, root):
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


# -- the store: the log and its file -----------------------------------------------------------------------------

class HistoryStore(object):
    """The project's flow history, in memory and (when `path` is set) in its file. Thread-safe: the sync service
    records from the event loop, the HTTP threads read, the writer thread writes."""

    def __init__(self, path=None, max_samples=HISTORY_MAX_SAMPLES, max_file_bytes=HISTORY_MAX_FILE_BYTES):
        self.path = path  # None: in memory only
        self.max_file_bytes = max_file_bytes
        self._log = HistoryLog(max_samples=max_samples)
        self._lock = threading.Lock()
        self._pending = []  # samples in memory not yet in the file
        self._rewrite = False  # the next write replaces the whole file (after a rotation or a corrupt file)
        self._file_bytes = 0
        self._writer = None
        self._queued = None  # the write waiting to run, if any: at most one is ever queued
        self._last = None  # the write submitted last (one writer thread: when it is done, all are)
        self._closed = False
        self._opening = None  # (root, environ) until the first use opens the file
        self._open_lock = threading.Lock()

    @classmethod
    def for_project(cls, root, enabled=True, environ=None, **bounds):
        """The store of the project at `root`, opened at its first use: a server that fails to bind its ports
        leaves no trace in the cache. With `enabled` false: in memory only."""
        store = cls(None, **bounds)
        if enabled:
            store._opening = (root, environ)
        return store

    @classmethod
    def open(cls, root, enabled=True, environ=None, **bounds):
        """`for_project`, opened and loaded now."""
        store = cls.for_project(root, enabled, environ, **bounds)
        store._open_now()
        return store

    def _open_now(self):
        """Find (and make) the cache directory and load the file. Never raises for a file or directory problem:
        it logs one warning and goes on (in memory only when nothing can be written)."""
        if self._opening is None:  # the common case, without the lock
            return
        with self._open_lock:
            if self._opening is None:
                return
            root, environ = self._opening
            directory = cache_directory(environ)
            if not os.path.isabs(directory):
                reason = "no home directory to hold it"
            elif _inside(directory, root):
                reason = "it would be inside the project"
            else:
                reason = _make_private_directory(directory)
            if reason is None:
                self.path = os.path.join(directory, history_file_name(root))
                self.load()
            else:
                logger.warning("history: cannot use %s (%s); the flow history is kept in memory only",
                               escape(directory), escape(reason))
            self._opening = None

    # -- reading ------------------------------------------------------------------------------------------------

    def load(self):
        """Read the file (at most HISTORY_READ_MAX_BYTES, linearly). A problem means one warning and a new start."""
        try:
            data = _read_capped(self.path, HISTORY_READ_MAX_BYTES)
        except FileNotFoundError:
            logger.info("history: starting a new flow history in %s", escape(self.path))  # a first run
            return
        except OSError as error:
            self._start_again("cannot read it: %s" % (error.strerror or error))
            return
        if len(data) > HISTORY_READ_MAX_BYTES:
            self._start_again("larger than %d bytes" % HISTORY_READ_MAX_BYTES)
            return
        samples, skipped = parse_history(data)
        with self._lock:
            self._log = HistoryLog(samples, self._log.max_samples)
            self._file_bytes = len(data)
            # Skipped or dropped lines, or a last line cut short, are cleaned out at the next write.
            self._rewrite = bool(skipped) or len(samples) > self._log.max_samples or \
                (bool(data) and not data.endswith(b"\n"))
        if skipped:
            logger.warning("history: %s: skipped %d corrupt line%s", escape(self.path), skipped,
                           "" if skipped == 1 else "s")
        logger.info("history: %d samples from %s", len(samples), escape(self.path))

    def _start_again(self, why):
        logger.warning("history: %s: %s; starting a new history", escape(self.path), escape(why))
        with self._lock:
            self._log = HistoryLog(max_samples=self._log.max_samples)
            self._file_bytes = 0
            self._rewrite = True

    def samples(self, limit=HISTORY_MAX_SAMPLES):
        """The newest `limit` samples, oldest first (a copy; the samples themselves are never changed)."""
        self._open_now()
        with self._lock:
            return list(self._log.newest(limit))

    # -- recording ------------------------------------------------------------------------------------------------

    def record(self, project, now=None):
        """Keep a sample of `project` unless it shows the same flow as the last one; True when kept. The file is
        written later, by the writer thread."""
        sample = sample_of(project, now)
        if sample is None:
            return False
        self._open_now()
        with self._lock:
            if not self._log.add(sample):
                return False
            if self._log.over:
                self._log.halve()
                self._rewrite = True
            self._pending.append(sample)
            self._schedule()
        return True

    def _schedule(self):
        """Queue one write (under the lock); a write already queued takes the new samples too."""
        if self.path is None or self._queued is not None or self._closed:
            return
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="history")
        try:
            self._queued = self._last = self._writer.submit(self._write)
        except RuntimeError:  # the interpreter is exiting: what is not written stays in memory
            self._closed = True

    def flush(self, timeout=HISTORY_CLOSE_TIMEOUT_S):
        """Wait (at most `timeout` s) until every write queued so far is done; True when they are."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                last = self._last
            if last is None:
                return True
            try:
                last.result(max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                return False
            with self._lock:
                if self._last is last:  # no rotation queued another write meanwhile
                    return True

    def close(self, timeout=HISTORY_CLOSE_TIMEOUT_S):
        """Finish the writes (at most `timeout` s); later samples stay in memory."""
        done = self.flush(timeout)
        with self._lock:
            self._closed = True
        if self._writer is not None:
            self._writer.shutdown(wait=False)
        return done

    # -- writing (the writer thread) ----------------------------------------------------------------------------

    def _write(self):
        try:
            self._write_now()
        except Exception:  # a bug must not kill the writer silently: the history stays in memory
            logger.exception("history: writing %s failed", escape(self.path))

    def _write_now(self):
        with self._lock:
            self._queued = None
            if self.path is None:
                return
            rewrite, pending, self._pending, self._rewrite = self._rewrite, self._pending, [], False
            everything = list(self._log.samples) if rewrite else None
            size = self._file_bytes
        try:
            if rewrite:
                size = self._replace(everything)
            else:
                size += self._append(b"".join(encode_sample(sample) for sample in pending))
        except OSError as error:
            if rewrite:
                self._give_up(error)
                return
            try:  # e.g. a symlink put in the file's place (O_NOFOLLOW refuses it): replace the file instead
                with self._lock:
                    everything, self._pending = list(self._log.samples), []  # the new file holds them all
                size = self._replace(everything)
            except OSError as error:
                self._give_up(error)
                return
        with self._lock:
            self._file_bytes = size
            if size > self.max_file_bytes:
                self._log.halve()
                self._rewrite = True
                self._schedule()

    def _append(self, data):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _NONBLOCK, FILE_MODE)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError("not a regular file")
            _write_all(fd, data)
        finally:
            os.close(fd)
        return len(data)

    def _replace(self, samples):
        """Write `samples` to a new private file beside the old one, then rename it over the old (atomic)."""
        data = b"".join(encode_sample(sample) for sample in samples)
        directory, name = os.path.split(self.path)
        fd, temporary = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=directory)  # 0600, O_EXCL
        try:
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)  # replaces a symlink itself, never what it points to
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        return len(data)

    def _give_up(self, error):
        logger.warning("history: cannot write %s (%s); the flow history is kept in memory only from now on",
                       escape(self.path), escape(error.strerror or error))
        with self._lock:
            self.path = None
            self._pending = []


def _make_private_directory(directory):
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


def _read_capped(path, cap):
    """Up to `cap` + 1 bytes of the regular file `path` (not following a symlink): more than `cap` means too big."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
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


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
