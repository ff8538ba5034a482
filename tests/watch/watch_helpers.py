"""Helpers for the watch-mode tests: a real `serve` process, the `status --watch` command as a subprocess (through
pipes or under a pseudo-terminal), output collected in the background and waited on by pattern, a TCP proxy
that can cut the connection, and atomic edits of the project files."""

import errno
import fcntl
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_PROJECT = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")
STATE_DIR = os.path.join("madace-data", "workflow-states")
STATUS_FILE = os.path.join("docs", "workflow-status.md")
WAIT_S = 10.0  # the longest any single awaited condition may take
PTY_ROWS, PTY_COLUMNS = 50, 120
ESCAPE = re.compile("[\x1b\x9b]")


def clean_env(**extra):
    """The inherited environment without MADACE_STATUS_*, colour or size settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MADACE_STATUS_") and k not in ("NO_COLOR", "TERM", "COLUMNS", "LINES")}
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


def copy_project(destination):
    """A writable copy of the sample project (tests/fixtures/sample-project) at `destination`."""
    shutil.copytree(SAMPLE_PROJECT, destination)
    for directory, _, files in os.walk(destination):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    return destination


def write_atomically(path, text):
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def set_workflow_step(root, name, step):
    """Set `currentStep` of a schema-A state file (the step column then reads `step/total`)."""
    path = os.path.join(root, STATE_DIR, ".%s.state.json" % name)
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    document["currentStep"] = step
    write_atomically(path, json.dumps(document, indent=2))


def set_story_title(root, story_id, title):
    """Give the story line of `story_id` a new title (the rest of the line is kept)."""
    path = os.path.join(root, STATUS_FILE)
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    pattern = re.compile(r"(\*\*\[%s\]\*\* )(.*?)( \||\s*\(|\s*\[Points)" % re.escape(story_id))
    for index, line in enumerate(lines):
        if "[%s]" % story_id in line:
            lines[index], count = pattern.subn(lambda m: m.group(1) + title + m.group(3), line, count=1)
            assert count == 1, line
            break
    else:
        raise AssertionError("no story %s" % story_id)
    write_atomically(path, "\n".join(lines))


def free_port():
    """A TCP port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def inotify_descriptors(pid):
    """How many inotify descriptors process `pid` holds open (Linux: its /proc/PID/fd links)."""
    directory = "/proc/%d/fd" % pid
    count = 0
    for name in os.listdir(directory):
        try:
            count += os.readlink(os.path.join(directory, name)) == "anon_inode:inotify"
        except OSError:
            pass  # closed meanwhile
    return count


class Output:
    """Everything a child writes on one fd (a pipe, or a pty master), collected by a background thread."""

    def __init__(self, fd):
        self.fd = fd
        self._data = bytearray()
        self._closed = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                chunk = b""  # EIO: the pty's other side is gone
            with self._condition:
                if not chunk:
                    self._closed = True
                    self._condition.notify_all()
                    return
                self._data += chunk
                self._condition.notify_all()

    @property
    def text(self):
        with self._condition:
            return self._data.decode("utf-8", "replace")

    @property
    def raw(self):
        with self._condition:
            return bytes(self._data)

    def wait_for(self, condition, timeout=WAIT_S, what=None):
        """Wait until `condition(text)` is truthy (or a regex matches the text); return its value."""
        if isinstance(condition, str):
            pattern = re.compile(condition)
            condition = pattern.search
            what = what or pattern.pattern
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                result = condition(self._data.decode("utf-8", "replace"))
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    tail = self._data.decode("utf-8", "replace")[-3000:]
                    raise AssertionError("gave up waiting for %s; output ends with:\n%s" % (what or condition, tail))
                self._condition.wait(remaining)

    def wait_closed(self, timeout=WAIT_S):
        with self._condition:
            self._condition.wait_for(lambda: self._closed, timeout)
            return self._closed


def wait_until(condition, timeout=10.0, what="a condition"):
    """Poll a condition of another process (a server metric) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting for %s" % what)
        time.sleep(0.02)


def documents(text):
    """The NDJSON documents written so far (a line not yet finished is left out)."""
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]


def wait_documents(output, condition, timeout=WAIT_S, what=None, start=0):
    """Wait for an NDJSON document from index `start` on satisfying `condition(doc)`; return (all documents,
    index of the first match)."""
    def found(text):
        docs = documents(text)
        for index in range(start, len(docs)):
            if condition(docs[index]):
                return docs, index
        return None
    return output.wait_for(found, timeout, what or getattr(condition, "__name__", "a document"))


def mode(doc):
    return doc["connection"]["mode"]


def workflow_step(doc, name):
    """currentStep of workflow `name` in a summary or workflows document."""
    data = doc["data"]
    for workflow in data.get("workflows") or ():
        if workflow["name"] == name:
            return workflow["currentStep"]
    return data.get("currentStep") if data.get("name") == name else None


class Server:
    """`python -m madace_status serve --port 0 --ws-port W` on a project root; ports read from its stdout."""

    def __init__(self, root, ws_port=0, args=()):
        self.root = root
        self.ws_port = ws_port
        self.args = list(args)
        self.process = None

    def start(self):
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "madace_status", "serve", "--root", self.root, "--port", "0",
             "--ws-port", str(self.ws_port)] + self.args,
            cwd=REPO_ROOT, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log)
        self.output = Output(self.process.stdout.fileno())
        match = self.output.wait_for(r"WebSocket:\s+(ws://\S+:(\d+)/\S*)\n")
        self.url, self.ws_port = match.group(1), int(match.group(2))
        self.http_port = int(self.output.wait_for(r"Dashboard:\s+http://[^:]+:(\d+)/").group(1))
        return self

    def kill(self):
        """SIGKILL: the connections drop without a close frame, as when a machine or network dies."""
        self.process.kill()
        self.process.wait(WAIT_S)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None:
            self.process.stdout.close()

    def get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http_port, path), timeout=WAIT_S) as response:
            return response.read().decode()

    def metric(self, name):
        return float(re.search(r"^%s (\S+)$" % re.escape(name), self.get("/metrics"), re.M).group(1))


class Watch:
    """`python -m madace_status status --watch …` with stdout and stderr on pipes, stdin /dev/null."""

    def __init__(self, *args, env=None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "madace_status", "status", "--watch"] + list(args), cwd=REPO_ROOT,
            env=env or clean_env(COLUMNS="120"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.started = time.monotonic()
        self.stdout = Output(self.process.stdout.fileno())
        self.stderr = Output(self.process.stderr.fileno())

    def signal(self, signum):
        self.process.send_signal(signum)

    def wait(self, timeout=WAIT_S):
        code = self.process.wait(timeout)
        self.stdout.wait_closed()
        self.stderr.wait_closed()
        return code

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


def _take_controlling_terminal():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # runs after setsid(): the pty becomes the session's terminal


class TtyWatch:
    """The watch command on a pseudo-terminal (stdin, stdout and stderr), as its controlling terminal."""

    def __init__(self, *args, env=None, rows=PTY_ROWS, columns=PTY_COLUMNS):
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.attributes_before = termios.tcgetattr(self.slave)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "madace_status", "status", "--watch"] + list(args), cwd=REPO_ROOT,
            env=env or clean_env(TERM="xterm-256color"), stdin=self.slave, stdout=self.slave, stderr=self.slave,
            start_new_session=True, preexec_fn=_take_controlling_terminal)
        self.output = Output(self.master)

    def attributes(self):
        return termios.tcgetattr(self.slave)

    def type(self, data):
        os.write(self.master, data)

    def signal(self, signum):
        self.process.send_signal(signum)

    def wait(self, timeout=WAIT_S):
        return self.process.wait(timeout)

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.slave)
        # The reader thread ends with EIO once the slave is closed; the master is closed after it.
        self.output.wait_closed(2)
        os.close(self.master)


def frames(raw):
    """The in-place frames of a terminal output: every text between a cursor-home and an erase-below."""
    return re.findall(r"\x1b\[H(.*?)\x1b\[J", raw, re.S)


def visible(frame):
    """A frame's text without its escape sequences (erase-line and colours)."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", frame)


class CuttableProxy:
    """A TCP forwarder to `port` whose connections can be cut, and which refuses new ones while cut."""

    def __init__(self, port):
        self.target = port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.cut = False
        self.connections = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self.connections.append((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut_all(self):
        """Drop every forwarded connection (both sides see it end) and refuse new ones."""
        self.cut = True
        with self._lock:
            connections, self.connections = self.connections, []
        for pair in connections:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def restore(self):
        self.cut = False

    def close(self):
        self.cut_all()
        self.listener.close()

