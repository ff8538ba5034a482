"""The flow history's file: one small append-only JSON-lines file per project root in the user's cache directory
(`$XDG_CACHE_HOME/madace_status/`, else `~/.cache/madace_status/`; `~/Library/Caches/madace_status/` on macOS), named
from a hash of the root's real path, never inside the project. The line format and the log are `history.py`'s.

Bounds: at most HISTORY_MAX_SAMPLES samples and HISTORY_MAX_FILE_BYTES; past either, the newest half is kept and the
file rewritten atomically (a private temporary file, then os.replace). Reading is one linear pass over at most
HISTORY_READ_MAX_BYTES, opened with O_NOFOLLOW. A corrupt line is skipped; a corrupt, unreadable or missing file is
not an error: the history starts again with one warning in the log. A cache directory that cannot be used keeps
the history in memory only (one warning). Files are created 0600 in a 0700 directory, and only a private regular
file of ours with one link is read or appended to (history_files.py); anything else in its place is replaced.

A write that fails (a full disk) keeps its samples: the next write after a backoff (WRITE_RETRY_FIRST_S doubling
to WRITE_RETRY_MAX_S) rewrites the whole file, and so does `close()`, whatever the backoff; `status()` says why
the history is not being persisted meanwhile. One server at a time writes a project's history: the first takes
the file's lock (history_files.WriterLock), a second reads the file at start and keeps its samples in memory only.

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
import sys
import tempfile
import threading
import time

from madace_status.logsafe import escape
from madace_status.sync.history import files as history_files
from madace_status.sync.history.samples import (HISTORY_MAX_FILE_BYTES, HISTORY_MAX_SAMPLES, HISTORY_READ_MAX_BYTES,
                                        HistoryLog, encode_sample, parse_history, sample_of)

logger = logging.getLogger("madace_status.history")

HISTORY_CLOSE_TIMEOUT_S = 2.0  # at shutdown, how long the last write may take
MAX_NAME_CHARS = 40  # of the project's name in the file name (the hash makes it unique)
DIR_NAME = "madace_status"
WRITE_RETRY_FIRST_S = 1.0  # after a failed write (a full disk), the next is tried no sooner than this…
WRITE_RETRY_MAX_S = 300.0  # …doubling up to this; close() tries once more whatever the wait
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


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
        self._memory_only = None  # why the history is kept in memory only by design (off, demo, no cache, not writer)
        self._write_problem = None  # why the last write failed (cleared by the next that succeeds)
        self._retry_at = 0.0  # monotonic time before which no write is tried after a failure (close() aside)
        self._retry_s = 0.0
        self._writer_lock = None  # history_files.WriterLock, held while this store writes the file

    @classmethod
    def for_project(cls, root, enabled=True, environ=None, **bounds):
        """The store of the project at `root`, opened at its first use: a server that fails to bind its ports
        leaves no trace in the cache. With `enabled` false: in memory only."""
        store = cls(None, **bounds)
        if enabled:
            store._opening = (root, environ)
        else:
            store._memory_only = "the history is kept in memory only (--no-history, or serve --demo)"
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
            directory, reason = cache_history_directory(environ, root)
            if reason is None:
                path = os.path.join(directory, history_file_name(root))
                if self._take_writer_lock(path):
                    self.path = path
                self._load_from(path)
            else:
                logger.warning("history: cannot use %s (%s); the flow history is kept in memory only",
                               escape(directory), escape(reason))
                self._memory_only = "cannot use %s (%s)" % (directory, reason)
            self._opening = None

    def _take_writer_lock(self, path):
        """True when this store may write `path`: no other process holds its lock (see the module's docstring)."""
        lock = history_files.WriterLock(path)
        try:
            if lock.acquire():
                self._writer_lock = lock
                return True
            reason = "another server of this project writes it"
        except OSError as error:
            reason = "its lock %s cannot be used: %s" % (lock.path, error.strerror or error)
        logger.warning("history: %s: %s; this server keeps its samples in memory only", escape(path), escape(reason))
        self._memory_only = "%s: %s" % (path, reason)
        return False

    # -- reading ------------------------------------------------------------------------------------------------

    def load(self):
        """Read the file (at most HISTORY_READ_MAX_BYTES, linearly). A problem means one warning and a new start."""
        self._load_from(self.path)

    def _load_from(self, path):
        try:
            data = history_files.read_capped(path, HISTORY_READ_MAX_BYTES)
        except FileNotFoundError:
            logger.info("history: starting a new flow history in %s", escape(path))  # a first run
            return
        except OSError as error:
            self._start_again("cannot read it: %s" % (error.strerror or error), path)
            return
        if len(data) > HISTORY_READ_MAX_BYTES:
            self._start_again("larger than %d bytes" % HISTORY_READ_MAX_BYTES, path)
            return
        samples, skipped = parse_history(data)
        with self._lock:
            self._log = HistoryLog(samples, self._log.max_samples)
            self._file_bytes = len(data)
            # Skipped or dropped lines, or a last line cut short, are cleaned out at the next write.
            self._rewrite = bool(skipped) or len(samples) > self._log.max_samples or \
                (bool(data) and not data.endswith(b"\n"))
        if skipped:
            logger.warning("history: %s: skipped %d corrupt line%s", escape(path), skipped,
                           "" if skipped == 1 else "s")
        logger.info("history: %d samples from %s", len(samples), escape(path))

    def _start_again(self, why, path):
        logger.warning("history: %s: %s; starting a new history", escape(path), escape(why))
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

    def _schedule(self, force=False):
        """Queue one write (under the lock); a write already queued takes the new samples too. After a failed write
        none is queued before its retry time, unless `force`."""
        if self.path is None or self._queued is not None or self._closed or not (self._pending or self._rewrite):
            return
        if not force and self._write_problem is not None and time.monotonic() < self._retry_at:
            return  # kept in memory: the next sample after the retry time, or close(), writes them
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
        """Finish the writes (at most `timeout` s), with one more try of samples a failed write left in memory;
        later samples stay in memory. Releases the writer lock."""
        with self._lock:
            self._schedule(force=True)
        done = self.flush(timeout)
        with self._lock:
            self._closed = True
        if self._writer is not None:
            self._writer.shutdown(wait=False)
        if self._writer_lock is not None and done:
            self._writer_lock.release()
        return done

    def status(self):
        """For GET /api/sync: {"persisted": whether samples reach the file now, "reason": why not, or None}."""
        self._open_now()
        with self._lock:
            reason = self._write_problem or self._memory_only
            return {"persisted": self.path is not None and self._write_problem is None, "reason": reason}

    # -- writing (the writer thread) ----------------------------------------------------------------------------

    def _write(self):
        try:
            self._write_now()
        except Exception as error:  # noqa: BLE001 — a bug must not kill the writer: the samples stay in memory
            logger.exception("history: writing %s failed", escape(self.path))
            self._write_failed(error)

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
                size += history_files.append(self.path, b"".join(encode_sample(sample) for sample in pending))
        except OSError as error:
            if rewrite:
                self._write_failed(error)
                return
            try:  # e.g. a symlink or a hard link put in the file's place: replace the file instead
                with self._lock:
                    everything, self._pending = list(self._log.samples), []  # the new file holds them all
                size = self._replace(everything)
            except OSError as error:
                self._write_failed(error)
                return
        with self._lock:
            if self._write_problem is not None:
                logger.info("history: %s is written again", escape(self.path))
                self._write_problem, self._retry_s = None, 0.0
            self._file_bytes = size
            if size > self.max_file_bytes:
                self._log.halve()
                self._rewrite = True
                self._schedule()

    def _replace(self, samples):
        """Write `samples` to a new private file beside the old one, then rename it over the old (atomic)."""
        data = b"".join(encode_sample(sample) for sample in samples)
        directory, name = os.path.split(self.path)
        fd, temporary = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=directory)  # 0600, O_EXCL
        try:
            try:
                history_files.write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(temporary, self.path)  # replaces a symlink or a link itself, never what it points to
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        return len(data)

    def _write_failed(self, error):
        """Keep every sample in memory and rewrite the whole file at the next try (a line may be cut short); say
        so once per run of failures."""
        reason = "cannot write %s: %s" % (self.path, getattr(error, "strerror", None) or error)
        with self._lock:
            self._rewrite = True
            self._pending = []  # the rewrite writes the whole log
            self._retry_s = min(WRITE_RETRY_MAX_S, max(WRITE_RETRY_FIRST_S, self._retry_s * 2))
            self._retry_at = time.monotonic() + self._retry_s
            first = self._write_problem is None
            self._write_problem = reason
        if first:
            logger.warning("history: %s; the samples are kept in memory and written again later", escape(reason))


def cache_history_directory(environ, root):
    """The cache directory for `root`'s history, made private; (directory, reason it cannot be used or None)."""
    directory = cache_directory(environ)
    if not os.path.isabs(directory):
        return directory, "no home directory to hold it"
    if _inside(directory, root):
        return directory, "it would be inside the project"
    return directory, history_files.make_private_directory(directory)
