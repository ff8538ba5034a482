"""The flow history's file (README, "Flow history"): one small append-only JSON-lines file per project root in the
user's cache directory (`$XDG_CACHE_HOME/madace_status/`, else `~/.cache/madace_status/`;
`~/Library/Caches/madace_status/` on macOS), named from a hash of the root's real path, never inside the project.
The line format and the log are `samples.py`'s.

Bounds: at most HISTORY_MAX_SAMPLES samples and HISTORY_MAX_FILE_BYTES; past either, the newest half is kept and the
file rewritten atomically (a private temporary file, then os.replace). Reading is one linear pass over at most
HISTORY_READ_MAX_BYTES, opened with O_NOFOLLOW. A corrupt line is skipped; a corrupt, unreadable or missing file is
not an error: the history starts again with one warning in the log. A cache directory that cannot be used keeps
the history in memory only (one warning). Files are created 0600 in a 0700 directory, and only a private regular
file of ours with one link is read or appended to (`files.py`); anything else in its place is replaced.

A write that fails (a full disk) keeps its samples: the next write after a backoff (WRITE_RETRY_FIRST_S doubling
to WRITE_RETRY_MAX_S) rewrites the whole file, and so does `close()`, whatever the backoff; `status()` says why
the history is not being persisted meanwhile. One server at a time writes a project's history: the first takes
the file's lock (`files.WriterLock`), a second reads the file at start and keeps its samples in memory only; its
sync service tries the lock again every TAKEOVER_RETRY_S (`try_takeover`): when the writer is gone (a replica
stopped), it takes over, and the file holds the first one's samples followed by its own.

Writes run in the store's own writer thread (one, so they stay in order), never on the event loop: an append is
one write() of a line under HISTORY_MAX_LINE_BYTES, but the cache directory may sit on a slow or network disk, and a
rotation rewrites up to HISTORY_MAX_FILE_BYTES. Writes are not fsync'ed: this is a cache, and a file cut short by
a crash is read back with a corrupt last line, skipped.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping, Optional, TypedDict

from madace_status.logsafe import escape
from madace_status.project.files import is_within
from madace_status.project.loader import root_identity
from madace_status.sync.history import files as history_files
from madace_status.sync.history.git import NOT_A_WORK_TREE, GitBackfill
from madace_status.sync.history.samples import (HISTORY_MAX_FILE_BYTES, HISTORY_MAX_SAMPLES, HISTORY_READ_MAX_BYTES,
                                                HistoryLog, Sample, encode_sample, parse_history, sample_of)

if TYPE_CHECKING:
    from madace_status.project.model import Project

__all__ = [
    "DIR_NAME", "HISTORY_CLOSE_TIMEOUT_S", "MAX_NAME_CHARS", "WRITE_RETRY_FIRST_S", "WRITE_RETRY_MAX_S",
    "GIT_CACHE_SUFFIX", "HistoryStatus", "HistoryStore", "cache_directory", "cache_history_directory",
    "history_file_name", "merged", "read_history",
]

logger = logging.getLogger("madace_status.history")

HISTORY_CLOSE_TIMEOUT_S = 2.0  # at shutdown, how long the last write may take
TAKEOVER_RETRY_S = 1.0  # how often a server that does not write the history tries its lock again
GIT_CACHE_SUFFIX = ".git-samples"  # beside the history file: the samples read from git, by commit id
MAX_NAME_CHARS = 40  # of the project's name in the file name (the hash makes it unique)
DIR_NAME = "madace_status"
WRITE_RETRY_FIRST_S = 1.0  # after a failed write (a full disk), the next is tried no sooner than this…
WRITE_RETRY_MAX_S = 300.0  # …doubling up to this; close() tries once more whatever the wait
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class HistoryStatus(TypedDict):
    """What GET /api/sync says of the history (`history`)."""

    persisted: bool  # whether samples reach the file now
    reason: Optional[str]  # why not, or None


# -- where the file lives ----------------------------------------------------------------------------------------

def cache_directory(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """`$XDG_CACHE_HOME/madace_status` (an absolute value only, as the XDG spec says), else the user's cache."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        darwin = (platform or sys.platform) == "darwin"
        base = os.path.join(home, "Library", "Caches") if darwin else os.path.join(home, ".cache")
    return os.path.join(base, DIR_NAME)


def history_file_name(root: str) -> str:
    """`<project name>-<16 hex of sha256(real path)>.jsonl`: one file per project root, readable by a person."""
    identity = root_identity(root)  # the fingerprint the welcome carries, too
    name = _NAME_CHARS.sub("-", identity["name"])[:MAX_NAME_CHARS].strip(".-") or "root"
    return "%s-%s.jsonl" % (name, identity["root"])


# -- the store: the log and its file -----------------------------------------------------------------------------

class HistoryStore:
    """The project's flow history, in memory and (when `path` is set) in its file. Thread-safe: the sync service
    records from the event loop, the HTTP threads read, the writer thread writes."""

    def __init__(self, path: str | None = None, max_samples: int = HISTORY_MAX_SAMPLES,
                 max_file_bytes: int = HISTORY_MAX_FILE_BYTES) -> None:
        self.path = path  # None: in memory only
        self.max_file_bytes = max_file_bytes
        self._log = HistoryLog(max_samples=max_samples)
        self._lock = threading.Lock()
        self._pending: list[Sample] = []  # samples in memory not yet in the file
        self._rewrite = False  # the next write replaces the whole file (after a rotation or a corrupt file)
        self._file_bytes = 0
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        # The write waiting to run, if any: at most one is ever queued.
        self._queued: concurrent.futures.Future[None] | None = None
        # The write submitted last (one writer thread: when it is done, all are).
        self._last: concurrent.futures.Future[None] | None = None
        self._closed = False
        # (root, environ) until the first use opens the file.
        self._opening: tuple[str, Mapping[str, str] | None] | None = None
        self._open_lock = threading.Lock()
        # Why the history is kept in memory only by design (off, demo, no cache, not the writer).
        self._memory_only: str | None = None
        self._write_problem: str | None = None  # why the last write failed (cleared by the next that succeeds)
        self._retry_at = 0.0  # monotonic time before which no write is tried after a failure (close() aside)
        self._retry_s = 0.0
        self._writer_lock: history_files.WriterLock | None = None  # held while this store writes the file
        # The file another server of the project writes: the sync service tries its lock again every
        # TAKEOVER_RETRY_S (try_takeover) so that this one writes on when that server is gone (README, "Replicas").
        self._standby_path: str | None = None
        # The samples from git (sync/history/git.py), before the live ones; and what kept them from being read.
        self._backfill: list[Sample] = []
        self.git_warnings: list[str] = []

    @classmethod
    def for_project(cls, root: str, enabled: bool = True, environ: Mapping[str, str] | None = None,
                    **bounds: int) -> HistoryStore:
        """The store of the project at `root`, opened at its first use: a server that fails to bind its ports
        leaves no trace in the cache. With `enabled` false: in memory only."""
        store = cls(None, **bounds)
        if enabled:
            store._opening = (root, environ)
        else:
            store._memory_only = "the history is kept in memory only (--no-history, or serve --demo)"
        return store

    @classmethod
    def open(cls, root: str, enabled: bool = True, environ: Mapping[str, str] | None = None,
             **bounds: int) -> HistoryStore:
        """`for_project`, opened and loaded now."""
        store = cls.for_project(root, enabled, environ, **bounds)
        store._open_now()
        return store

    def _open_now(self) -> None:
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

    def _take_writer_lock(self, path: str) -> bool:
        """True when this store may write `path`: no other process holds its lock (see the module's docstring)."""
        lock = history_files.WriterLock(path)
        try:
            if lock.acquire():
                self._writer_lock = lock
                return True
            reason = "another server of this project writes it"
            self._standby_path = path
        except OSError as error:
            reason = "its lock %s cannot be used: %s" % (lock.path, error.strerror or error)
        logger.warning("history: %s: %s; this server keeps its samples in memory only", escape(path), escape(reason))
        self._memory_only = "%s: %s" % (path, reason)
        return False

    # -- reading ------------------------------------------------------------------------------------------------

    def _load_from(self, path: str) -> None:
        """Read the file (at most HISTORY_READ_MAX_BYTES, linearly). A problem means one warning and a new start."""
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

    def _start_again(self, why: str, path: str) -> None:
        logger.warning("history: %s: %s; starting a new history", escape(path), escape(why))
        with self._lock:
            self._log = HistoryLog(max_samples=self._log.max_samples)
            self._file_bytes = 0
            self._rewrite = True

    def samples(self, limit: int = HISTORY_MAX_SAMPLES) -> list[Sample]:
        """The newest `limit` samples, oldest first (a copy; the samples themselves are never changed): the ones
        from git older than the first live one, then the live ones."""
        self._open_now()
        with self._lock:
            live = list(self._log.newest(limit))
            backfill = self._backfill
        return merged(backfill, live)[-limit:] if limit > 0 else []

    def backfill_from_git(self, root: str, status_file: str | None) -> int:
        """Read the story file's history from git (slow: off the event loop), keep it before the live samples;
        the number of samples. Each reason it could not is logged once and kept in `git_warnings`."""
        self._open_now()
        cache = self.path + GIT_CACHE_SUFFIX if self.path is not None else None
        backfill = GitBackfill(root, status_file, cache)
        try:
            samples = backfill.samples()
        except Exception as error:  # noqa: BLE001 — a bug here must not stop the server: the history starts live
            logger.exception("history: reading the git history failed")
            samples, backfill.warnings = [], ["reading the git history failed (%s)" % escape(type(error).__name__)]
        with self._lock:
            self._backfill = samples
            self.git_warnings = backfill.warnings
        for warning in backfill.warnings:
            logger.log(logging.INFO if warning == NOT_A_WORK_TREE else logging.WARNING, "history: %s", escape(warning))
        if samples:
            logger.info("history: %d samples from git", len(samples))
        return len(samples)

    # -- recording ------------------------------------------------------------------------------------------------

    def record(self, project: Project, now: float | None = None) -> bool:
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
            if self.path is not None:  # in memory only, the log is all there is: nothing waits for the file
                self._pending.append(sample)
                self._schedule()
        return True

    @property
    def standby(self) -> bool:
        """True while another server of the project writes the file and this one could take over."""
        return self._standby_path is not None

    def try_takeover(self) -> bool:
        """Become the writer of the file another server wrote, once that server is gone (True then): its samples
        are read from the file, this one's newer samples follow them, and the whole file is written again. Reads
        the file: call it off the event loop."""
        path = self._standby_path
        if path is None:
            return False
        lock = history_files.WriterLock(path)
        try:
            if not lock.acquire():
                return False
        except OSError:
            return False  # as at the start: memory only, said once then
        try:
            self._take_over(path, lock)
        except BaseException:
            lock.release()  # never held by a store that does not write: another server may take over
            raise
        logger.info("history: this server now writes %s (the server that wrote it is gone)", escape(path))
        return True

    def _take_over(self, path: str, lock: history_files.WriterLock) -> None:
        try:  # what the last writer left (read outside the lock: a sample recorded meanwhile is merged below)
            data = history_files.read_capped(path, HISTORY_READ_MAX_BYTES)
            theirs = parse_history(data)[0] if len(data) <= HISTORY_READ_MAX_BYTES else []
        except OSError:
            theirs = []
        with self._lock:
            log = HistoryLog(theirs, self._log.max_samples)
            last = theirs[-1]["at"] if theirs else ""
            for sample in self._log.samples:
                if sample["at"] > last:  # ours after theirs, in order; the same flow twice is kept once
                    log.add(sample)
            if log.over:
                log.halve()
            self._log, self._pending, self._rewrite = log, [], True
            self.path, self._writer_lock, self._standby_path, self._memory_only = path, lock, None, None
            self._schedule()

    def _schedule(self, force: bool = False) -> None:
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

    def flush(self, timeout: float = HISTORY_CLOSE_TIMEOUT_S) -> bool:
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

    def close(self, timeout: float = HISTORY_CLOSE_TIMEOUT_S) -> bool:
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

    def status(self) -> HistoryStatus:
        """For GET /api/sync: {"persisted": whether samples reach the file now, "reason": why not, or None}."""
        self._open_now()
        with self._lock:
            reason = self._write_problem or self._memory_only
            return {"persisted": self.path is not None and self._write_problem is None, "reason": reason}

    def git_status(self) -> dict[str, Any]:
        """For GET /api/sync: how many samples came from git, and why none or not all could."""
        with self._lock:
            return {"samples": len(self._backfill), "warnings": list(self.git_warnings)}

    # -- writing (the writer thread) ----------------------------------------------------------------------------

    def _write(self) -> None:
        try:
            self._write_now()
        except Exception as error:  # noqa: BLE001 — a bug must not kill the writer: the samples stay in memory
            logger.exception("history: writing %s failed", escape(str(self.path)))
            self._write_failed(error)

    def _write_now(self) -> None:
        with self._lock:
            self._queued = None
            path = self.path
            if path is None:
                return
            rewrite, pending, self._pending, self._rewrite = self._rewrite, self._pending, [], False
            everything = list(self._log.samples) if rewrite else []
            size = self._file_bytes
        try:
            if rewrite:
                size = self._replace(path, everything)
            else:
                size += history_files.append(path, b"".join(encode_sample(sample) for sample in pending))
        except OSError as error:
            if rewrite:
                self._write_failed(error)
                return
            try:  # e.g. a symlink or a hard link put in the file's place: replace the file instead
                with self._lock:
                    everything, self._pending = list(self._log.samples), []  # the new file holds them all
                size = self._replace(path, everything)
            except OSError as error:
                self._write_failed(error)
                return
        with self._lock:
            if self._write_problem is not None:
                logger.info("history: %s is written again", escape(path))
                self._write_problem, self._retry_s = None, 0.0
            self._file_bytes = size
            if size > self.max_file_bytes:
                self._log.halve()
                self._rewrite = True
                self._schedule()

    def _replace(self, path: str, samples: list[Sample]) -> int:
        """Write `samples` to a new private file beside `path`, then rename it over `path` (atomic)."""
        data = b"".join(encode_sample(sample) for sample in samples)
        directory, name = os.path.split(path)
        fd, temporary = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=directory)  # 0600, O_EXCL
        try:
            try:
                history_files.write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(temporary, path)  # replaces a symlink or a link itself, never what it points to
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        return len(data)

    def _write_failed(self, error: BaseException) -> None:
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


def cache_history_directory(environ: Mapping[str, str] | None, root: str) -> tuple[str, str | None]:
    """The cache directory for `root`'s history, made private; (directory, reason it cannot be used or None)."""
    directory = cache_directory(environ)
    if not os.path.isabs(directory):
        return directory, "no home directory to hold it"
    if is_within(directory, root):
        return directory, "it would be inside the project"
    return directory, history_files.make_private_directory(directory)


def merged(from_git: list[Sample], live: list[Sample]) -> list[Sample]:
    """The samples from git older than the first live one, then the live ones."""
    if not from_git:
        return live
    first_live = live[0]["at"] if live else None
    return [sample for sample in from_git if first_live is None or sample["at"] < first_live] + live


def read_history(root: str, status_file: str | None,
                 environ: Mapping[str, str] | None = None) -> tuple[list[Sample], list[str]]:
    """The project's flow history as `serve` serves it, read without writing the history file (`status history`):
    its stored samples and git's; (samples oldest first, warnings)."""
    path = os.path.join(cache_directory(environ), history_file_name(root))
    live: list[Sample] = []
    warnings: list[str] = []
    try:
        live = parse_history(history_files.read_capped(path, HISTORY_READ_MAX_BYTES))[0]
    except FileNotFoundError:
        pass  # no server has kept this project's history yet
    except OSError as error:
        warnings.append("the stored flow history cannot be read (%s)" % (error.strerror or error))
    git_cache = path + GIT_CACHE_SUFFIX if os.path.isdir(os.path.dirname(path)) else None
    backfill = GitBackfill(root, status_file, git_cache)
    from_git = backfill.samples()
    warnings.extend(warning for warning in backfill.warnings if warning != NOT_A_WORK_TREE)
    return merged(from_git, live)[-HISTORY_MAX_SAMPLES:], warnings
