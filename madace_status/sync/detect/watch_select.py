"""Which change detector `serve` uses: `--watcher auto|inotify|kqueue|poll`, and why a fallback was taken
(README, "How changes are found").

With an event backend the poller still runs, but only when the kernel says something happened in a watched
directory, and as a slow safety rescan every SAFETY_RESCAN_S, so a missed event can never leave a replica
stale for long. A finished change (inotify: a file closed after writing, renamed, deleted; a directory
created or gone) wakes the poll loop at once, with no coalescing delay; an event about a name the project
never reads (an atomic write's temporary file, an editor's swap file) wakes nothing. A write still in
progress (inotify: IN_MODIFY or IN_CREATE with no IN_CLOSE_WRITE yet; every kqueue write, which has no close)
waits up to WRITE_SETTLE_S for its close, so a truncate-then-write is not read between the two. The events
that arrive while a look is read and published are merged into the next look: a burst costs one look per
read, not one per event. A writer that keeps its file open past the settle time is covered by the grace period
(sources.INVALID_GRACE_S): its last good content stays until a look finds the final one.

An event backend (`inotify.InotifyWatcher`, `kqueue.KqueueWatcher`) is whatever meets `EventBackend`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import select
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Protocol, Tuple, TypeVar

from madace_status.logsafe import escape
from madace_status.sync.detect.watcher import COLD_RECHECK_S, FULL_RESCAN_S, PollingWatcher, project_inputs

if TYPE_CHECKING:
    from madace_status.project.loader import ProjectPaths

__all__ = [
    "EVENT_COLD_RECHECK_S", "EVENT_FULL_RESCAN_S", "SAFETY_RESCAN_S", "WRITE_SETTLE_S", "BackendEvent",
    "BackendUnavailable", "ChangeSignal", "Detector", "EventBackend", "open_backend", "watched_directories",
    "watched_files",
]

SAFETY_RESCAN_S = 2.0
# With events, an idle file of a large directory is stat'ed again this often by the safety rescan (in turns:
# 10,000 files cost 333 stats every SAFETY_RESCAN_S), and its listing read again this often (it is read at
# once when the directory's own signature changes): the events name what changes, so these are only the net
# for a missed event. Directories of at most ALWAYS_STAT_ENTRIES files are still stat'ed in full every look.
EVENT_COLD_RECHECK_S = 60.0
EVENT_FULL_RESCAN_S = 120.0

# A write whose close has not been seen is looked at after this anyway (a writer that keeps its file open);
# writers that close (almost all, and every atomic rename) are read the moment they close.
WRITE_SETTLE_S = 0.02

logger = logging.getLogger("madace_status.sync")


class Detector(str, enum.Enum):
    """The change detector in use, as `/api/sync` (`watcher`), /metrics and the log name it: the values of
    `choices.WATCHER_BACKENDS`, which `--watcher` takes besides `auto` (README, "How changes are found"). A str:
    JSON, `%s` and comparisons with the plain name see the name alone."""

    INOTIFY = "inotify"
    KQUEUE = "kqueue"
    POLL = "poll"

    def __str__(self) -> str:
        return str(self.value)


class BackendUnavailable(Exception):
    """An event backend cannot be used here; str() says why (shown in /api/sync, /metrics and the start-up log)."""


class BackendEvent(Protocol):
    """What the change signal reads of a backend's event (`InotifyEvent`, `VnodeChange`)."""

    @property
    def needs_rearm(self) -> bool:
        """The watch set must be computed again."""

    @property
    def write_in_progress(self) -> bool:
        """A write whose end (its close) has not been seen yet."""


EventT = TypeVar("EventT", bound=BackendEvent)


class EventBackend(Protocol[EventT]):
    """An event backend: `fileno()` is registered with the loop; `read_events()` is called when it is readable;
    `rearm()` computes the watch set again; `close()` releases every descriptor."""

    name: Detector

    @property
    def watch_count(self) -> int:
        """How many watches are held."""

    def fileno(self) -> int:
        """The descriptor the loop waits on."""

    def read_events(self) -> list[EventT]:
        """The events queued now (possibly none)."""

    def that_matter(self, events: list[EventT], cares_about: Callable[[str], bool]) -> list[EventT]:
        """The events worth a look (`cares_about` is PollingWatcher.cares_about)."""

    def paths_of(self, events: list[EventT]) -> list[str]:
        """The paths the events name: looked at by the next poll."""

    def structural_paths(self, events: list[EventT], is_structure: Callable[[str], bool]) -> list[str]:
        """The watched directories (or directories above them) whose identity the events say changed."""

    def rearm(self) -> None:
        """Compute the watch set again."""

    def close(self) -> None:
        """Release every descriptor."""


# (the backend or None, the detector in use, why it fell back to polling or None)
Opened = Tuple[Optional["EventBackend[Any]"], Detector, Optional[str]]


def watched_directories(paths: ProjectPaths) -> list[str]:
    """Every directory whose entries can change what a project reads, and the directories above them up to the
    root (or the parent of one outside it): a state directory removed, re-created or swapped for a symlink is an
    entry of its parent changing, which a watch on the directory itself does not see."""
    status_files, sources = project_inputs(paths)
    root = os.path.abspath(paths.root)
    directories = [directory for directory, _ in sources] + [root] + [os.path.dirname(path) for path in status_files]
    watched = []
    for directory in directories:
        directory = os.path.abspath(directory)
        watched.append(directory)
        parent = os.path.dirname(directory)
        while parent != directory and (parent + os.sep).startswith(root + os.sep):
            watched.append(parent)
            directory, parent = parent, os.path.dirname(parent)
        if not (directory + os.sep).startswith(root + os.sep):
            watched.append(parent)  # one outside the root (an explicit option): its parent too
    return list(dict.fromkeys(watched))


def watched_files(paths: ProjectPaths) -> Callable[[], list[str]]:
    """A callable listing the files a kqueue backend watches one by one (a vnode watch names no entry): the
    existing story file candidates, every epic file and every state file."""
    from madace_status.sync.detect.kqueue import regular_files

    def list_files() -> list[str]:
        return regular_files(*project_inputs(paths))
    return list_files


def _opened(open_watcher: Callable[[], EventBackend[Any]]) -> Opened:
    try:
        backend = open_watcher()
    except BackendUnavailable as error:
        return None, Detector.POLL, str(error)
    return backend, backend.name, None


def _open_kqueue(paths: ProjectPaths) -> Opened:
    from madace_status.sync.detect.kqueue import KqueueWatcher
    return _opened(lambda: KqueueWatcher(watched_directories(paths), watched_files(paths)))


def _open_inotify(paths: ProjectPaths) -> Opened:
    try:
        from madace_status.sync.detect.inotify import InotifyWatcher
    except ImportError as error:  # no ctypes (some minimal builds)
        return None, Detector.POLL, "no ctypes for inotify (%s)" % error
    return _opened(lambda: InotifyWatcher(watched_directories(paths)))


def open_backend(kind: str, paths: ProjectPaths) -> Opened:
    """(backend or None, active detector, fallback reason or None) for `kind`, one of `choices.WATCHER_CHOICES`.
    A backend asked for by name that is not available falls back to polling too (the reason says so): a live
    view beats no view. `auto` is inotify on Linux, kqueue where `select.kqueue` exists (macOS, the BSDs),
    polling elsewhere."""
    if kind == Detector.POLL:
        return None, Detector.POLL, None
    linux = sys.platform.startswith("linux")
    if kind == Detector.KQUEUE or (kind == "auto" and hasattr(select, "kqueue") and not linux):
        return _open_kqueue(paths)
    if kind == Detector.INOTIFY or linux:
        return _open_inotify(paths)
    return None, Detector.POLL, "no event backend on %s (no inotify, no select.kqueue)" % sys.platform


class ChangeSignal:
    """The event backend registered with the loop, and the wait between two looks at the files (used by
    `serve`'s poll loop and by `status --watch` while offline). Without a backend the wait is a plain sleep."""

    def __init__(self, loop: asyncio.AbstractEventLoop, kind: str, paths: ProjectPaths,
                 watcher: PollingWatcher) -> None:
        self.loop = loop
        self.watcher = watcher  # the PollingWatcher the events make look (mark_hot)
        self.backend, self.active, self.fallback = open_backend(kind, paths)
        self._pending = False  # a change was reported since the last look began
        # The future `wait` sleeps on: resolved by an event, the timeout or an interrupt.
        self._waiter: asyncio.Future[None] | None = None
        self._settle: asyncio.TimerHandle | None = None  # the timer that looks at a write still in progress
        if self.backend is not None:
            watcher.cold_recheck_s, watcher.full_rescan_s = EVENT_COLD_RECHECK_S, EVENT_FULL_RESCAN_S
            watcher.full_pass_s = SAFETY_RESCAN_S
            watcher.racy_recheck = False  # every write is named by an event: it is read whatever its signature
            loop.add_reader(self.backend.fileno(), self._on_readable)

    def close(self) -> None:
        """Unregister and close the backend's descriptor (idempotent); the watcher polls at full speed again."""
        self._cancel_settle()
        if self.backend is not None:
            self.loop.remove_reader(self.backend.fileno())
            self.backend.close()
            self.backend = None
            self.watcher.cold_recheck_s, self.watcher.full_rescan_s = COLD_RECHECK_S, FULL_RESCAN_S
            self.watcher.full_pass_s = None
            self.watcher.racy_recheck = True

    def _cancel_settle(self) -> None:
        if self._settle is not None:
            self._settle.cancel()
            self._settle = None

    def _settled(self) -> None:
        self._settle = None
        self._look_now()

    def _look_now(self) -> None:
        # Straight to the sleeping poll loop's future: one loop iteration to the look, not three through an
        # asyncio.Event, a task per waited event and asyncio.wait (a third of a millisecond here).
        self._pending = True
        _resolve(self._waiter)

    def _on_readable(self) -> None:
        backend = self.backend
        if backend is None:
            return  # closed: no longer registered with the loop
        try:
            events = backend.that_matter(backend.read_events(), self.watcher.cares_about)
            if not events:
                return  # nothing the project reads: no look (an atomic write's temporary file, a swap file)
            self.watcher.mark_hot(backend.paths_of(events))  # read at the next poll, however large
            structure = backend.structural_paths(events, self.watcher.is_structure)
            self.watcher.mark_structure_changed(structure)  # a directory replaced: what it holds is read again
            if any(getattr(event, "overflow", False) for event in events):
                self.watcher.request_full_read()  # the events lost named what changed: read everything
            if structure or any(event.needs_rearm for event in events):
                backend.rearm()  # a watched directory appeared, went or moved; or the queue overflowed
        except Exception as error:  # the backend broke (e.g. watch limit reached): poll from now on
            logger.warning("%s failed, falling back to polling: %s", self.active, escape(str(error)))
            self.close()
            self.active, self.fallback = Detector.POLL, str(error)
            self._look_now()
            return
        if not all(getattr(event, "write_in_progress", True) for event in events):
            self._look_now()  # a finished change: look now
        elif self._settle is None and not self._pending:
            self._settle = self.loop.call_later(WRITE_SETTLE_S, self._settled)

    async def wait(self, polling_s: float, events_s: float, elapsed: float = 0.0,
                   interrupts: Iterable[asyncio.Event] = ()) -> None:
        """Until the next look at the files: `polling_s` without a backend; with one, until it reports a change
        (see the module's docstring) or `events_s` went by (the safety rescan). `elapsed`
        is taken off the period; any of `interrupts` (asyncio.Events) being set ends the wait early too."""
        period = polling_s if self.backend is None else events_s
        if self._pending:  # events came during the last look: look again now (they are merged into one)
            self._pending = False
            self._cancel_settle()
            return
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._waiter = waiter
        timer = self.loop.call_later(max(0.0, period - elapsed), _resolve, waiter)
        interrupt_waits = [asyncio.ensure_future(event.wait()) for event in interrupts]
        for interrupt_wait in interrupt_waits:
            interrupt_wait.add_done_callback(lambda _: _resolve(waiter))
        try:
            await waiter
        finally:
            self._waiter = None
            timer.cancel()
            for interrupt_wait in interrupt_waits:
                interrupt_wait.cancel()
        if self._pending:
            self._cancel_settle()  # this look covers the write in progress too
        self._pending = False


def _resolve(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
