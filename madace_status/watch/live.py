"""The live view: the WebSocket session that keeps the replica in step, the polling fallback while the server
cannot be reached, and the redraws (README, "`madace-status status --watch`"; the replica's rules:
`madace_status.sync.replica`)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import ssl
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, TextIO
from urllib.parse import urlsplit

from madace_status import __version__
from madace_status.choices import ExitCode
from madace_status.console import can_encode, is_terminal, render
from madace_status.logsafe import escape
from madace_status.project.loader import ProjectPaths, root_identity
from madace_status.project.model import Project
from madace_status.project.registry import WORKFLOW, EntityError, Query, resolve
from madace_status.project.render.envelope import envelope, utc_timestamp
from madace_status.sync import HEARTBEAT_S, Replica, ReplicaOutOfStep, parse_message
from madace_status.watch.backoff import Backoff
from madace_status.watch.goal import Goal
from madace_status.watch.keyboard import KeyboardMode
from madace_status.watch.offline import LocalFiles
from madace_status.watch.screen import EMOJI_SAMPLE, POLLING, STREAM, WEBSOCKET, Link, Screen
from madace_status.watch.settings import WatchSettings, subscription, subscription_url
from madace_status.watch.stream import HTTP_SCHEMES, StreamRefused, events_path, read_event_stream
from madace_status.websocket import ClientWebSocket, ConnectionClosed, HandshakeError, Message, connect

if TYPE_CHECKING:
    from typing import Protocol

    from madace_status.watch.keyboard import KeyboardMode as Keyboard

    class ViewOptions(Protocol):
        """What the view reads of the status command's settings (status_command.StatusSettings)."""

        entity: str
        format: str
        ascii: bool
        paths: ProjectPaths

__all__ = ["CLOSE_TIMEOUT_S", "HANDSHAKE_TIMEOUT_S", "HEADER_TICK_S", "PING_INTERVAL_S", "PONG_TIMEOUT_S", "LiveView"]

HANDSHAKE_TIMEOUT_S = 10.0
PING_INTERVAL_S = 5.0  # JSON ping → pong: the round-trip time shown in the header, and liveness
PONG_TIMEOUT_S = 10.0  # a ping unanswered this long means the connection is dead
CLOSE_TIMEOUT_S = 1.0
HEADER_TICK_S = 1.0  # the in-place header (retry countdown) is refreshed this often
MAX_PROJECT_NAME_SHOWN = 60  # of the name a server gives its project: a peer's text, escaped and cut
_HTTP_FATAL = range(400, 500)  # a refusal no retry can fix (403: the token; 404: the path; 400: the query)


class LiveView:
    """Runs the watch: the WebSocket session, the polling fallback, the screen and the keyboard."""

    def __init__(self, options: ViewOptions, settings: WatchSettings, query: Query, stdout: TextIO,
                 environ: Mapping[str, str], goal: Optional[Goal] = None) -> None:
        self.options = options
        self.settings = settings
        self.query = query
        self.text = options.entity.strip()
        self.stdout = stdout
        self.environ = environ
        self.topics, self.workflow_filter = subscription(self.text, query)
        in_place = options.format == "table" and is_terminal(stdout) and environ.get("TERM") != "dumb"
        emoji = not options.ascii and environ.get("TERM") != "linux" and can_encode(stdout, EMOJI_SAMPLE)
        self.goal = goal
        self.goal_reached = False
        # Waiting in a script: one line per state change where a person is not watching frames redrawn.
        lines = goal is not None and options.format != "json" and not is_terminal(stdout)
        self.screen = Screen(stdout, options.format, in_place, emoji, lines)
        paths = options.paths
        epics_dir = os.path.relpath(paths.epics_dir_path()[0], paths.root).replace(os.sep, "/")
        self.replica = Replica(paths.root, epics_dir)
        self.backoff = Backoff()
        self.exit_code = ExitCode.OK
        self.fatal_message: Optional[str] = None
        self.keyboard: Optional[Keyboard] = None
        # connection state
        self.synced = False  # connected, and the replica is up to date with the server
        self.rtt_s: Optional[float] = None
        self.retry_at: Optional[float] = None
        self._barrier: Optional[int] = None  # the ping whose pong says "everything sent before it has been applied"
        self._pings: Dict[int, float] = {}  # JSON ping timestamp → loop time sent
        self._last_ping_ms = 0
        self._websocket: Optional[ClientWebSocket] = None
        self._own_root = root_identity(paths.root)["root"]
        self.note: Optional[str] = None  # the server serves another project than --root (the header says so)
        self._foreign = False  # this session's server serves another project: none of its messages is applied
        # --server http://…: the HTTP port's event stream (watch/stream.py) instead of the WebSocket.
        self._over_stream = urlsplit(settings.server).scheme in HTTP_SCHEMES
        self._heartbeat_s = HEARTBEAT_S  # the server's, once its welcome says
        self._stream_open_at: Optional[float] = None  # when the current stream's first message came
        # polling state
        self._local_files = LocalFiles(paths, settings)  # the fallback while offline
        self._render_scheduled = False
        self._resized = False

    # -- running --------------------------------------------------------------------------------------------

    async def main(self, stdin: TextIO) -> int:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self._stop = asyncio.Event()
        self._offline = asyncio.Event()
        self._online = asyncio.Event()
        handled = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
        for signum in handled:
            loop.add_signal_handler(signum, self.stop)
        if self.screen.in_place:
            loop.add_signal_handler(signal.SIGWINCH, self._on_resize)
            handled.append(signal.SIGWINCH)
        tasks: List[asyncio.Task[Any]] = []
        stopped: Optional[asyncio.Task[Any]] = None
        timeout = loop.call_later(self.settings.timeout, self._timed_out) if self.settings.timeout else None
        with KeyboardMode(stdin) as keyboard:
            self.keyboard = keyboard
            try:
                if keyboard.active:
                    assert keyboard.fd is not None  # active only once its descriptor was set
                    loop.add_reader(keyboard.fd, self._on_key)
                tasks = [loop.create_task(self._connection_loop()), loop.create_task(self._poll_loop())]
                if self.screen.in_place:
                    tasks.append(loop.create_task(self._header_ticks()))
                stopped = loop.create_task(self._stop.wait())
                await asyncio.wait(tasks + [stopped], return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    failure = task.exception() if task.done() and not task.cancelled() else None
                    if failure is not None:
                        raise failure
            finally:
                self._stop.set()  # also on an exception: every loop ends
                for task in tasks + ([stopped] if stopped is not None else []):
                    task.cancel()
                if tasks:
                    await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
                await self._close_websocket()
                if keyboard.active:
                    assert keyboard.fd is not None
                    loop.remove_reader(keyboard.fd)
                keyboard.restore()
                self.screen.finish()
                for signum in handled:
                    loop.remove_signal_handler(signum)
                if timeout is not None:
                    timeout.cancel()
        return self.exit_code

    def stop(self, exit_code: ExitCode = ExitCode.OK, message: Optional[str] = None) -> None:
        if not self._stop.is_set():
            self.exit_code = exit_code
            self.fatal_message = message
            self._stop.set()

    def _timed_out(self) -> None:
        shown = self.screen.content if self.screen.lines else None
        self.stop(ExitCode.TIMED_OUT, "timed out after %g s waiting for %s%s" % (
            self.settings.timeout or 0, self.text or "the project", " (%s)" % shown if isinstance(shown, str) else ""))

    def _on_key(self) -> None:
        assert self.keyboard is not None and self.keyboard.fd is not None  # read only while the keyboard is ours
        try:
            data = os.read(self.keyboard.fd, 64)
        except OSError:
            data = b""
        if not data:
            self.loop.remove_reader(self.keyboard.fd)  # stdin closed: only signals stop us now
            return
        if b"q" in data or b"Q" in data:
            self.stop()

    def _on_resize(self) -> None:
        self._resized = True
        self._schedule_render()

    async def _header_ticks(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(HEADER_TICK_S)
            self.screen.refresh_header(self._link())

    # -- rendering ------------------------------------------------------------------------------------------

    def _link(self) -> Link:
        retry_in = None
        if self.retry_at is not None:
            retry_in = max(0, int(math.ceil(self.retry_at - self.loop.time())))
        if self.synced:
            return Link(STREAM if self._over_stream else WEBSOCKET, self.rtt_s, None, self.settings.server, self.note)
        return Link(POLLING, None, retry_in, self.settings.server, self.note)

    def _schedule_render(self) -> None:
        # Called once per message: rendering after the loop's next turn draws a burst of events once.
        if not self._render_scheduled:
            self._render_scheduled = True
            self.loop.call_soon(self._render)

    def _render(self) -> None:
        self._render_scheduled = False
        project: Optional[Project]
        problem: Optional[str]
        if self.synced:
            project, problem = self.replica.project(), None
        elif self._local_files.read is not None:
            project, problem = self._local_files.read
        else:
            return  # nothing to show yet: the first frame waits for data
        entity = None
        if problem is None:
            assert project is not None  # a project, or the problem that kept it from being read
            try:
                entity = resolve(project, self.text)
            except EntityError as error:
                problem = str(error)
        content: object
        body: Any
        if self.options.format == "json":
            if entity is not None:
                body = envelope(entity)
            else:
                body = {"entityType": self.query.kind, "entityId": self.query.key, "data": None,
                        "timestamp": utc_timestamp(), "warnings": [], "errors": [problem]}
            content = dict(body)
            del content["timestamp"]
        elif entity is not None and self.screen.lines:
            assert self.goal is not None  # lines are drawn only while waiting for a goal
            content = body = self.goal.state_line(entity)
        elif entity is not None:
            content = body = render(entity, self.options, self.stdout, self.environ)
        else:
            content = body = "%s\n" % problem
        force, self._resized = self._resized, False
        self.screen.show(content, body, self._link(), force)
        if self.screen.broken:
            self.stop()
        elif self.goal is not None and entity is not None:
            code = self.goal.exit_code(entity)
            if code is not None:
                self.goal_reached = True
                self.stop(code)

    # -- polling --------------------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        await self._local_files.run(self.loop, self._stop, self._offline, self._online, lambda: self.synced,
                                    self._render)

    # -- the WebSocket session ------------------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        # Every loop here checks the stop flag too: before Python 3.12, wait_for() can swallow a cancellation
        # that arrives as the awaited thing finishes.
        while not self._stop.is_set():
            session = self._stream_session if self._over_stream else self._websocket_session
            connected_at = await session()
            if self._stop.is_set():
                return
            if connected_at is not None:
                self.backoff.connection_lasted(self.loop.time() - connected_at)
            self.retry_at = self.loop.time() + self.backoff.next_delay()
            self._went_offline()
            await asyncio.sleep(max(0.0, self.retry_at - self.loop.time()))
            self.retry_at = None

    async def _websocket_session(self) -> Optional[float]:
        """One connection to the WebSocket server, kept until it drops; when it was made, or None."""
        try:
            websocket = await connect(self._url(), authorization=self.settings.authorization(),
                                      headers=[("User-Agent", "madace-status/%s" % __version__)],
                                      open_timeout=HANDSHAKE_TIMEOUT_S, ssl_context=self.settings.ssl_context())
        except ssl.SSLCertVerificationError as error:  # will not mend by itself: say so and stop
            self.stop(ExitCode.USAGE, self.settings.certificate_message(error))
            return None
        except HandshakeError as error:
            if error.status in _HTTP_FATAL:
                self.stop(ExitCode.USAGE, self.settings.refusal_message(error.status, error.reason))
            return None
        except (OSError, ValueError, ConnectionClosed):
            return None
        connected_at = self.loop.time()
        await self._session(websocket)
        return connected_at

    async def _stream_session(self) -> Optional[float]:
        """One read of the server's event stream (--server http://…), kept until it ends or goes silent."""
        run_id, since = self.replica.position()
        # The server URL's own query kept, ours added (a workflow view takes the whole workflows topic: a stream
        # cannot be asked again by name, as a WebSocket can).
        query = urlsplit(subscription_url(self.settings.server, self.topics, None, None, None,
                                          self.settings.query_token())).query
        headers = [("User-Agent", "madace-status/%s" % __version__)]
        authorization = self.settings.authorization()
        if authorization is not None:
            headers.append(("Authorization", authorization))
        if run_id is not None and since is not None:
            headers.append(("Last-Event-ID", "%s:%d" % (run_id, since)))
        self._foreign = False
        self._stream_open_at = None
        try:
            await read_event_stream(self.settings.server, events_path(self.settings.server, query), headers,
                                    HANDSHAKE_TIMEOUT_S, self._stream_idle_timeout, self._on_stream_message,
                                    self.settings.ssl_context())
        except ssl.SSLCertVerificationError as error:
            self.stop(ExitCode.USAGE, self.settings.certificate_message(error))
            return None
        except StreamRefused as error:
            if error.status in _HTTP_FATAL:
                self.stop(ExitCode.USAGE, self.settings.refusal_message(error.status, error.reason))
        except (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        return self._stream_open_at

    def _stream_idle_timeout(self) -> float:
        # Heartbeat comments come every heartbeat: two missed and a margin mean a dead peer or network.
        return 2 * self._heartbeat_s + PONG_TIMEOUT_S

    def _on_stream_message(self, text: str) -> None:
        if self._stream_open_at is None:
            self._stream_open_at = self.loop.time()
        message = parse_message(text)
        if message is None or self._foreign:
            return
        kind, data, seq = message
        if kind == "ping" and isinstance(data, dict):
            if not self._accepts_project(data.get("project")):
                self._foreign = True
                raise ValueError("the server serves another project")  # ends the read: polling takes over
            heartbeat_ms = data.get("heartbeatMs")
            if isinstance(heartbeat_ms, int) and 1000 <= heartbeat_ms <= 120000:
                self._heartbeat_s = heartbeat_ms / 1000
        try:
            changed = self.replica.receive(kind, data, seq)
        except ReplicaOutOfStep:
            raise ValueError("a message the replica cannot apply")  # read afresh: a new stream, a new snapshot
        if kind != "ping" and not self.synced:
            self.synced = True  # the snapshot, or the replayed events: the replica is the server's from here
            self.retry_at = None
            self._online.set()
            self._schedule_render()
        elif changed:
            self._changed()

    def _url(self) -> str:
        run_id, since = self.replica.position()
        return subscription_url(self.settings.server, self.topics, self.workflow_filter, run_id, since,
                                self.settings.query_token())

    def _went_offline(self) -> None:
        was_synced = self.synced
        self.synced = False
        self._offline.set()
        if not was_synced:
            self.screen.refresh_header(self._link())

    async def _session(self, websocket: ClientWebSocket) -> None:
        self._websocket = websocket
        self._foreign = False
        self._pings.clear()
        self._barrier = self._send_ping(websocket)
        keepalive = self.loop.create_task(self._keepalive(websocket))
        try:
            async for message in websocket:
                self._on_message(websocket, message)
        finally:
            keepalive.cancel()
            self._barrier = None
            if not self._stop.is_set():  # when stopping, main() closes it with a close frame
                self._websocket = None
                if not websocket.closed:
                    websocket.transport.abort()

    async def _keepalive(self, websocket: ClientWebSocket) -> None:
        last_sent = self.loop.time()
        while not self._stop.is_set():
            await asyncio.sleep(min(1.0, PING_INTERVAL_S))
            now = self.loop.time()
            if any(now - sent > PONG_TIMEOUT_S for sent in self._pings.values()):
                websocket.transport.abort()  # silent too long: a dead peer or a dead network
                return
            if now - last_sent >= PING_INTERVAL_S:
                self._send_ping(websocket)
                last_sent = now

    def _send_ping(self, websocket: ClientWebSocket) -> Optional[int]:
        stamp = max(int(time.time() * 1000), self._last_ping_ms + 1)
        self._last_ping_ms = stamp
        try:
            websocket.send(json.dumps({"type": "ping", "timestamp": stamp}, allow_nan=False))
        except ConnectionClosed:
            return None
        self._pings[stamp] = self.loop.time()
        return stamp

    def _on_message(self, websocket: ClientWebSocket, text: Message) -> None:
        message = parse_message(text)
        if message is None or self._foreign:
            return  # not a message of the protocol, or from a server of another project: nothing to apply
        kind, data, seq = message
        if kind == "ping" and isinstance(data, dict) and not self._accepts_project(data.get("project")):
            self._foreign = True
            websocket.transport.abort()
            return
        try:
            if kind == "pong":
                self._on_pong(websocket, data.get("timestamp"))
            elif self.replica.receive(kind, data, seq):
                self._changed()
        except (ReplicaOutOfStep, ValueError, TypeError, KeyError, AttributeError):
            # A message this replica cannot apply: start over from a fresh snapshot rather than show a wrong view.
            self.replica.forget_position()
            websocket.transport.abort()

    def _accepts_project(self, project: object) -> bool:
        """Whether to show what this server sends, from its welcome's `project` (README, "`madace-status status
        --watch`"): the same root as --root, yes; another one, only when --server named this server (then the
        header says so); a server that does not say (an older one), yes."""
        if not isinstance(project, dict) or not isinstance(project.get("root"), str):
            return True
        if project["root"] == self._own_root:
            self.note = None
            return True
        name = escape(project.get("name"), MAX_PROJECT_NAME_SHOWN)
        if self.settings.server_chosen:
            self.note = "the server's project is %s, not --root" % name
            return True
        self.note = "the server at %s serves another project (%s)" % (self.settings.server, name)
        return False

    def _changed(self) -> None:
        if self.synced:
            self._schedule_render()

    def _on_pong(self, websocket: ClientWebSocket, stamp: object) -> None:
        sent = self._pings.pop(stamp, None) if isinstance(stamp, int) else None
        if sent is None:
            return
        self.rtt_s = self.loop.time() - sent
        if stamp != self._barrier:
            self.screen.refresh_header(self._link())
            return
        self._barrier = None
        if self.workflow_filter is not None and self.query.kind == WORKFLOW and \
                self.replica.project().workflow(self.query.key or "") is None:  # a workflow query has its name
            # Not under its exact name: one-shot also matches a workflow's name in any case, so ask for them all.
            self.workflow_filter = None
            try:
                assert self.topics is not None  # a workflow view subscribes to the workflows topic
                websocket.send(json.dumps({"type": "subscribe", "topics": list(self.topics)}, allow_nan=False))
            except ConnectionClosed:
                return
            self._barrier = self._send_ping(websocket)
            return
        self.synced = True
        self.retry_at = None
        self._online.set()  # the offline fallback stops watching the files
        self._schedule_render()

    async def _close_websocket(self) -> None:
        websocket = self._websocket
        if websocket is None or websocket.closed:
            return
        try:
            await asyncio.wait_for(websocket.close(reason="watch stopped"), CLOSE_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionClosed, OSError):
            websocket.transport.abort()

