"""The sync service: the file watcher and the WebSocket server, started and stopped together.

Lives on one asyncio loop. Every `poll_interval` seconds it asks the watcher what changed, re-reads those
sources, turns old model vs new model into events and hands them to the hub. The latest model is kept in
`project` for the HTTP thread to read (a reference swap, so a reader never sees half an update).
"""

import asyncio
import concurrent.futures
import logging
import os
import time

from madace_status.project.loader import (assemble_workflows, check_root, list_workflow_sources, load_epics,
                                         load_stories)
from madace_status.project.files import is_busy_reason
from madace_status.project.model import Project
from madace_status.project.workflows import read_workflow_file
from madace_status.security import HostPolicy, own_origins, token_matches
from madace_status.sync.events import diff_projects, snapshot_data
from madace_status.sync.hub import HEARTBEAT_S, Hub, SubscriptionError, parse_since, parse_topics, parse_workflows
from madace_status.sync.watch_select import SAFETY_RESCAN_S, ChangeSignal
from madace_status.sync.watcher import project_watcher
from madace_status.websocket import HandshakeError, serve
from madace_status.websocket.handshake import refusal_response
from madace_status.websocket.listener import listening_sockets, start_listening

logger = logging.getLogger("madace_status.sync")

POLL_INTERVAL_S = 0.1
DEFAULT_WS_PORT = 3001
INVALID_GRACE_S = 0.5  # a file must stay unparseable this long before it is reported invalid
READER_THREADS = 1  # files are read and parsed off the event loop, one poll at a time
READ_DRAIN_S = 5.0  # at stop, how long a read in progress may take to finish before the state is reset
_RETRY_WORKFLOW = "workflow:"  # _bad_since keys: "workflow:<path>" and "stories"
_RETRY_STORIES = "stories"
_RETRY_LISTING = "listing"    # the state directories could not be listed for lack of descriptors
_RETRY_EPICS = "epics"        # an epic file could not be opened for lack of descriptors
SERVER_MAX_MESSAGE_BYTES = 64 * 1024
MAX_CONNECTIONS = 10000
WEBSOCKET_PATHS = ("/", "/ws")

STOPPED_REASON = 'the sync service is stopped; POST /api/sync {"action": "start"} starts it'
STOPPED_REQUEST_BYTES = 16 * 1024  # the most of a handshake read before answering (the answer is the same anyway)
STOPPED_TIMEOUT_S = 10.0
STOPPED_MAX_CONNECTIONS = 64  # connections answered at once while stopped; more are dropped at once
STOPPED_BACKLOG = 100


class StoppedResponder(asyncio.Protocol):
    """Holds the WebSocket port while the service is stopped: each handshake is answered 503 with the reason,
    so a client learns the service is stopped on purpose (and the port stays ours for the restart). At most
    STOPPED_MAX_CONNECTIONS × STOPPED_REQUEST_BYTES are held, whatever peers do."""

    def __init__(self, live):
        self.live = live  # the responders with a connection, shared by all
        self.transport = None
        self.received = None
        self.timer = None

    def connection_made(self, transport):
        self.transport = transport
        if len(self.live) >= STOPPED_MAX_CONNECTIONS:
            transport.abort()
            return
        self.live.add(self)
        self.received = bytearray()
        self.timer = asyncio.get_running_loop().call_later(STOPPED_TIMEOUT_S, transport.abort)

    def data_received(self, data):
        if self.received is None:
            return  # answered (or dropped): nothing more is kept
        self.received += data
        # Answer once the request is all here, so closing does not reset a connection with unread bytes.
        if b"\r\n\r\n" in self.received or len(self.received) > STOPPED_REQUEST_BYTES:
            self.received = None
            self.transport.write(refusal_response(503, STOPPED_REASON))
            self.transport.close()

    def connection_lost(self, exc):
        self.live.discard(self)
        if self.timer is not None:
            self.timer.cancel()


class SyncService:
    """Watcher + hub + WebSocket server. All methods but the read-only properties run on `loop`."""

    def __init__(self, paths, host="127.0.0.1", ws_port=DEFAULT_WS_PORT, poll_interval=POLL_INTERVAL_S, token=None,
                 allowed_origins=(), heartbeat_s=HEARTBEAT_S, max_connections=MAX_CONNECTIONS,
                 max_message_bytes=SERVER_MAX_MESSAGE_BYTES, compression=True, watcher="auto", history=None):
        self.paths = paths
        self.history = history  # a HistoryStore (sync/history_store.py): a sample per change of the story file
        self.compression = compression  # accept permessage-deflate offers (serve --compression auto)
        self.watcher_kind = watcher  # asked for: auto / inotify / kqueue / poll
        self.host = host
        self.ws_port = ws_port
        self.poll_interval = poll_interval
        self.token = token
        self.allowed_origins = set(allowed_origins)
        self.heartbeat_s = heartbeat_s
        self.max_connections = max_connections
        self.max_message_bytes = max_message_bytes
        self.loop = None
        self.hub = None
        self.project = None
        self.started_at = None
        self.last_error = None
        self._server = None
        self._stopped_responder = None  # the listener that answers 503 while stopped by POST /api/sync
        self._poll_task = None
        self._watcher = None
        self._reader = None  # the thread that reads and parses files (made at the first change)
        self._reading = None  # its read in progress, if any
        self._signal = None  # the event backend (or none: polling) and the wait between polls; see watch_select
        self._bad_since = {}  # "workflow:<path>" or "stories" → monotonic time it first failed to parse
        self._workflow_files = []  # [(state file, symlink boundary)] in reading order
        self._workflow_source_notices = ([], [])  # the state directories' own warnings and errors
        self._workflow_records = {}  # state file → its record (the last good one during a grace period)
        self._parts = {}  # "stories" / "epics" → (records, source-level warnings, source-level errors)

    # -- state read by the HTTP thread ------------------------------------------------------------------------

    @property
    def running(self):
        return self._server is not None

    @property
    def bound_port(self):
        return self._server.port if self._server is not None else self.ws_port

    def uptime_seconds(self):
        return round(time.time() - self.started_at, 3) if self.started_at is not None else 0

    # -- start / stop -----------------------------------------------------------------------------------------

    async def start(self, ws_port=None):
        """Bind the WebSocket port and start watching. Raises OSError when the port cannot be bound."""
        if self.running:
            return
        if ws_port is not None:
            self.ws_port = ws_port
        self.loop = asyncio.get_running_loop()
        await self._release_port()
        # The watcher's baseline first, then the read: a write in between is seen at the first poll, not lost.
        self._watcher = project_watcher(self.paths)
        self._open_backend()
        self._watcher.poll()
        self.project = self._load_all()
        self.hub = Hub(self.loop, self._snapshot_for, heartbeat_s=self.heartbeat_s)
        try:
            self._server = await serve(
                host=self.host, port=self.ws_port, on_connect=self.hub.client_connected,
                on_message=self.hub.client_message, on_close=self.hub.client_disconnected,
                process_request=self._check_request, max_message_bytes=self.max_message_bytes,
                max_connections=self.max_connections, compression=self.compression)
        except OSError as error:
            self.last_error = str(error)
            self.hub = None
            raise
        self.last_error = None
        self.ws_port = self._server.port  # after --ws-port 0 too, a stop/start or restart comes back on this port
        self.started_at = time.time()
        self.hub.start()
        self._poll_task = self.loop.create_task(self._poll_forever())
        if self.history is not None:
            self.history.record(self.project)  # kept only when the flow differs from the last stored sample
        logger.info("sync service listening on ws://%s:%d (run %s)", self.host, self.bound_port, self.hub.run_id)
        logger.info("change detection: %s%s", self.watcher_active,
                    " (fallback: %s)" % self.watcher_fallback if self.watcher_fallback else "")

    async def stop(self, code=1001, reason="server shutting down", timeout=2.0, hold_port=False):
        """Close every client with `code` and stop watching. With `hold_port`, handshakes are answered 503
        until the next start; without it the port is released (and a held one too)."""
        if not self.running:
            if not hold_port:
                await self._release_port()
            return
        server, self._server = self._server, None
        if self._poll_task is not None:
            self._poll_task.cancel()
            self._poll_task = None
        await self._finish_reading()
        self._close_backend()
        self.hub.stop()
        await server.close(code, reason, timeout=timeout)
        self.started_at = None
        if hold_port:
            try:
                live = set()
                sockets = await listening_sockets(self.host, self.ws_port, STOPPED_BACKLOG)
                self._stopped_responder = await start_listening(sockets, lambda: StoppedResponder(live),
                                                                STOPPED_BACKLOG)
            except OSError as error:  # taken by someone else meanwhile: clients then find nothing listening
                logger.info("cannot hold port %d while stopped: %s", self.ws_port, error.strerror or error)
        logger.info("sync service stopped")

    async def _finish_reading(self):
        """Let a read in progress end before a restart resets what it writes into (bounded by READ_DRAIN_S)."""
        reading, self._reading = self._reading, None
        if reading is not None and not reading.done():
            await asyncio.wait([reading], timeout=READ_DRAIN_S)

    async def _release_port(self):
        responder, self._stopped_responder = self._stopped_responder, None
        if responder is not None:
            responder.close()
            await responder.wait_closed()

    # -- the handshake checks of SPEC §6.1 and §6.6 -----------------------------------------------------------

    def allowed_origin(self, origin, http_port):
        if origin in self.allowed_origins:
            return True
        if http_port is None:
            return False  # no dashboard known (the service used on its own): only the listed origins
        return origin in own_origins(self._host_policy(), http_port)

    http_port = None  # set by the serve command, for the dashboard's origin
    host_policy = None  # set by the serve command (--allowed-host); else the loopback names and --host
    credentials = None  # set by the serve command: the dashboard cookie is checked with it

    def _host_policy(self):
        if self.host_policy is None:
            self.host_policy = HostPolicy(self.host)
        return self.host_policy

    def _check_request(self, websocket):
        request = websocket.request
        refusal = self._host_policy().refusal(request.headers.get("Host"))  # DNS rebinding, as on HTTP
        if refusal is not None:
            raise HandshakeError(refusal, status=403)
        if request.path not in WEBSOCKET_PATHS:
            raise HandshakeError("no WebSocket endpoint at %s (use / or /ws)" % request.path[:80], status=404)
        origin = request.origin
        if origin is not None and not self.allowed_origin(origin, self.http_port):
            raise HandshakeError("origin %s is not allowed" % origin[:100], status=403)
        if self.token:
            offered = request.query_value("token")
            authorization = request.headers.get("Authorization") or ""
            if offered is None and authorization.lower().startswith("bearer "):
                offered = authorization[7:].strip()
            cookie_ok = offered is None and self.credentials is not None and \
                self.credentials.cookie_ok(request.headers.get("Cookie"))
            if not cookie_ok and not token_matches(self.token, offered):
                raise HandshakeError("missing or wrong token", status=403)
        try:
            parse_topics(request.query_value("topics"))
            parse_workflows(request.query_value("workflows"))
            parse_since(request.query_value("since"))
        except SubscriptionError as error:
            raise HandshakeError(str(error), status=400)
        return ()

    def _snapshot_for(self, topics, workflows):
        return snapshot_data(self.project, topics, workflows)

    # -- watching ---------------------------------------------------------------------------------------------

    def _classify(self, changes):
        """What the changed paths touch: (state files changed, stories?, epics?); None for the state files when
        everything must be read again (the root itself changed)."""
        status_files = set(self.paths.status_file_candidates()[0])
        epics_dir = self.paths.epics_dir_path()[0]
        state_dirs = set(self.paths.state_dir_candidates()[0])
        state_files = []
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

    def _open_backend(self):
        self._close_backend()
        self._signal = ChangeSignal(self.loop, self.watcher_kind, self.paths, self._watcher)

    def _close_backend(self):
        if self._signal is not None:
            self._signal.close()

    @property
    def watcher_active(self):
        return self._signal.active if self._signal is not None else "poll"

    @property
    def watcher_fallback(self):
        return self._signal.fallback if self._signal is not None else None

    async def _wait_for_change(self, elapsed):
        # A file waiting out its grace period is read again at every poll interval, events or not.
        await self._signal.wait(self.poll_interval, self.poll_interval if self._bad_since else SAFETY_RESCAN_S,
                                elapsed)

    async def _poll_forever(self):
        while True:
            started = time.perf_counter()
            try:
                await self._poll_off_loop()
            except Exception:  # a bug must not stop the watcher: log it and keep polling
                logger.exception("poll failed")
            elapsed = time.perf_counter() - started
            metrics = self.hub.metrics
            metrics.poll_seconds_total += elapsed
            metrics.polls_total += 1
            await self._wait_for_change(elapsed)

    def poll_once(self):
        """One poll: re-read what changed (and what is waiting out its grace period), publish the events."""
        changed = self._changed_sources()
        if changed is not None:
            old = self.project
            self._publish(old, self._read_sources(*changed))

    async def _poll_off_loop(self):
        """poll_once, with the reading and parsing in the reader thread: even a hostile 4 MiB file never holds
        the event loop (and so every client and handshake) while it is parsed."""
        changed = self._changed_sources()
        if changed is None:
            return
        old = self.project
        if self._reader is None:
            self._reader = concurrent.futures.ThreadPoolExecutor(READER_THREADS, thread_name_prefix="reader")
        self._reading = self.loop.run_in_executor(self._reader, self._read_sources, *changed)
        new = await asyncio.shield(self._reading)  # a stop waits for it: the thread owns the parts meanwhile
        self._publish(old, new)

    def _read_sources(self, state_files, stories, epics):
        self._reload(state_files, stories, epics)
        return self._build_project()

    def _publish(self, old, new):
        self.project = new
        self.hub.project_changed()
        for event_type, data, topic, workflow in diff_projects(old, new):
            self.hub.publish(event_type, data, topic, workflow)
            if event_type == "stories_updated" and self.history is not None:
                self.history.record(new)  # in memory now; the file is written by the history's own thread

    def _changed_sources(self):
        """(state files or None for all, stories?, epics?) to read again, or None when nothing changed."""
        changes = self._watcher.poll()
        state_files, stories, epics = self._classify(changes)
        retrying = [key[len(_RETRY_WORKFLOW):] for key in self._bad_since if key.startswith(_RETRY_WORKFLOW)]
        if state_files is not None and retrying:
            state_files = state_files + [path for path in retrying if path not in state_files]
        stories = stories or _RETRY_STORIES in self._bad_since
        epics = epics or _RETRY_EPICS in self._bad_since
        if state_files == [] and not (stories or epics):
            return None
        return state_files, stories, epics

    def _load_all(self):
        check_root(self.paths.root)
        self._workflow_records = {}
        self._bad_since = {}
        self._parts = {}
        self._reload(None, True, True, grace=False)  # at start there is no last good state to keep
        return self._build_project()

    def _build_project(self):
        records = [self._workflow_records[path] for path, _ in self._workflow_files if path in self._workflow_records]
        workflows, duplicate_warnings = assemble_workflows(records)
        workflow_warnings, workflow_errors = self._workflow_source_notices
        stories, story_warnings, story_errors = self._parts["stories"]
        epics, epic_warnings, epic_errors = self._parts["epics"]
        return Project(self.paths.root, workflows, stories, epics, workflow_warnings + duplicate_warnings,
                       workflow_errors, story_warnings, story_errors, epic_warnings, epic_errors,
                       self.project.sources if self.project is not None else None)

    def _reload(self, state_files, reload_stories, reload_epics, grace=True):
        """Read again the state files named (None: list the state directories and read them all), and the
        story file and epics when asked."""
        now = time.monotonic()
        if state_files is None or _RETRY_LISTING in self._bad_since or \
                any(path not in self._workflow_records or not os.path.lexists(path) for path in state_files):
            _, listed, warnings, errors = list_workflow_sources(self.paths)
            if any(is_busy_reason(error) for error in errors):
                # out of descriptors, not out of files: keep what was listed and look again at the next poll
                self._bad_since.setdefault(_RETRY_LISTING, now)
            else:
                self._bad_since.pop(_RETRY_LISTING, None)
                self._workflow_files = listed
                self._workflow_source_notices = (warnings, errors)
        boundaries = dict(self._workflow_files)
        if state_files is None:
            state_files = list(boundaries) + [path for path in self._workflow_records if path not in boundaries]
        for path in state_files:
            if path not in boundaries:
                self._workflow_records.pop(path, None)
                self._bad_since.pop(_RETRY_WORKFLOW + path, None)
                continue
            self._read_state_file(path, boundaries[path], now, grace)
        if reload_stories:
            _, stories, warnings, errors = load_stories(self.paths)
            previous = self._parts.get("stories")
            if previous is not None and any(is_busy_reason(error) for error in errors):
                self._bad_since.setdefault(_RETRY_STORIES, now)   # out of descriptors: keep, retry next poll
            elif errors and grace and previous is not None and not previous[2] and \
                    self._within_grace(_RETRY_STORIES, now):
                pass  # unreadable for now: keep the last good stories and look again at the next poll
            else:
                self._bad_since.pop(_RETRY_STORIES, None)
                self._parts["stories"] = (stories, warnings, errors)
        if reload_epics:
            epics, warnings, errors = load_epics(self.paths)[1:]
            busy = any(is_busy_reason(epic.error or "") for epic in epics) or any(map(is_busy_reason, errors))
            if busy and self._parts.get("epics") is not None:
                self._bad_since.setdefault(_RETRY_EPICS, now)   # out of descriptors: keep, retry next poll
            else:
                self._bad_since.pop(_RETRY_EPICS, None)
                self._parts["epics"] = (epics, warnings, errors)

    def _read_state_file(self, path, boundary, now, grace):
        """A file caught mid-write keeps its last good record (a new one stays unseen) until it has been bad for
        INVALID_GRACE_S; meanwhile it is read again at every poll."""
        record = read_workflow_file(path, self.paths.root, boundary)
        before = self._workflow_records.get(path)
        key = _RETRY_WORKFLOW + path
        if record.is_invalid and is_busy_reason(record.error or ""):
            # EMFILE/ENFILE: the file is not broken, the process is short of descriptors. Keep the last good
            # record (a new file stays unseen), whatever the grace, and read it again at the next poll.
            self._bad_since.setdefault(key, now)
            return
        if grace and record.is_invalid and (before is None or not before.is_invalid) and \
                self._within_grace(key, now):
            return
        self._bad_since.pop(key, None)
        self._workflow_records[path] = record

    def _within_grace(self, key, now):
        first = self._bad_since.setdefault(key, now)
        return now - first < INVALID_GRACE_S
