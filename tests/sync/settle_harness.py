"""The convergence invariant, as code: after any sequence of file operations and a short settle time, three
views of a project are equal:

1. what the sync service holds (`SyncService.project`, and `/api/status` from the dashboard's HTTP server);
2. the replica of a WebSocket client that applied its snapshot and every event since (`sync.replica.Replica`,
   fed by the `websockets` library over a real socket, resuming after each reconnect);
3. a fresh read of the same files (`project.loader.load_project`, what `status -f json` prints).

`LiveServer` runs a real `SyncService` and the dashboard's `DashboardServer` in this process (the service on an
asyncio loop in a thread of its own, as `serve` runs it), on real files and real sockets; `ProjectTree` does
to the files what engines, editors and people do; `settle` waits (with a deadline, never a bare sleep) until
the views agree and returns how long that took. Used by tests/sync/test_settle_invariant.py and by the soak
benchmark tests/benchmarks/settle_soak.py.
"""

import asyncio
import json
import os
import shutil
import tempfile
import threading
import time

import websockets.asyncio.client
from sync_helpers import ProjectFiles, http_request, parse_prometheus

from madace_status.project.loader import ProjectPaths, load_project
from madace_status.sync.replica import Replica, parse_message
from madace_status.sync.service import SyncService
from madace_status.web.app import DashboardApp
from madace_status.web.http import DashboardServer
from madace_status.web.limits import DEFAULT_LIMITS

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
STATE_DIR = os.path.join("madace-data", "workflow-states")
STATUS_FILE = os.path.join("docs", "workflow-status.md")
EPICS_DIR = os.path.join("docs", "v3-planning", "epics")

LOOP_CALL_TIMEOUT_S = 10.0  # any one call handed to the server's loop
SETTLE_TIMEOUT_S = 10.0  # poll backend, a large directory's idle file: checked in turns every 0.5 s; grace 0.5 s
SETTLE_CHECK_EVERY_S = 0.005  # how often the views are compared while waiting for them to agree
CONNECT_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.05
MAX_STATE_FILE_BYTES = 1024 * 1024  # project.files: a bigger state file is invalid


# -- the views ---------------------------------------------------------------------------------------------------

def view_of(project):
    """What a project shows, as plain data: every record, the summary and the notices (not where it was read)."""
    document = project.to_dict()
    document.pop("sources", None)
    return document


def fresh_view(root):
    return view_of(load_project(ProjectPaths(root=root)))


def first_difference(expected, actual, path="$"):
    """A short description of where two JSON-like values first differ (for a failure message), or None."""
    if type(expected) is not type(actual):
        return "%s: %r != %r" % (path, _short(expected), _short(actual))
    if isinstance(expected, dict):
        for key in sorted(set(expected) | set(actual), key=str):
            if key not in expected or key not in actual:
                return "%s.%s: only in %s" % (path, key, "expected" if key in expected else "actual")
            found = first_difference(expected[key], actual[key], "%s.%s" % (path, key))
            if found:
                return found
        return None
    if isinstance(expected, list):
        for index, (left, right) in enumerate(zip(expected, actual)):
            found = first_difference(left, right, "%s[%d]" % (path, index))
            if found:
                return found
        if len(expected) != len(actual):
            return "%s: %d items != %d items" % (path, len(expected), len(actual))
        return None
    return None if expected == actual else "%s: %r != %r" % (path, _short(expected), _short(actual))


def _short(value):
    text = json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:200] + "…"


# -- the server ---------------------------------------------------------------------------------------------------

class LiveServer:
    """A SyncService (on its own loop thread) and the dashboard's HTTP server, in this process, on `root`."""

    def __init__(self, root, watcher="auto", poll_interval=POLL_INTERVAL_S):
        self.root = root
        self.paths = ProjectPaths(root=root)
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, name="settle-loop", daemon=True)
        self._loop_thread.start()
        self.service = SyncService(self.paths, ws_port=0, poll_interval=poll_interval, watcher=watcher)
        self.call(self.service.start())
        self.httpd = DashboardServer(("127.0.0.1", 0), None, DEFAULT_LIMITS)
        self.http_port = self.httpd.server_address[1]
        self.service.http_port = self.http_port
        self.httpd.app = DashboardApp(self.paths, self.service, self.loop, http_port=self.http_port)
        self._http_thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                             name="settle-http", daemon=True)
        self._http_thread.start()

    @property
    def ws_port(self):
        return self.service.bound_port

    def call(self, coroutine, timeout=LOOP_CALL_TIMEOUT_S):
        """Run `coroutine` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def on_loop(self, function, *args):
        """Call `function(*args)` on the server's loop (so it sees the service between two looks)."""
        async def call():
            return function(*args)
        return self.call(call())

    def service_view(self):
        return self.on_loop(lambda: view_of(self.service.project))

    def get_json(self, path):
        response = http_request(self.http_port, "GET", path)
        return response.status, response.json()

    def metrics(self):
        return parse_prometheus(http_request(self.http_port, "GET", "/metrics").body.decode("utf-8"))[0]

    def close(self):
        try:
            self.call(self.service.stop(timeout=1.0))
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._loop_thread.join(LOOP_CALL_TIMEOUT_S)
            self.loop.close()


class ReplicaClient:
    """A `websockets` client on the server's loop whose replica applies every message by `sync.replica`'s rules;
    `reconnect()` resumes from the replica's position (runId + since), as `status --watch` and the page do."""

    def __init__(self, server):
        self.server = server
        self.replica = Replica(server.root)
        self.received = 0
        self._connection = None
        self._task = None
        self.failure = None  # the first thing the replica could not apply (ReplicaOutOfStep), if any
        self.connect()

    def connect(self):
        self.server.call(self._open())

    async def _open(self):
        run_id, since = self.replica.position()
        query = "?source=settle-test" + ("&runId=%s&since=%d" % (run_id, since) if run_id else "")
        self._connection = await websockets.asyncio.client.connect(
            "ws://127.0.0.1:%d/ws%s" % (self.server.ws_port, query), max_size=None, open_timeout=CONNECT_TIMEOUT_S)
        self._task = asyncio.get_running_loop().create_task(self._follow(self._connection))

    async def _follow(self, connection):
        try:
            async for text in connection:
                message = parse_message(text)
                if message is None:
                    continue
                self.received += 1
                try:
                    self.replica.receive(*message)
                except Exception as error:  # noqa: BLE001 — any failure to apply is what the test reports
                    self.failure = self.failure or "%s: %s" % (type(error).__name__, error)
        except websockets.exceptions.ConnectionClosed:
            pass

    def reconnect(self):
        async def again():
            await self._close()
            await self._open()
        self.server.call(again())

    async def _close(self):
        if self._connection is not None:
            await self._connection.close()
            await asyncio.wait([self._task], timeout=CONNECT_TIMEOUT_S)
            self._connection = self._task = None

    def view(self):
        return self.server.on_loop(lambda: view_of(self.replica.project()))

    def close(self):
        self.server.call(self._close())


def wait_until(predicate, timeout=SETTLE_TIMEOUT_S):
    """Wait until `predicate()` is true; returns the seconds it took, raises AssertionError after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met within %.1f s" % timeout)
        time.sleep(SETTLE_CHECK_EVERY_S)
    return time.monotonic() - started


def settle(server, clients, root, timeout=SETTLE_TIMEOUT_S):
    """Wait until the service, every client's replica, `/api/status` and a fresh read of the files agree.
    Returns the seconds it took (from the call); raises AssertionError naming the first difference."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        problem = disagreement(server, clients, root)
        if problem is None:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise AssertionError("not settled after %.1f s: %s" % (timeout, problem))
        time.sleep(SETTLE_CHECK_EVERY_S)


def disagreement(server, clients, root):
    """None when every view equals a fresh read of the files, else a description of the first difference."""
    expected = fresh_view(root)
    found = first_difference(expected, server.service_view())
    if found:
        return "service: " + found
    for index, client in enumerate(clients):
        if client.failure:
            raise AssertionError("client %d could not apply a message: %s" % (index, client.failure))
        found = first_difference(expected, client.view())
        if found:
            return "client %d: %s" % (index, found)
    status, document = server.get_json("/api/status")
    if status != 200:
        return "/api/status answered %d" % status
    found = first_difference(expected["summary"], document["data"])
    if found:
        return "/api/status: " + found
    return None


def check_entities(server, root, names):
    """`/api/status/workflow/:name` for each of `names` equals the fresh read (404 for one that is not there)."""
    project = load_project(ProjectPaths(root=root))
    for name in names:
        status, document = server.get_json("/api/status/workflow/%s" % name)
        workflow = project.workflow(name)
        if workflow is None:
            assert status == 404, (name, status, document)
        else:
            assert status == 200, (name, status, document)
            assert document["result"]["data"] == workflow.to_dict(), name


# -- the files ----------------------------------------------------------------------------------------------------

def workflow_document(name, status="in_progress", step=1, total=3, schema="A", padding=0):
    """A state file's JSON: schema A (status provider) or B (the workflow engine)."""
    if schema == "B":
        document = {"workflowName": name, "currentStep": step, "completed": status == "completed",
                    "variables": {"_TOTAL_STEPS": total}, "startedAt": "2026-11-20T10:00:00.000Z",
                    "updatedAt": "2026-11-20T10:%02d:00.000Z" % (step % 60)}
        if status == "failed":
            document["error"] = "step %d failed" % step
    else:
        document = {"workflow": name, "currentStep": step, "totalSteps": total, "status": status,
                    "startedAt": "2026-11-20T10:00:00.000Z", "lastUpdated": "2026-11-20T10:%02d:00.000Z" % (step % 60),
                    "steps": [{"id": "step-%d" % index, "status": "completed" if index < step else "pending"}
                              for index in range(1, total + 1)]}
    if padding:
        document["context"] = {"padding": "x" * padding}
    return json.dumps(document, indent=2)


def story_board(moves, stories=12):
    """A story status file: `stories` stories, story i in the state `moves` puts it in (i → index of state)."""
    sections = {"BACKLOG": [], "TODO": [], "IN PROGRESS": [], "DONE": []}
    names = list(sections)
    for index in range(stories):
        state = names[(moves + index * 7) % 4] if index % 3 == moves % 3 else names[index % 4]
        sections[state].append("- [ ] **[STORY-%03d]** Story %d | %d points | @dev%d" % (index, index, index % 5 + 1,
                                                                                            index % 3))
    lines = ["# Workflow status", ""]
    for heading, entries in sections.items():
        lines += ["## " + heading, ""] + entries + [""]
    return "\n".join(lines)


def epic_text(epic_id, revision):
    return ("# %s: Epic %s\n\n**Priority:** P%d\n**Status:** Planning\n**Effort Estimate:** %d points\n\n"
            "## Summary\n\nRevision %d.\n\n### US-%03d: a story\n" % (epic_id, epic_id, revision % 3, revision + 1,
                                                                         revision, revision))


class ProjectTree:
    """A writable copy of the sample project, changed the way engines, editors and people change one."""

    def __init__(self, root):
        self.root = str(root)
        self.outside = tempfile.mkdtemp(prefix="settle-outside-")  # a place outside the root for symlinks
        self._counter = 0

    @classmethod
    def copy_of_sample(cls, target):
        return cls(ProjectFiles.copy_of_sample(target).root)

    def cleanup(self):
        shutil.rmtree(self.outside, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    @property
    def state_dir(self):
        return self.path(STATE_DIR)

    def state_path(self, name):
        return os.path.join(self.state_dir, ".%s.state.json" % name)

    def state_names(self):
        try:
            names = os.listdir(self.state_dir)
        except OSError:
            return []
        return sorted(name[1:-len(".state.json")] for name in names
                      if name.startswith(".") and name.endswith(".state.json"))

    def _ensure_state_dir(self):
        if not os.path.isdir(self.state_dir):
            if os.path.lexists(self.state_dir):
                os.remove(self.state_dir)  # a dangling symlink
            os.makedirs(self.state_dir)

    # state files
    def write_state(self, name, text, mode="in_place"):
        self._ensure_state_dir()
        write_file(self.state_path(name), text, mode)

    def delete_state(self, name):
        try:
            os.remove(self.state_path(name))
        except FileNotFoundError:
            pass

    def grow_past_cap(self, name):
        """A state file over the 1 MiB cap (invalid: too large), written in place."""
        self.write_state(name, workflow_document(name, padding=MAX_STATE_FILE_BYTES))

    def mass_create(self, count, prefix="bulk"):
        self._ensure_state_dir()
        for index in range(count):
            write_file(self.state_path("%s-%03d" % (prefix, index)),
                       workflow_document("%s-%03d" % (prefix, index), step=index % 3 + 1), "in_place")

    def mass_delete(self):
        for name in self.state_names():
            self.delete_state(name)

    # the state directory itself
    def remove_state_dir(self):
        if os.path.islink(self.state_dir):
            os.remove(self.state_dir)
        else:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def recreate_state_dir(self, names=()):
        self.remove_state_dir()
        os.makedirs(self.state_dir)
        for name in names:
            self.write_state(name, workflow_document(name))

    def swap_state_dir_for_symlink(self, outside):
        """Move the state directory's files to a new directory (inside the root, or outside it) and put a
        symlink to it where the directory was."""
        self._counter += 1
        base = self.outside if outside else self.path("madace-data")
        target = os.path.join(base, "moved-states-%d" % self._counter)
        if os.path.isdir(self.state_dir) and not os.path.islink(self.state_dir):
            os.rename(self.state_dir, target)
        else:
            self.remove_state_dir()
            os.makedirs(target)
        os.symlink(target, self.state_dir)

    # the story file
    def write_stories(self, text, mode="in_place"):
        write_file(self.path(STATUS_FILE), text, mode)

    def delete_stories(self):
        try:
            os.remove(self.path(STATUS_FILE))
        except FileNotFoundError:
            pass

    # epics
    def epic_path(self, epic_id):
        return self.path(EPICS_DIR, "%s.md" % epic_id)

    def write_epic(self, epic_id, revision, mode="in_place"):
        os.makedirs(self.path(EPICS_DIR), exist_ok=True)
        write_file(self.epic_path(epic_id), epic_text(epic_id, revision), mode)

    def remove_epic(self, epic_id):
        try:
            os.remove(self.epic_path(epic_id))
        except FileNotFoundError:
            pass


WRITE_MODES = ("in_place", "truncate_then_write", "atomic")


def write_file(path, text, mode):
    """`in_place`: open("w") and write; `truncate_then_write`: truncate, then open again and write (a reader
    between the two sees an empty file); `atomic`: a sibling temporary file renamed over the path."""
    data = text.encode("utf-8")
    if mode == "atomic":
        temporary = os.path.join(os.path.dirname(path), ".tmp-%d-%s" % (os.getpid(), os.urandom(4).hex()))
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
        return
    if mode == "truncate_then_write" and os.path.isfile(path):
        os.truncate(path, 0)
        with open(path, "r+b") as handle:
            handle.write(data)
        return
    with open(path, "wb") as handle:
        handle.write(data)
