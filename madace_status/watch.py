"""`status --watch`: the live terminal view (SPEC §5.1).

WebSocket first: the view keeps a replica of the project built from the server's `snapshot` and the events
that follow, and renders it with the same renderers as one-shot `status`. When the server cannot be reached,
or drops, it polls the local files every `--interval` seconds and reconnects in the background (exponential
backoff with full jitter), resuming from the last event it saw so nothing that changed meanwhile is missed.

Output: table format on a terminal redraws in place (cursor home, each line cleared to its end, the rest of
the screen cleared: nothing is blanked first, so nothing flickers, and nothing scrolls); every other case
appends: one JSON document per line (NDJSON), markdown blocks split by `---`, or plain tables. Without a
terminal no escape sequence is written.
"""

import asyncio
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from madace_status import __version__
from madace_status.project.loader import ProjectUnreadable, load_project, load_workflows
from madace_status.project.model import STORY_STATES, Epic, Project, Story, Workflow, violation_prefix
from madace_status.project.registry import (ACCEPTED_PATTERNS, EPIC, EPICS, STORIES, STORY, SUMMARY, WORKFLOW,
                                            WORKFLOWS, EntityError, UnrecognisedEntity, check_entity_text, classify,
                                            resolve, shown)
from madace_status.project.render.envelope import envelope, json_text, utc_timestamp
from madace_status.project.render.text import cut, display_width
from madace_status.settings import ENV_PREFIX, SettingError, setting
from madace_status.status_command import (EXIT_OK, EXIT_USAGE, UsageError, _fail, _silence_stdout, render,
                                          write_text)
from madace_status.sync.watcher import project_watcher
from madace_status.websocket import ConnectionClosed, HandshakeError, connect

DEFAULT_SERVER = "ws://127.0.0.1:3001"
DEFAULT_INTERVAL_S = 2.0
MIN_INTERVAL_S = 0.1
BACKOFF_START_S = 0.5
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 30.0
BACKOFF_RESET_AFTER_S = 10.0  # a connection that lasted this long starts the backoff over
HANDSHAKE_TIMEOUT_S = 10.0
PING_INTERVAL_S = 5.0  # JSON ping → pong: the round-trip time shown in the header, and liveness
PONG_TIMEOUT_S = 10.0  # a ping unanswered this long means the connection is dead
CLOSE_TIMEOUT_S = 1.0
HEADER_TICK_S = 1.0  # the in-place header (retry countdown) is refreshed this often
STOPPED_MESSAGE = "Watch mode stopped"
CLIENT_SOURCE = "cli"

WEBSOCKET = "websocket"
POLLING = "polling"
EVENT_TYPES = frozenset(("state_updated", "workflow_started", "workflow_completed", "workflow_failed",
                         "workflow_removed", "stories_updated", "epics_updated"))
_HTTP_FATAL = range(400, 500)  # a refusal no retry can fix (403: the token; 404: the path; 400: the query)
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_EMOJI_SAMPLE = "\U0001f7e2\U0001f534"  # 🟢🔴
_STATE_FILE_SOURCE = re.compile(r"\A\S*\.state\.json: ")
_EPIC_FILE_SOURCE = re.compile(r"\A\S*EPIC[^/\s:]*\.md: ")
_VIOLATION_PREFIXES = tuple(violation_prefix(state) for state in STORY_STATES)


# -- settings -----------------------------------------------------------------------------------------------

class WatchSettings(object):
    """--interval, --server and --token, from the command line first, then MADACE_STATUS_* variables."""

    __slots__ = ("interval", "server", "token")

    def __init__(self, interval=DEFAULT_INTERVAL_S, server=DEFAULT_SERVER, token=None):
        self.interval = interval
        self.server = server
        self.token = token

    @classmethod
    def from_args(cls, args, environ):
        try:
            interval = setting(getattr(args, "interval", None), "INTERVAL", environ, convert=float)
        except SettingError as error:
            raise UsageError(str(error))
        if interval is None:
            interval = DEFAULT_INTERVAL_S
        if not (math.isfinite(interval) and interval >= MIN_INTERVAL_S):
            raise UsageError("--interval must be a number of seconds, at least %g (got %s)"
                             % (MIN_INTERVAL_S, interval))
        server = setting(getattr(args, "server", None), "SERVER", environ) or DEFAULT_SERVER
        check_server_url(server)
        token = setting(getattr(args, "token", None), "TOKEN", environ)
        if token is not None and any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in token):
            raise UsageError("--token must not contain control characters")
        return cls(interval, server, token)


def check_server_url(url):
    """Raise UsageError unless `url` is a usable ws:// or wss:// URL."""
    example = "e.g. ws://127.0.0.1:3001"
    if any(ch <= " " or ch == "\x7f" for ch in url):
        raise UsageError("--server URL must not contain spaces or control characters: '%s'" % shown(url))
    try:
        parts = urlsplit(url)
        parts.port  # ValueError for a port that is not a number from 0 to 65535
    except ValueError as error:
        raise UsageError("--server URL '%s' is malformed (%s); %s" % (shown(url), error, example))
    if parts.scheme not in ("ws", "wss"):
        raise UsageError("--server must be a ws:// or wss:// URL, %s (got '%s')" % (example, shown(url)))
    if not parts.hostname:
        raise UsageError("--server URL '%s' has no host; %s" % (shown(url), example))
    if parts.username is not None or parts.password is not None:
        raise UsageError("--server URL '%s' holds credentials; pass the token with --token" % shown(url))
    if parts.fragment:
        raise UsageError("--server URL '%s' must not have a #fragment" % shown(url))


def initial_query(text, paths):
    """Classify ENTITY before any data arrived (UnrecognisedEntity is a usage error, exit 2).

    Rule 5 (a workflow state file's name) needs the workflow names: the local ones are asked only when the
    text is unrecognised without them. Every render classifies again against the data shown.
    """
    text = text.strip()
    check_entity_text(text)
    try:
        return classify(text)
    except UnrecognisedEntity:
        try:
            names = {w.name for w in load_workflows(paths)[0]}
        except (OSError, ProjectUnreadable):
            names = set()
        return classify(text, names)


def subscription(text, query):
    """(topics, workflow names) the view needs; None means "all"."""
    kind = query.kind
    if kind == SUMMARY:
        return None, None
    if kind == STORIES:
        return ("stories",), None
    if kind == STORY:
        prefix, colon, _ = text.strip().partition(":")
        if colon and prefix.lower() == "story":
            return ("stories",), None
        return ("stories", "workflows"), (text.strip(),)  # rule 5: a workflow of that very name would win
    if kind in (EPIC, EPICS):
        return ("epics",), None
    if kind == WORKFLOWS:
        return ("workflows",), None
    return ("workflows",), (query.key,)


def subscription_url(base, topics, workflows, run_id=None, since=None, token=None):
    """`base` with the query the sync server reads: source, topics, workflows, and runId/since to resume."""
    parts = urlsplit(base)
    ours = {"source", "topics", "workflows", "runId", "since"}
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in ours]
    query.append(("source", CLIENT_SOURCE))
    if topics is not None:
        query.append(("topics", ",".join(topics)))
    if workflows is not None:
        query.append(("workflows", ",".join(workflows)))
    if run_id is not None and since is not None:
        query.extend((("runId", run_id), ("since", str(since))))
    if token is not None:
        query.append(("token", token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


# -- reconnecting -------------------------------------------------------------------------------------------

class Backoff(object):
    """Exponential backoff with full jitter: delay n is uniform in [0, min(cap, start × factor^n)]."""

    def __init__(self, start=BACKOFF_START_S, factor=BACKOFF_FACTOR, cap=BACKOFF_CAP_S,
                 reset_after=BACKOFF_RESET_AFTER_S, rand=random.random):
        self.start = start
        self.factor = factor
        self.cap = cap
        self.reset_after = reset_after
        self.rand = rand
        self.ceiling = start

    def next_delay(self):
        delay = self.rand() * self.ceiling
        self.ceiling = min(self.cap, self.ceiling * self.factor)
        return delay

    def connection_lasted(self, seconds):
        if seconds >= self.reset_after:
            self.ceiling = self.start


# -- the replica --------------------------------------------------------------------------------------------

def record_from_dict(cls, data):
    """A model record back from its `to_dict()` form (the keys the server sends)."""
    return cls(**{attr: data[key] for attr, key in cls._FIELDS if key in data})


class Replica(object):
    """The project as the server described it: the last snapshot with every event since applied.

    The server sends the project-wide warnings and errors (in a snapshot, with every `stories_updated`, and with
    any workflow or epic event that changed them);
    `project()` hands each notice back to the source it came from, so an entity's view shows the notices
    one-shot `status` shows for it.
    """

    def __init__(self, root, epics_dir_shown=None):
        self.root = root
        self.epics_dir_shown = epics_dir_shown
        self.workflows = {}
        self.stories = []
        self.epics = {}
        self.warnings = []
        self.errors = []
        self._project = None

    def load_snapshot(self, data):
        self.workflows = {w["name"]: record_from_dict(Workflow, w) for w in data.get("workflows") or ()}
        self.stories = [record_from_dict(Story, s) for s in data.get("stories") or ()]
        self.epics = {e["id"]: record_from_dict(Epic, e) for e in data.get("epics") or ()}
        self._set_notices(data)
        self._project = None

    def _set_notices(self, data):
        self.warnings = [m for m in data.get("warnings") or () if isinstance(m, str)]
        self.errors = [m for m in data.get("errors") or () if isinstance(m, str)]

    def apply(self, event_type, data):
        """Apply one event; True when it changed what the replica holds."""
        if event_type == "state_updated":
            self.workflows[data["workflowName"]] = record_from_dict(Workflow, data["workflow"])
        elif event_type == "workflow_removed":
            if self.workflows.pop(data["workflowName"], None) is None:
                return False
        elif event_type == "stories_updated":
            self.stories = [record_from_dict(Story, s) for s in data["stories"]]
            self._set_notices(data.get("summary") or {})
        elif event_type == "epics_updated":
            for epic in data.get("epics") or ():
                self.epics[epic["id"]] = record_from_dict(Epic, epic)
            for epic_id in data.get("removed") or ():
                self.epics.pop(epic_id, None)
        else:
            return False  # lifecycle events repeat what the state_updated before them carried
        if "warnings" in data:  # the project's notices changed with this event
            self._set_notices(data)
        self._project = None
        return True

    def project(self):
        if self._project is None:
            self._project = self._build()
        return self._project

    def _build(self):
        workflows = [self.workflows[name] for name in sorted(self.workflows)]
        epics = [self.epics[key] for key in sorted(self.epics)]
        by_source = {w.source + ": ": w for w in workflows if w.source}
        for workflow in workflows:
            workflow.warnings = []
        derived_errors = {"%s: %s" % (w.source, w.error) for w in workflows if w.is_invalid}
        derived_errors.update("%s: %s" % (e.source, e.error) for e in epics if e.error)
        epics_dir = self.epics_dir_shown
        epic_dirs = {os.path.dirname(e.source) for e in epics if e.source}
        if len(epic_dirs) == 1:
            epics_dir = epic_dirs.pop()
        notices = {"workflows": ([], []), "stories": ([], []), "epics": ([], [])}
        for message in self.warnings:
            if message.startswith(_VIOLATION_PREFIXES):
                continue  # Project derives the violations from the stories
            workflow = _record_for(message, by_source)
            if workflow is not None:
                workflow.warnings.append(message)
            else:
                notices[_notice_source(message, epics_dir)][0].append(message)
        for message in self.errors:
            if message not in derived_errors:
                notices[_notice_source(message, epics_dir)][1].append(message)
        return Project(self.root, workflows, self.stories, epics, *(notices["workflows"] + notices["stories"] +
                                                                     notices["epics"]))


def _record_for(message, by_source):
    head, colon, _ = message.partition(": ")
    return by_source.get(head + ": ") if colon else None


def _notice_source(message, epics_dir):
    """Which source a project-level notice belongs to, by the forms the loader writes them in."""
    if message.startswith(("no workflow state directory", "workflow state directory ")) or \
            _STATE_FILE_SOURCE.match(message):
        return "workflows"
    if message.startswith("epics directory ") or _EPIC_FILE_SOURCE.match(message):
        return "epics"
    if epics_dir and (message.startswith(epics_dir + "/") or message.startswith("cannot list %s:" % epics_dir)):
        return "epics"
    if message.startswith("cannot list "):
        return "workflows"
    return "stories"


# -- the screen ---------------------------------------------------------------------------------------------

class Link(object):
    """The connection as the header shows it."""

    __slots__ = ("mode", "rtt_s", "retry_in_s", "server")

    def __init__(self, mode, rtt_s=None, retry_in_s=None, server=None):
        self.mode = mode
        self.rtt_s = rtt_s
        self.retry_in_s = retry_in_s  # None while a connection attempt is under way
        self.server = server

    def words(self, emoji):
        if self.mode == WEBSOCKET:
            text = "WebSocket" if self.rtt_s is None else "WebSocket (rtt %d ms)" % math.ceil(self.rtt_s * 1000)
            return ("\U0001f7e2 " if emoji else "") + text
        if self.retry_in_s is None:
            text = "Polling (reconnecting)"
        else:
            text = "Polling (retry in %d s)" % self.retry_in_s
        return ("\U0001f534 " if emoji else "") + text

    def to_dict(self):
        return {"mode": self.mode, "server": self.server,
                "rttMs": None if self.rtt_s is None else round(self.rtt_s * 1000, 1),
                "retryInS": self.retry_in_s}


class Screen(object):
    """Where the frames go. `show()` writes only when the content or the connection mode changed."""

    def __init__(self, stream, fmt, in_place, emoji):
        self.stream = stream
        self.fmt = fmt
        self.in_place = in_place
        self.emoji = emoji
        self.content = None
        self.mode = None
        self.updated_at = None
        self.frames = 0
        self.header = None
        self.rows_drawn = 0
        self.cursor_hidden = False
        self.broken = False  # stdout went away (EPIPE)

    def header_text(self, link):
        when = time.strftime("%H:%M:%S", time.localtime(self.updated_at))
        return "Last updated: %s | Connection: %s" % (when, link.words(self.emoji))

    def show(self, content, body, link, force=False):
        """Write a frame for `content` (`body`: its text, or its envelope for json) if anything changed."""
        changed = self.frames == 0 or content != self.content
        if not (changed or force or link.mode != self.mode):
            self.refresh_header(link)
            return False
        if changed or self.updated_at is None:
            self.updated_at = time.time()
        self.content = content
        self.mode = link.mode
        if self.fmt == "json":
            document = dict(body)
            document["connection"] = link.to_dict()
            text = json_text(document) + "\n"
            if not _can_encode(self.stream, text):
                text = json_text(document, ensure_ascii=True) + "\n"
        elif self.in_place:
            text = self._frame(self.header_text(link), body)
        else:
            separator = ("\n---\n\n" if self.fmt == "markdown" else "\n") if self.frames else ""
            text = "%s%s\n\n%s" % (separator, self.header_text(link), body)
        self.header = self.header_text(link)
        self.frames += 1
        self._write(text)
        return True

    def refresh_header(self, link):
        """On a terminal, rewrite the header line alone when its text changed (rtt, retry countdown)."""
        if not self.in_place or self.frames == 0:
            return
        header = self.header_text(link)
        if header != self.header:
            self.header = header
            self._write("\x1b[H" + self._line(header, shutil.get_terminal_size().columns))

    def _frame(self, header, body):
        columns, rows = shutil.get_terminal_size()
        lines = [header, ""] + body.rstrip("\n").split("\n")
        if len(lines) > rows:
            hidden = len(lines) - rows + 1
            lines = lines[:rows - 1] + ["… %d more line%s: make the terminal taller" % (hidden, "s" * (hidden != 1))]
        self.rows_drawn = len(lines)
        prefix = "\x1b[?25l\x1b[H" if not self.cursor_hidden else "\x1b[H"
        self.cursor_hidden = True
        return prefix + "\n".join(self._line(line, columns) for line in lines) + "\x1b[J"

    def _line(self, line, columns):
        width = display_width(_SGR.sub("", line))
        if "\x1b" not in line and width > columns:
            line, width = cut(line, columns, "…"), columns
        # A line as wide as the screen leaves the cursor on its last cell, which an erase would blank.
        return line + "\x1b[K" if width < columns else line

    def finish(self):
        """Leave the terminal as it was: cursor shown, below the last frame."""
        if self.in_place and self.cursor_hidden:
            self._write("\x1b[%d;1H\n\x1b[?25h" % max(self.rows_drawn, 1))
            self.cursor_hidden = False

    def _write(self, text):
        if self.broken:
            return
        stream = self.stream
        try:
            write_text(stream, text)
        except BrokenPipeError:
            self.broken = True
            _silence_stdout(stream)
        except (OSError, ValueError):
            self.broken = True


def _can_encode(stream, sample):
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        sample.encode(encoding)
    except (UnicodeError, LookupError):
        return False
    return True


def _is_terminal(stream):
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


# -- the keyboard -------------------------------------------------------------------------------------------

class KeyboardMode(object):
    """Stdin in cbreak mode (keys arrive one by one, not echoed; Ctrl+C still signals), restored by `restore()`.

    Only for a terminal this process owns: a background job (`&`) leaves the terminal alone.
    """

    def __init__(self, stream):
        self.fd = None
        self.saved = None
        if not _is_terminal(stream):
            return
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            return
        try:
            if os.tcgetpgrp(fd) != os.getpgrp():
                return
        except OSError:
            pass  # not our controlling terminal: its mode is still ours to set
        self.fd = fd

    def __enter__(self):
        if self.fd is not None:
            import termios
            import tty
            try:
                self.saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd, termios.TCSANOW)
            except (OSError, termios.error):
                self.fd = self.saved = None
        return self

    def __exit__(self, *exc_info):
        self.restore()

    @property
    def active(self):
        return self.saved is not None

    def restore(self):
        if self.saved is not None:
            import termios
            saved, self.saved = self.saved, None
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
            except (OSError, termios.error):
                pass


# -- the live view ------------------------------------------------------------------------------------------

class LiveView(object):
    """Runs the watch: the WebSocket session, the polling fallback, the screen and the keyboard."""

    def __init__(self, options, settings, query, stdout, environ):
        self.options = options
        self.settings = settings
        self.query = query
        self.text = options.entity.strip()
        self.stdout = stdout
        self.environ = environ
        self.topics, self.workflow_filter = subscription(self.text, query)
        in_place = options.format == "table" and _is_terminal(stdout) and environ.get("TERM") != "dumb"
        emoji = not options.ascii and environ.get("TERM") != "linux" and _can_encode(stdout, _EMOJI_SAMPLE)
        self.screen = Screen(stdout, options.format, in_place, emoji)
        paths = options.paths
        epics_dir = os.path.relpath(paths.epics_dir_path()[0], paths.root).replace(os.sep, "/")
        self.replica = Replica(paths.root, epics_dir)
        self.backoff = Backoff()
        self.exit_code = EXIT_OK
        self.fatal_message = None
        self.keyboard = None
        # connection state
        self.synced = False  # connected, and the replica is up to date with the server
        self.run_id = None
        self.last_seq = None
        self.rtt_s = None
        self.retry_at = None
        self._barrier = None  # the ping whose pong says "everything sent before it has been applied"
        self._pings = {}  # JSON ping timestamp → loop time sent
        self._last_ping_ms = 0
        self._websocket = None
        # polling state
        self._files = project_watcher(paths)
        self._local = None  # (project, error message) read from the files
        self._render_scheduled = False
        self._resized = False

    # -- running --------------------------------------------------------------------------------------------

    async def main(self, stdin):
        loop = asyncio.get_running_loop()
        self.loop = loop
        self._stop = asyncio.Event()
        self._offline = asyncio.Event()
        handled = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
        for signum in handled:
            loop.add_signal_handler(signum, self.stop)
        if self.screen.in_place:
            loop.add_signal_handler(signal.SIGWINCH, self._on_resize)
            handled.append(signal.SIGWINCH)
        tasks = []
        stopped = None
        with KeyboardMode(stdin) as keyboard:
            self.keyboard = keyboard
            try:
                if keyboard.active:
                    loop.add_reader(keyboard.fd, self._on_key)
                tasks = [loop.create_task(self._connection_loop()), loop.create_task(self._poll_loop())]
                if self.screen.in_place:
                    tasks.append(loop.create_task(self._header_ticks()))
                stopped = loop.create_task(self._stop.wait())
                await asyncio.wait(tasks + [stopped], return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        raise task.exception()
            finally:
                self._stop.set()  # also on an exception: every loop ends
                for task in tasks + ([stopped] if stopped is not None else []):
                    task.cancel()
                if tasks:
                    await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
                await self._close_websocket()
                if keyboard.active:
                    loop.remove_reader(keyboard.fd)
                keyboard.restore()
                self.screen.finish()
                for signum in handled:
                    loop.remove_signal_handler(signum)
        return self.exit_code

    def stop(self, exit_code=EXIT_OK, message=None):
        if not self._stop.is_set():
            self.exit_code = exit_code
            self.fatal_message = message
            self._stop.set()

    def _on_key(self):
        try:
            data = os.read(self.keyboard.fd, 64)
        except OSError:
            data = b""
        if not data:
            self.loop.remove_reader(self.keyboard.fd)  # stdin closed: only signals stop us now
            return
        if b"q" in data or b"Q" in data:
            self.stop()

    def _on_resize(self):
        self._resized = True
        self._schedule_render()

    async def _header_ticks(self):
        while not self._stop.is_set():
            await asyncio.sleep(HEADER_TICK_S)
            self.screen.refresh_header(self._link())

    # -- rendering ------------------------------------------------------------------------------------------

    def _link(self):
        retry_in = None
        if self.retry_at is not None:
            retry_in = max(0, int(math.ceil(self.retry_at - self.loop.time())))
        if self.synced:
            return Link(WEBSOCKET, self.rtt_s, None, self.settings.server)
        return Link(POLLING, None, retry_in, self.settings.server)

    def _schedule_render(self):
        # Called once per message: rendering after the loop's next turn draws a burst of events once.
        if not self._render_scheduled:
            self._render_scheduled = True
            self.loop.call_soon(self._render)

    def _render(self):
        self._render_scheduled = False
        if self.synced:
            project, problem = self.replica.project(), None
        elif self._local is not None:
            project, problem = self._local
        else:
            return  # nothing to show yet: the first frame waits for data
        entity = None
        if problem is None:
            try:
                entity = resolve(project, self.text)
            except EntityError as error:
                problem = str(error)
        if self.options.format == "json":
            if entity is not None:
                body = envelope(entity)
            else:
                body = {"entityType": self.query.kind, "entityId": self.query.key, "data": None,
                        "timestamp": utc_timestamp(), "warnings": [], "errors": [problem]}
            content = dict(body)
            del content["timestamp"]
        elif entity is not None:
            content = body = render(entity, self.options, self.stdout, self.environ)
        else:
            content = body = problem + "\n"
        force, self._resized = self._resized, False
        self.screen.show(content, body, self._link(), force)
        if self.screen.broken:
            self.stop()

    # -- polling --------------------------------------------------------------------------------------------

    async def _poll_loop(self):
        await self._wait_offline(self.settings.interval)  # the first attempt failed, or one interval went by
        while not self._stop.is_set():
            if self.synced:
                self._offline.clear()
                await self._offline.wait()
                continue
            self._offline.clear()
            self._poll_once()
            await self._wait_offline(self.settings.interval)

    async def _wait_offline(self, timeout):
        try:
            await asyncio.wait_for(self._offline.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def _poll_once(self):
        changes = self._files.poll()
        if changes or self._local is None or self._local[1] is not None:
            try:
                self._local = (load_project(self.options.paths), None)
            except ProjectUnreadable as error:
                self._local = (None, "cannot read the project: %s" % error)
        self._render()

    # -- the WebSocket session ------------------------------------------------------------------------------

    async def _connection_loop(self):
        # Every loop here checks the stop flag too: before Python 3.12, wait_for() can swallow a cancellation
        # that arrives as the awaited thing finishes.
        while not self._stop.is_set():
            connected_at = None
            try:
                websocket = await connect(self._url(), authorization=self._authorization(),
                                          headers=[("User-Agent", "madace-status/%s" % __version__)],
                                          open_timeout=HANDSHAKE_TIMEOUT_S)
            except HandshakeError as error:
                if error.status in _HTTP_FATAL:
                    self.stop(EXIT_USAGE, self._refusal_message(error))
                    return
            except (OSError, ValueError, ConnectionClosed):
                pass
            else:
                connected_at = self.loop.time()
                await self._session(websocket)
            if connected_at is not None:
                self.backoff.connection_lasted(self.loop.time() - connected_at)
            self.retry_at = self.loop.time() + self.backoff.next_delay()
            self._went_offline()
            await asyncio.sleep(max(0.0, self.retry_at - self.loop.time()))
            self.retry_at = None

    def _url(self):
        resume = self.run_id is not None and self.last_seq is not None
        token = self.settings.token
        in_query = token is not None and not _is_header_safe(token)
        return subscription_url(self.settings.server, self.topics, self.workflow_filter,
                                self.run_id if resume else None, self.last_seq if resume else None,
                                token if in_query else None)

    def _authorization(self):
        token = self.settings.token
        return "Bearer " + token if token is not None and _is_header_safe(token) else None

    def _refusal_message(self, error):
        server = self.settings.server
        if error.status == 403:
            if self.settings.token is None:
                return ("the sync server at %s refused the connection (HTTP 403): it needs a token; pass --token "
                        "or set %sTOKEN" % (server, ENV_PREFIX))
            return ("the sync server at %s refused the token (HTTP 403): check --token or %sTOKEN"
                    % (server, ENV_PREFIX))
        return "the sync server at %s refused the connection: %s" % (server, error.reason)

    def _went_offline(self):
        was_synced = self.synced
        self.synced = False
        self._offline.set()
        if not was_synced:
            self.screen.refresh_header(self._link())

    async def _session(self, websocket):
        self._websocket = websocket
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

    async def _keepalive(self, websocket):
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

    def _send_ping(self, websocket):
        stamp = max(int(time.time() * 1000), self._last_ping_ms + 1)
        self._last_ping_ms = stamp
        try:
            websocket.send(json.dumps({"type": "ping", "timestamp": stamp}))
        except ConnectionClosed:
            return None
        self._pings[stamp] = self.loop.time()
        return stamp

    def _on_message(self, websocket, text):
        try:
            message = json.loads(text)
            kind = message["type"]
            data = message.get("data") or {}
            seq = message.get("seq")
        except (ValueError, TypeError, KeyError, AttributeError):
            return  # not a message of the protocol: nothing to apply
        try:
            if kind == "ping":
                self.run_id = data.get("runId", self.run_id)
            elif kind == "pong":
                self._on_pong(websocket, data.get("timestamp"))
            elif kind == "snapshot":
                self.replica.load_snapshot(data)
                self.last_seq = seq if isinstance(seq, int) else None
                self._changed()
            elif kind in EVENT_TYPES:
                if isinstance(seq, int) and self.last_seq is not None and seq <= self.last_seq:
                    return  # already applied
                if self.replica.apply(kind, data):
                    self._changed()
                if isinstance(seq, int):
                    self.last_seq = seq
        except (ValueError, TypeError, KeyError, AttributeError):
            # An event this replica cannot apply: start over from a fresh snapshot rather than show a wrong view.
            self.run_id = self.last_seq = None
            websocket.transport.abort()

    def _changed(self):
        if self.synced:
            self._schedule_render()

    def _on_pong(self, websocket, stamp):
        sent = self._pings.pop(stamp, None)
        if sent is None:
            return
        self.rtt_s = self.loop.time() - sent
        if stamp != self._barrier:
            self.screen.refresh_header(self._link())
            return
        self._barrier = None
        if self.workflow_filter is not None and self.query.kind == WORKFLOW and \
                self.replica.project().workflow(self.query.key) is None:
            # Not under its exact name: one-shot also matches a workflow's name in any case, so ask for them all.
            self.workflow_filter = None
            try:
                websocket.send(json.dumps({"type": "subscribe", "topics": list(self.topics)}))
            except ConnectionClosed:
                return
            self._barrier = self._send_ping(websocket)
            return
        self.synced = True
        self.retry_at = None
        self._schedule_render()

    async def _close_websocket(self):
        websocket = self._websocket
        if websocket is None or websocket.closed:
            return
        try:
            await asyncio.wait_for(websocket.close(reason="watch stopped"), CLOSE_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionClosed, OSError):
            websocket.transport.abort()


def _is_header_safe(token):
    return all(0x20 <= ord(ch) < 0x7f for ch in token)


# -- the command --------------------------------------------------------------------------------------------

def run(options, args, stdout=None, stderr=None, environ=None, stdin=None):
    """Run `status --watch` until q, Ctrl+C or a signal; returns the exit code."""
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    try:
        settings = WatchSettings.from_args(args, environ)
        query = initial_query(options.entity, options.paths)
    except UsageError as error:
        return _fail(stderr, str(error), EXIT_USAGE)
    except UnrecognisedEntity as error:
        return _fail(stderr, "%s\n%s" % (error, ACCEPTED_PATTERNS), EXIT_USAGE)
    view = LiveView(options, settings, query, stdout, environ)
    try:
        code = asyncio.run(view.main(stdin))
    except KeyboardInterrupt:  # Ctrl+C before the signal handlers were in place
        code = EXIT_OK
    if view.fatal_message is not None:
        return _fail(stderr, view.fatal_message, code)
    try:
        stderr.write(STOPPED_MESSAGE + "\n")
        stderr.flush()
    except (OSError, ValueError):
        pass
    return code

