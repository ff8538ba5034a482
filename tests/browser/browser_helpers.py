"""Helpers of the browser tests: a real `serve` subprocess, a writable copy of the sample project, and a page
that records every request, WebSocket, console message and live timer.

Nothing here sleeps to hope something happened: `wait_until` polls a condition with a deadline.
"""

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

from madace_status.demo import atomic_write

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
SAMPLE_PROJECT = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")
SCREENSHOT_DIR = os.path.join(REPO_ROOT, "tests", "output", "screenshots")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SERVER_START_TIMEOUT_S = 15.0


@contextlib.contextmanager
def launched_chromium(extra_args=()):
    """Debian's Chromium, headless, through Playwright (never `playwright install`), closed on the way out."""
    from playwright import sync_api  # a test extra: tests/run.sh installs it
    if not os.access(CHROMIUM, os.X_OK):
        raise AssertionError("%s is missing (tests/run.sh installs it with apt-get install chromium)" % CHROMIUM)
    playwright = sync_api.sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS + list(extra_args))
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
STATE_DIR = os.path.join("madace-data", "workflow-states")
STATUS_FILE = os.path.join("docs", "workflow-status.md")

# Installed before any page script: counts live timers and WebSockets so a test can prove none is left behind.
PROBE_SCRIPT = r"""
(() => {
  const live = { timeouts: new Set(), intervals: new Set(), sockets: [] };
  const setT = window.setTimeout, clearT = window.clearTimeout, setI = window.setInterval, clearI = window.clearInterval;
  window.setTimeout = function (fn, ms, ...rest) {
    const id = setT.call(window, function () { live.timeouts.delete(id); if (typeof fn === "function") fn.apply(this, arguments); }, ms, ...rest);
    live.timeouts.add(id);
    return id;
  };
  window.clearTimeout = function (id) { live.timeouts.delete(id); return clearT.call(window, id); };
  window.setInterval = function (fn, ms, ...rest) { const id = setI.call(window, fn, ms, ...rest); live.intervals.add(id); return id; };
  window.clearInterval = function (id) { live.intervals.delete(id); return clearI.call(window, id); };
  const NativeWebSocket = window.WebSocket;
  function ProbedWebSocket(url, protocols) {
    const ws = protocols === undefined ? new NativeWebSocket(url) : new NativeWebSocket(url, protocols);
    live.sockets.push(ws);
    return ws;
  }
  ProbedWebSocket.prototype = NativeWebSocket.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach((name) => { ProbedWebSocket[name] = NativeWebSocket[name]; });
  window.WebSocket = ProbedWebSocket;
  window.__probe = {
    timeouts: () => live.timeouts.size,
    intervals: () => live.intervals.size,
    openSockets: () => live.sockets.filter((ws) => ws.readyState === 0 || ws.readyState === 1).length,
    socketsCreated: () => live.sockets.length,
  };
})();
"""

# Messages the browser itself logs for a refused request or WebSocket: expected while a test breaks the server.
NETWORK_NOISE = re.compile(r"Failed to load resource|WebSocket connection to .* failed|net::ERR_")


def wait_until(condition, timeout=5.0, interval=0.05, message="condition", page=None):
    """Call `condition()` until it returns something truthy; that value, or AssertionError at the deadline.

    With `page`, the pause between calls lets Playwright deliver its events (the sync API only dispatches
    them while one of its calls runs), so conditions on recorded requests or frames can become true.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, message))
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)


def apply_one_at_a_time(server, changes):
    """Make each change and wait until the server has published it, so each is its own event (and history
    sample) and none is folded into the next."""
    for change in changes:
        seq = server.api("GET", "/api/sync")[1]["seq"]
        change()
        wait_until(lambda: server.api("GET", "/api/sync")[1]["seq"] > seq, message="the change as an event")


def assert_no_sideways_scroll(page, width):
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= width, "the page is %d px wide in a %d px viewport" % (scroll_width, width)


class SampleProject:
    """A writable copy of the sample project (tests/fixtures/sample-project), with the edits the tests make to it."""

    def __init__(self, root):
        self.root = root
        shutil.copytree(SAMPLE_PROJECT, root)
        for directory, _, files in os.walk(root):
            os.chmod(directory, os.stat(directory).st_mode | stat.S_IWUSR)
            for name in files:
                path = os.path.join(directory, name)
                os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)

    def workflow_path(self, name):
        return os.path.join(self.root, STATE_DIR, ".%s.state.json" % name)

    def read_workflow(self, name):
        with open(self.workflow_path(name), encoding="utf-8") as handle:
            return json.load(handle)

    def write_workflow(self, name, document):
        atomic_write(self.workflow_path(name), json.dumps(document, indent=2))

    def advance_pm_planning(self, to_step):
        """Schema A `pm-planning`: steps before `to_step` (1-based) completed, `to_step` in progress."""
        document = self.read_workflow("pm-planning")
        for index, step in enumerate(document["steps"], start=1):
            step["status"] = "completed" if index < to_step else "in_progress" if index == to_step else "pending"
        document["currentStep"] = to_step
        document["status"] = "in_progress"
        document["lastUpdated"] = now_iso()
        self.write_workflow("pm-planning", document)
        return document["steps"][to_step - 1]["id"]

    def fail_workflow(self, name, error):
        """Schema A workflow `name`: its current step fails with `error`."""
        document = self.read_workflow(name)
        document["status"] = "failed"
        current = max(1, min(int(document.get("currentStep") or 1), len(document["steps"])))
        document["currentStep"] = current
        document["steps"][current - 1]["status"] = "failed"
        document["steps"][current - 1]["error"] = error
        document["lastUpdated"] = now_iso()
        self.write_workflow(name, document)

    def status_text(self):
        with open(os.path.join(self.root, STATUS_FILE), encoding="utf-8") as handle:
            return handle.read()

    def move_story(self, story_id, section):
        """Move the line of `story_id` (and its indented continuation lines) under `## <section>`."""
        lines = self.status_text().splitlines(True)
        start = next(index for index, line in enumerate(lines)
                     if "[%s]" % story_id in line and line.lstrip()[:1] in "-*")
        end = start + 1
        while end < len(lines) and lines[end].startswith((" ", "\t")) and lines[end].strip():
            end += 1
        block = lines[start:end]
        del lines[start:end]
        heading = next(index for index, line in enumerate(lines) if line.strip().upper() == "## " + section)
        lines[heading + 1:heading + 1] = ["\n"] + block
        atomic_write(os.path.join(self.root, STATUS_FILE), "".join(lines))


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class ServeProcess:
    """`python -m madace_status serve` on 127.0.0.1; ports from its own announcement (first start: port 0)."""

    def __init__(self, root, log_path, extra_args=()):
        self.root = root
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.process = None
        self.http_port = 0
        self.ws_port = 0
        self.dashboard_url = None
        self.ws_url = None

    @property
    def base_url(self):
        return "http://127.0.0.1:%d" % self.http_port

    def start(self):
        command = [sys.executable, "-m", "madace_status", "serve", "--root", self.root, "--host", "127.0.0.1",
                   "--port", str(self.http_port), "--ws-port", str(self.ws_port), "--log-level", "info"]
        command += self.extra_args
        env = {name: value for name, value in os.environ.items() if not name.startswith("MADACE_STATUS_")}
        env.update(PYTHONPATH=REPO_ROOT, PYTHONUNBUFFERED="1")  # only the flags above configure the server
        log = open(self.log_path, "a", encoding="utf-8")
        try:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log,
                                            stdin=subprocess.DEVNULL, text=True)
        finally:
            log.close()
        lines = queue.Queue()

        def read():
            for line in self.process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, name="serve-stdout", daemon=True).start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while self.ws_url is None or self.dashboard_url is None:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.kill()
                raise AssertionError("serve did not announce its URLs; log:\n" + self.log_tail())
            if line.startswith("Dashboard:"):
                self.dashboard_url = line.split(None, 1)[1].strip()
                self.http_port = urlsplit(self.dashboard_url).port
            elif line.startswith("WebSocket:"):
                self.ws_url = line.split(None, 1)[1].strip()
                if self.ws_url.startswith("ws://"):
                    self.ws_port = urlsplit(self.ws_url).port
        return self

    def restart(self):
        """Start again on the same ports (the page's origin and its CSP name them)."""
        self.ws_url = self.dashboard_url = None
        return self.start()

    def kill(self):
        """The whole server dies at once (SIGKILL: no close frame, no goodbye)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def api(self, method, path, body=None, token=None):
        """(status, decoded JSON body) of one API request."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read().decode("utf-8") or "null")

    def sync_action(self, action, token=None):
        status, body = self.api("POST", "/api/sync", {"action": action}, token=token)
        assert status == 200 and body["success"], (status, body)
        return body


class PageRecorder:
    """What one page did: requests, WebSockets (with the frames they received), console errors, page errors."""

    def __init__(self, page):
        self.page = page
        self.requests = []
        self.websockets = []
        self.console_errors = []
        self.page_errors = []
        self.received = []  # (socket index, message type)
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("websocket", self._websocket)
        page.on("console", lambda message: self.console_errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _websocket(self, websocket):
        index = len(self.websockets)
        self.websockets.append(websocket.url)

        def received(payload):
            try:
                self.received.append((index, json.loads(payload)["type"]))
            except (ValueError, KeyError, TypeError):
                self.received.append((index, "?"))

        websocket.on("framereceived", received)

    def unexpected_console_errors(self):
        return [text for text in self.console_errors if not NETWORK_NOISE.search(text)]

    def api_requests(self, path):
        return [url for url in self.requests if urlsplit(url).path == path]

    def websocket_query(self, index):
        return {key: values[0] for key, values in parse_qs(urlsplit(self.websockets[index]).query).items()}

    def probe(self, name):
        return self.page.evaluate("() => window.__probe.%s()" % name)

    def indicator(self):
        return self.page.locator("#conn-text").inner_text()

    def assert_clean(self):
        assert self.page_errors == [], self.page_errors
        assert self.unexpected_console_errors() == [], self.console_errors
