"""The live view's fallback while the server cannot be reached (README, "`madace-status status --watch`"): the
project read from --root's own files, looked at again when the event backend (inotify, kqueue) says something
changed, or every --interval when polling. No backend descriptor is held while the view is on push."""

from __future__ import annotations

import asyncio
from typing import Callable, Optional, Tuple

from madace_status.project.loader import ProjectPaths, ProjectUnreadable, load_project
from madace_status.project.model import Project
from madace_status.sync import SAFETY_RESCAN_S, ChangeSignal, project_watcher
from madace_status.watch.settings import WatchSettings

__all__ = ["LocalFiles"]

Read = Tuple[Optional[Project], Optional[str]]  # (the project, or why it could not be read)


class LocalFiles:
    """--root's project as its files say, kept up to date while the view is offline."""

    def __init__(self, paths: ProjectPaths, settings: WatchSettings) -> None:
        self.paths = paths
        self.settings = settings
        self.files = project_watcher(paths)
        self.changes: Optional[ChangeSignal] = None  # the event backend, or plain polling; see watch_select
        self.read: Optional[Read] = None  # the last look's result: None until the first look

    async def run(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event, offline: asyncio.Event,
                  online: asyncio.Event, synced: Callable[[], bool], render: Callable[[], None]) -> None:
        """Look at the files whenever the view is offline, until `stop`; `render` after each look."""
        try:
            await asyncio.wait_for(offline.wait(), self.settings.interval)  # the first attempt failed, or a wait
        except asyncio.TimeoutError:
            pass
        try:
            while not stop.is_set():
                if synced():
                    self.close()  # online: no backend descriptor is kept
                    offline.clear()
                    await offline.wait()
                    continue
                offline.clear()
                online.clear()
                if self.changes is None:
                    # Opened before the look at the files: a write in between is reported, not lost.
                    self.changes = ChangeSignal(loop, self.settings.watcher, self.paths, self.files)
                self.look()
                render()
                await self._wait_for_change(offline, online)
        finally:
            self.close()

    async def _wait_for_change(self, offline: asyncio.Event, online: asyncio.Event) -> None:
        interval = self.settings.interval
        assert self.changes is not None  # opened by run() before it waits
        if self.changes.backend is None:
            # Polling, as without events: every --interval, and at each failed connection attempt.
            await self.changes.wait(interval, interval, interrupts=(offline,))
        else:
            # Events say when to look; --interval (at least the safety period) is only the net for a missed one.
            await self.changes.wait(interval, max(interval, SAFETY_RESCAN_S), interrupts=(online,))

    def look(self) -> None:
        """Read the project again when the files changed (or the last read failed, or events were lost)."""
        full_read = self.files.take_full_read_request()  # events were lost: read again whatever poll() says
        changes = self.files.poll()
        if changes or full_read or self.read is None or self.read[1] is not None:
            try:
                self.read = (load_project(self.paths), None)
            except ProjectUnreadable as error:
                self.read = (None, "cannot read the project: %s" % error)

    def close(self) -> None:
        changes, self.changes = self.changes, None
        if changes is not None:
            changes.close()
