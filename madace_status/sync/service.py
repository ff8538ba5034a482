"""The sync service: the file watcher and the WebSocket server, started and stopped together.

Lives on one asyncio loop. Every `poll_interval` seconds it asks the watcher what changed, re-reads those
sources, turns old model vs new model into events and hands them to the hub. The latest model is kept in
`project` for the HTTP thread to read (a reference swap, so a reader never sees half an update).

Without an event backend, a read that listed directories or read the story file or the epics, and changed the
project, is confirmed by the same read at the next poll: a file or directory made and removed again between the
watcher's stat and the read leaves no signature change behind, and only a second read sees it gone.

A look that fails never loses a change: whatever raised (a bug, an OSError, a MemoryError on a hostile file),
the next look reads the whole project again from a new watcher baseline and publishes what changed since the
last look that completed (a rescan; so does an event queue that overflowed). /metrics counts both, and the log
says so once per run of failures. Consecutive failures wait RESCAN_RETRY_MAX_S at most between attempts.
(README, "How changes are found" and "Live updates: what is guaranteed")
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import socket
import time
from typing import Any, Callable, Iterable, Optional, TypeVar

from madace_status.project.loader import ProjectPaths, root_identity
from madace_status.project.model import Project
from madace_status.forwarded import ProxyTrust
from madace_status.security import Credentials, HostPolicy, own_origins
from madace_status.sync.clients.admission import WEBSOCKET_PATHS, check_handshake, public_view
from madace_status.sync.clients.hub import HEARTBEAT_S, Hub, Metrics
from madace_status.sync.clients.subscribers import Topics, Workflows
from madace_status.sync.detect.sources import ProjectSources, ReadScope
from madace_status.sync.detect.watch_select import SAFETY_RESCAN_S, ChangeSignal
from madace_status.sync.detect.watcher import Changes, PollingWatcher, project_watcher
from madace_status.sync.events import diff_projects, snapshot_data
from madace_status.sync.history.store import TAKEOVER_RETRY_S, HistoryStore
from madace_status.sync.stopped import STOPPED_MAX_CONNECTIONS, hold_stopped_port
from madace_status.websocket import InboundLimits, Listening, Server, ServerWebSocket, serve

__all__ = ["DEFAULT_WS_PORT", "MAX_CONNECTIONS", "POLL_INTERVAL_S", "SERVER_MAX_MESSAGE_BYTES",
           "STOPPED_MAX_CONNECTIONS", "WEBSOCKET_PATHS", "SyncService"]

logger = logging.getLogger("madace_status.sync")

POLL_INTERVAL_S = 0.1
DEFAULT_WS_PORT = 3001
READER_THREADS = 1  # big changes are read and parsed off the event loop, one poll at a time
# A change to state files of at most this many bytes in all is read and parsed on the loop (well under a
# millisecond): the hop to the reader thread and back costs more than that in wake-ups on a busy machine.
# Anything bigger, new or unlisted — and the story file and the epics — goes to the reader thread.
INLINE_READ_BYTES = 32 * 1024
READ_DRAIN_S = 5.0  # at stop, how long a read in progress may take to finish before the state is reset
RESCAN_RETRY_MAX_S = 2.0  # a rescan that keeps failing is tried again at most this far apart (doubling from a poll)
SERVER_MAX_MESSAGE_BYTES = 64 * 1024
MAX_CONNECTIONS = 10000
Result = TypeVar("Result")


def _freeze_startup_objects() -> None:
    """Once per process, after the first start: the objects alive now (modules, the first project) go to the
    collector's permanent generation, so a full collection no longer walks them all — one took ~10 ms and
    landed on a file write → event path now and then (p99). CPython 3.7+; a no-op elsewhere (PyPy)."""
    global _STARTUP_FROZEN
    if not _STARTUP_FROZEN and hasattr(gc, "freeze"):
        gc.freeze()
    _STARTUP_FROZEN = True


_STARTUP_FROZEN = False


class SyncService:
    """Watcher + hub + WebSocket server. All methods but the read-only properties run on `loop`."""

    def __init__(self, paths: ProjectPaths, host: str = "127.0.0.1", ws_port: int = DEFAULT_WS_PORT,
                 poll_interval: float = POLL_INTERVAL_S, token: str | None = None, allowed_origins: Iterable[str] = (),
                 heartbeat_s: float = HEARTBEAT_S, max_connections: int = MAX_CONNECTIONS,
                 max_message_bytes: int = SERVER_MAX_MESSAGE_BYTES, compression: bool = True, watcher: str = "auto",
                 history: HistoryStore | None = None, inbound_limits: InboundLimits | None = None,
                 one_port: bool = False) -> None:
        self.paths = paths
        self.history = history  # a HistoryStore (sync/history/store.py): a sample per change of the story file
        self.compression = compression  # accept permessage-deflate offers (serve --compression auto)
        self.watcher_kind = watcher  # asked for: auto / inotify / kqueue / poll
        self.host = host
        self.ws_port = ws_port
        # serve --one-port: no port of its own; upgrades come only through the HTTP port's /ws (adopt_websocket).
        self.one_port = one_port
        self.poll_interval = poll_interval
        self.token = token
        self.allowed_origins = set(allowed_origins)
        self.heartbeat_s = heartbeat_s
        self.max_connections = max_connections
        self.max_message_bytes = max_message_bytes
        # What a client may make the server spend (websocket/inbound.py): a fresh InboundLimits() at each start
        # unless one is given (tests relax one limit to reach another).
        self.inbound_limits = inbound_limits
        self.loop: asyncio.AbstractEventLoop | None = None
        self.hub: Hub | None = None
        self.project: Project | None = None
        self.started_at: float | None = None
        self.last_error: str | None = None
        self._server: Server | None = None
        self._stopped_responder: Listening | None = None  # answers 503 while stopped by POST /api/sync
        self._poll_task: asyncio.Task[None] | None = None
        self._watcher: PollingWatcher  # made by start(), kept after stop()
        self._reader: concurrent.futures.Executor | None = None  # reads and parses files (made at the first change)
        self._reading: asyncio.Future[Any] | None = None  # its read in progress, if any
        self._signal: ChangeSignal | None = None  # the event backend (or none) and the wait between polls
        self._sources = ProjectSources(paths)  # the records read so far, and what waits out its grace period
        self._classes: tuple[set[str], str, set[str]] | None = None  # (story files, epics directory, state dirs)
        self._published: Project | None = None  # the project every client was told of: the last look published whole
        self._rescan_due = False  # the next look reads the whole project again (a look failed)
        self._confirm: ReadScope | None = None  # (state files or None, stories?, epics?) to read again next poll
        self._failed_looks = 0  # in a row
        self._git_backfill: asyncio.Future[int] | None = None  # the flow history read from git, at the first start
        self._takeover_task: asyncio.Task[None] | None = None  # waits to write the history another server writes

    async def adopt_websocket(self, sock: socket.socket, received: bytes) -> None:
        """A WebSocket upgrade the HTTP port received (GET /ws): served as if it had come to the WebSocket port."""
        if self._server is None:
            sock.close()
            return
        await self._server.adopt(sock, received)

    # -- state read by the HTTP thread ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def bound_port(self) -> int:
        if self.one_port and self.http_port is not None:
            return self.http_port  # the dashboard's port carries the WebSocket too
        return self._server.port if self._server is not None else self.ws_port

    def uptime_seconds(self) -> float:
        return round(time.time() - self.started_at, 3) if self.started_at is not None else 0

    # -- start / stop -----------------------------------------------------------------------------------------

    async def start(self, ws_port: int | None = None) -> None:
        """Bind the WebSocket port and start watching. Raises OSError when the port cannot be bound."""
        if self.running:
            return
        if ws_port is not None:
            self.ws_port = ws_port
        self.loop = loop = asyncio.get_running_loop()
        await self._release_port()
        # The watcher's baseline first, then the read: a write in between is seen at the first poll, not lost.
        self._watcher = project_watcher(self.paths)
        self._open_backend()
        self._watcher.poll()
        self.project = self._published = self._load_all()
        self._rescan_due = False
        self._failed_looks = 0
        self._confirm = None
        # The previous run's activity carries over: a restart does not empty the dashboard's "Recent activity".
        previous = self.hub
        self.hub = hub = Hub(loop, self._snapshot_for, heartbeat_s=self.heartbeat_s,
                             earlier_activity=previous.activity() if previous is not None else (),
                             project=root_identity(self.paths.root))
        try:
            self._server = server = await serve(
                host=self.host, port=self.ws_port, on_connect=hub.client_connected,
                on_message=hub.client_message, on_close=hub.client_disconnected,
                process_request=self._check_request, max_message_bytes=self.max_message_bytes,
                max_connections=self.max_connections, compression=self.compression,
                inbound_limits=self.inbound_limits or InboundLimits(), on_rate_limited=hub.client_rate_limited,
                listen=not self.one_port)
        except OSError as error:
            self.last_error = str(error)
            self.hub = previous  # not started: the last run's hub, and its activity, stay
            raise
        self.last_error = None
        if not self.one_port:
            self.ws_port = server.port  # after --ws-port 0 too, a stop/start or restart comes back on this port
        self.started_at = time.time()
        hub.start()
        _freeze_startup_objects()
        self._poll_task = loop.create_task(self._poll_forever())
        if self.history is not None:
            self.history.record(self.project)  # kept only when the flow differs from the last stored sample
            if self.history.standby:
                self._takeover_task = loop.create_task(self._wait_to_write_history(self.history))
            if self._git_backfill is None:  # once per process: the history before this server, read off the loop
                self._git_backfill = loop.run_in_executor(None, self.history.backfill_from_git, self.paths.root,
                                                          self.paths.status_file_in_use())
        logger.info("sync service listening on ws://%s:%d (run %s)", self.host, self.bound_port, hub.run_id)
        logger.info("change detection: %s%s", self.watcher_active,
                    " (fallback: %s)" % self.watcher_fallback if self.watcher_fallback else "")

    async def stop(self, code: int = 1001, reason: str = "server shutting down", timeout: float = 2.0,
                   hold_port: bool = False) -> None:
        """Close every client with `code` and stop watching. With `hold_port`, handshakes are answered 503
        until the next start; without it the port is released (and a held one too)."""
        server, self._server = self._server, None
        if server is None:  # not running
            if not hold_port:
                await self._release_port()
            return
        if self._poll_task is not None:
            self._poll_task.cancel()
            self._poll_task = None
        if self._takeover_task is not None:
            self._takeover_task.cancel()
            self._takeover_task = None
        await self._finish_reading()
        self._close_backend()
        if self.hub is not None:
            self.hub.stop()
        await server.close(code, reason, timeout=timeout)
        self.started_at = None
        if hold_port and not self.one_port:  # with one port the HTTP server answers 503 itself
            self._stopped_responder = await hold_stopped_port(self.host, self.ws_port)
        logger.info("sync service stopped")

    async def _wait_to_write_history(self, history: HistoryStore) -> None:
        """While another server of the project writes the flow history, try its lock every TAKEOVER_RETRY_S, off
        the loop: when that server is gone (a replica stopped), this one writes on (README, "Replicas")."""
        assert self.loop is not None  # set by start()
        failed = False
        while history.standby:
            await asyncio.sleep(TAKEOVER_RETRY_S)
            try:
                await self.loop.run_in_executor(None, history.try_takeover)
            except Exception:  # noqa: BLE001 — a bug must not end the wait: said once, then tried again
                if not failed:
                    logger.exception("history: taking over the flow history failed; trying again")
                failed = True

    async def _finish_reading(self) -> None:
        """Let a read in progress end before a restart resets what it writes into (bounded by READ_DRAIN_S)."""
        reading, self._reading = self._reading, None
        if reading is not None and not reading.done():
            await asyncio.wait([reading], timeout=READ_DRAIN_S)

    async def _release_port(self) -> None:
        responder, self._stopped_responder = self._stopped_responder, None
        if responder is not None:
            responder.close()
            await responder.wait_closed()

    # -- the handshake checks (README, "Security") -------------------------------------------------------------------

    def allowed_origin(self, origin: str, http_port: int | None) -> bool:
        if origin in self.allowed_origins:
            return True
        if http_port is None:
            return False  # no dashboard known (the service used on its own): only the listed origins
        return origin in own_origins(self._host_policy(), http_port)

    http_port: Optional[int] = None  # set by the serve command, for the dashboard's origin
    host_policy: Optional[HostPolicy] = None  # set by the serve command (--allowed-host); else loopback and --host
    credentials: Optional[Credentials] = None  # set by the serve command: the dashboard cookie is checked with it

    def _host_policy(self) -> HostPolicy:
        if self.host_policy is None:
            self.host_policy = HostPolicy(self.host)
        return self.host_policy

    proxy_trust: ProxyTrust = ProxyTrust()  # set by the serve command (--trust-proxy); else nobody's is believed
    base_path = ""  # set by the serve command (--base-path): an upgrade adopted from the HTTP port is at BASE/ws

    def _check_request(self, websocket: ServerWebSocket) -> tuple[()]:
        view = public_view(websocket.request, websocket.remote_address, self.proxy_trust)
        check_handshake(websocket.request, view, self._host_policy(),
                        lambda origin: self.allowed_origin(origin, self.http_port), self.token, self.credentials,
                        self.base_path)
        if view.proxied:  # the client's own address, for /api/sync and the log lines from here on
            websocket.remote_address = (view.client, 0)
        return ()

    def _snapshot_for(self, topics: Topics, workflows: Workflows) -> dict[str, Any]:
        assert self.project is not None  # the hub asks only while the service runs
        return snapshot_data(self.project, topics, workflows)

    # -- watching ---------------------------------------------------------------------------------------------

    def _classify(self, changes: Iterable[str]) -> ReadScope:
        """What the changed paths touch: (state files changed, stories?, epics?); None for the state files when
        everything must be read again (the root itself changed)."""
        if self._classes is None:  # the paths are fixed for the service's life: resolved once
            self._classes = (set(self.paths.status_file_candidates()[0]), self.paths.epics_dir_path()[0],
                             set(self.paths.state_dir_candidates()[0]))
        status_files, epics_dir, state_dirs = self._classes
        state_files: list[str] = []
        stories = epics = False
        for path in changes:
            folder = os.path.dirname(path)
            if path in status_files:
                stories = True
            elif folder == epics_dir:
                epics = True
            elif folder in state_dirs:
                state_files.append(path)
            else:
                return None, True, True
        return state_files, stories, epics

    def _open_backend(self) -> None:
        self._close_backend()
        assert self.loop is not None  # set by start()
        self._signal = ChangeSignal(self.loop, self.watcher_kind, self.paths, self._watcher)

    def _close_backend(self) -> None:
        if self._signal is not None:
            self._signal.close()

    @property
    def watcher_active(self) -> str:
        return self._signal.active if self._signal is not None else "poll"

    @property
    def watcher_fallback(self) -> str | None:
        return self._signal.fallback if self._signal is not None else None

    async def _wait_for_change(self, elapsed: float) -> None:
        # A file waiting out its grace period is read again at every poll interval, events or not.
        assert self._signal is not None  # opened by start(), closed by stop() after the poll loop
        await self._signal.wait(self.poll_interval, self.poll_interval if self._sources.bad_since else SAFETY_RESCAN_S,
                                elapsed)

    async def _poll_forever(self) -> None:
        assert self.hub is not None  # made before this task, by start()
        while True:
            started = time.perf_counter()
            metrics = self.hub.metrics
            try:
                if self._rescan_due or self._watcher.take_full_read_request():
                    await self._rescan()
                else:
                    await self._poll_off_loop()
            except Exception:  # noqa: BLE001 — whatever it was, the next look reads everything again
                self._look_failed(metrics)
            else:
                if self._failed_looks:
                    logger.info("the whole project was read again after %d failed look%s", self._failed_looks,
                                "" if self._failed_looks == 1 else "s")
                    self._failed_looks = 0
            elapsed = time.perf_counter() - started
            metrics.poll_seconds_total += elapsed
            metrics.polls_total += 1
            if self._failed_looks:
                await asyncio.sleep(min(RESCAN_RETRY_MAX_S, self.poll_interval * 2 ** (self._failed_looks - 1)))
            else:
                await self._wait_for_change(elapsed)

    def _look_failed(self, metrics: Metrics) -> None:
        """A look raised: count it, say so once (with the traceback) per run of failures, and make the next look
        a rescan: what this one was to read is then read with everything else."""
        self._rescan_due = True
        self._failed_looks += 1
        metrics.looks_failed_total += 1
        if self._failed_looks == 1:
            logger.exception("a look at the project's files failed; the next look reads the whole project again")
        else:
            logger.debug("look failed again (%d in a row)", self._failed_looks, exc_info=True)

    async def _rescan(self) -> None:
        """Read the whole project again from a new watcher baseline (first the baseline, then the read: a write in
        between is seen by the next look), and publish what changed since the last project published whole."""
        assert self.hub is not None and self.project is not None  # the poll loop runs only while started
        self.hub.metrics.rescans_total += 1
        half_published = self.project is not self._published
        self._watcher.reset()
        self._watcher.poll()
        new = await self._off_loop(self._sources.load_all, self.project.sources, False)
        if self._publish(new):
            self._confirm_later(None, True, True)
        if half_published:  # some events of the failed look went out, others not: every replica starts afresh
            self.hub.resync_all()
        self._rescan_due = False

    def poll_once(self) -> None:
        """One poll: re-read what changed (and what is waiting out its grace period), publish the events."""
        changed = self._changed_sources()
        if changed is not None:
            self._publish(self._read_sources(*changed[:3]))

    async def _poll_off_loop(self) -> None:
        """poll_once, with the reading and parsing of anything but a small change in the reader thread: even a
        hostile 4 MiB file never holds the event loop (and so every client and handshake) while it is parsed."""
        changed = self._changed_sources()
        if changed is None:
            return
        state_files, stories, epics, inline = changed
        if inline:
            self._publish(self._read_sources(state_files, stories, epics))
            return
        if self._publish(await self._off_loop(self._read_sources, state_files, stories, epics)):
            self._confirm_later(state_files, stories, epics)

    def _confirm_later(self, state_files: list[str] | None, stories: bool, epics: bool) -> None:
        """Without events, read the same sources once more at the next poll (see the module's docstring)."""
        if self._watcher.racy_recheck:
            self._confirm = (state_files, stories, epics)

    async def _off_loop(self, function: Callable[..., Result], *args: Any) -> Result:
        """`function(*args)` in the reader thread; a stop waits for it (the thread owns the sources meanwhile)."""
        if self._reader is None:
            self._reader = concurrent.futures.ThreadPoolExecutor(READER_THREADS, thread_name_prefix="reader")
        assert self.loop is not None  # set by start()
        self._reading = self.loop.run_in_executor(self._reader, function, *args)
        return await asyncio.shield(self._reading)

    def _read_sources(self, state_files: list[str] | None, stories: bool, epics: bool) -> Project:
        self._sources.reload(state_files, stories, epics)
        return self._sources.build_project(self.project.sources if self.project is not None else None)

    def _publish(self, new: Project) -> int:
        """Make `new` the project, and send every event from the last project published whole to it; returns the
        number of events."""
        self.project = new
        assert self.hub is not None  # looks are published only while started
        self.hub.project_changed()
        events = diff_projects(self._published, new)
        for event_type, data, topic, workflow in events:
            self.hub.publish(event_type, data, topic, workflow)
            if event_type == "stories_updated" and self.history is not None:
                self.history.record(new)  # in memory now; the file is written by the history's own thread
        self._published = new
        return len(events)

    def _changed_sources(self) -> tuple[list[str] | None, bool, bool, bool] | None:
        """(state files or None for all, stories?, epics?, small enough to read on the loop?) to read again, or
        None when nothing changed. Only the files whose signature changed are read (with an event backend, the
        ones the events named: the watcher stats those at every look, the others only in slow turns)."""
        changes = self._watcher.poll()
        scope = _union(self._classify(changes), self._sources.retrying())
        if self._confirm is not None:
            scope, self._confirm = _union(scope, self._confirm), None
        state_files, stories, epics = scope
        if state_files == [] and not (stories or epics):
            return None
        return state_files, stories, epics, self._small_change(state_files, stories, epics, changes)

    def _small_change(self, state_files: list[str] | None, stories: bool, epics: bool, changes: Changes) -> bool:
        """Whether the change is only known state files whose sizes (as just stat'ed) add up to at most
        INLINE_READ_BYTES. A file that grows between the stat and the read is still capped by the reader's
        own size limit (MAX_STATE_FILE_BYTES)."""
        if state_files is None or stories or epics or self._sources.needs_listing(state_files):
            return False
        total = 0
        for path in state_files:
            signature = changes.get(path)
            if signature is None:  # a retried file: its size is not at hand
                return False
            total += signature[1]
        return total <= INLINE_READ_BYTES

    def _load_all(self) -> Project:
        return self._sources.load_all(self.project.sources if self.project is not None else None)


def _union(scope: ReadScope, other: ReadScope) -> ReadScope:
    """Two (state files or None for all, stories?, epics?) read scopes as one."""
    files, stories, epics = scope
    other_files, other_stories, other_epics = other
    if files is None or other_files is None:
        files = None
    elif other_files:
        files = files + [path for path in other_files if path not in files]
    return files, stories or other_stories, epics or other_epics
