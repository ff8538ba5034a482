"""Helpers for the sync-server tests: run `python -m madace_status serve` as a real process, write project files as
a workflow engine would, talk to the server over real sockets (the `websockets` library, the package's own client,
and a raw socket peer written here), and parse what comes back.

Every wait has a deadline; nothing sleeps and hopes.
"""

import asyncio
import base64
import hashlib
import http.client
import json
import os
import queue
import random
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

import websockets.asyncio.client

from madace_status.websocket import connect as own_connect_raw

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_PROJECT = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")
STATE_DIR = os.path.join("madace-data", "workflow-states")
STATUS_FILE = os.path.join("docs", "workflow-status.md")
EPICS_DIR = os.path.join("docs", "v3-planning", "epics")

TEST_TIMEOUT_S = 30.0  # a hung test fails instead of hanging the run
WAIT_S = 5.0  # how long any single awaited condition may take
START_TIMEOUT_S = 15.0  # how long a server may take to print its URLs
POLL_S = "0.05"  # --poll-interval of the servers under test
ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SAMPLE_WORKFLOWS = ["architecture-review", "code-review", "dev-implementation", "pm-planning", "route-workflow"]


def run(coroutine_function, timeout=TEST_TIMEOUT_S):
    """Run `coroutine_function()` in a fresh event loop; fail if it takes longer than `timeout` seconds."""
    async def main():
        return await asyncio.wait_for(coroutine_function(), timeout)
    return asyncio.run(main())


def clean_env(**extra):
    """The inherited environment without MADACE_STATUS_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MADACE_STATUS_")}
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# -- the project on disk -----------------------------------------------------------------------------------------

class ProjectFiles:
    """A writable copy of the sample project, written to the way a workflow engine and an editor would."""

    def __init__(self, root):
        self.root = str(root)

    @classmethod
    def copy_of_sample(cls, target):
        assert os.path.isdir(SAMPLE_PROJECT), "the sample project fixture is expected at %s" % SAMPLE_PROJECT
        shutil.copytree(SAMPLE_PROJECT, str(target))
        for directory, _, names in os.walk(str(target)):
            os.chmod(directory, os.stat(directory).st_mode | stat.S_IWUSR)
            for name in names:
                path = os.path.join(directory, name)
                os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
        return cls(target)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def state_path(self, name, state_dir=STATE_DIR):
        return self.path(state_dir, ".%s.state.json" % name)

    def read_state(self, name):
        with open(self.state_path(name), encoding="utf-8") as handle:
            return json.load(handle)

    def write_state(self, name, document, atomic=False, state_dir=STATE_DIR):
        text = document if isinstance(document, str) else json.dumps(document, indent=2)
        write_file(self.state_path(name, state_dir), text, atomic)

    def remove_state(self, name):
        os.remove(self.state_path(name))

    @property
    def stories_path(self):
        return self.path(STATUS_FILE)

    def read_stories(self):
        with open(self.stories_path, encoding="utf-8") as handle:
            return handle.read()

    def write_stories(self, text, atomic=False):
        write_file(self.stories_path, text, atomic)

    def epic_path(self, filename):
        return self.path(EPICS_DIR, filename)

    def read_epic(self, filename):
        with open(self.epic_path(filename), encoding="utf-8") as handle:
            return handle.read()

    def write_epic(self, filename, text, atomic=False):
        write_file(self.epic_path(filename), text, atomic)


def write_file(path, text, atomic=False):
    """In place (truncate and write, as `open(path, "w")` does), or by atomic rename of a sibling temp file."""
    data = text.encode("utf-8")
    if not atomic:
        with open(path, "wb") as handle:
            handle.write(data)
        return
    temporary = os.path.join(os.path.dirname(path), "tmp-%d-%s.partial" % (os.getpid(), os.urandom(4).hex()))
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def story_board(stories_per_state, title_padding=0):
    """A status file with `stories_per_state` stories in BACKLOG and DONE (one each in TODO and IN PROGRESS)."""
    pad = "x" * title_padding
    lines = ["# Big board", "", "## BACKLOG", ""]
    lines += ["- [ ] **[BIG-%d]** Backlog story %d %s | 3 points | @dev" % (i, i, pad)
              for i in range(stories_per_state)]
    lines += ["", "## TODO", "", "- [ ] **[TODO-1]** The one story to draft | 2 points", ""]
    lines += ["## IN PROGRESS", "", "- **[WIP-1]** The one story in progress [Points: 5]", ""]
    lines += ["## DONE", ""]
    lines += ["- [x] **[DONE-%d]** Done story %d %s | 1 points" % (i, i, pad) for i in range(stories_per_state)]
    return "\n".join(lines) + "\n"


# -- the server process ------------------------------------------------------------------------------------------

class ServeProcess:
    """`python -m madace_status serve --port 0 --ws-port 0 …`, its ports read from what it prints."""

    def __init__(self, args, env=None):
        command = [sys.executable, "-m", "madace_status", "serve"] + list(args)
        self.command = command
        env = dict(env) if env else clean_env()
        if os.environ.get("XDG_CACHE_HOME"):  # tests/conftest.py's: a serve under test never writes the user's cache
            env.setdefault("XDG_CACHE_HOME", os.environ["XDG_CACHE_HOME"])
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._lines = queue.Queue()
        self.stdout_lines = []
        self.stderr_lines = []
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.stdout_lines, True),
                                          daemon=True),
                         threading.Thread(target=self._read, args=(self.process.stderr, self.stderr_lines, False),
                                          daemon=True)]
        for reader in self._readers:
            reader.start()
        self.http_port = None
        self.ws_port = None
        self.dashboard_url = None

    def _read(self, stream, lines, announce):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            if announce:
                self._lines.put(line)
        if announce:
            self._lines.put(None)

    def wait_for_line(self, prefix, timeout=START_TIMEOUT_S):
        """The first stdout line starting with `prefix` not consumed yet; fails on timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r line from serve within %.0f s; stdout %r, stderr %r"
                                     % (prefix, timeout, self.stdout_lines, self.stderr_lines[-20:]))
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.process.wait(timeout=5)
                raise AssertionError("serve exited (%s) before printing %r; stdout %r, stderr %r"
                                     % (self.process.returncode, prefix, self.stdout_lines, self.stderr_lines[-20:]))
            if line.startswith(prefix):
                return line

    def wait_started(self, sync=True):
        self.dashboard_url = self.wait_for_line("Dashboard:").split(None, 1)[1]
        self.http_port = int(self.dashboard_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        ws_line = self.wait_for_line("WebSocket:")
        if sync:
            url = ws_line.split(None, 1)[1]
            assert url.startswith("ws://"), ws_line
            self.ws_port = int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        self.wait_for_line("Press Ctrl+C")
        return self

    def ws_url(self, query="", path="/ws", port=None):
        return "ws://127.0.0.1:%d%s%s" % (port or self.ws_port, path, "?" + query if query else "")

    def http(self, method, path, body=None, headers=None, port=None):
        return http_request(port or self.http_port, method, path, body, headers)

    def get(self, path, headers=None):
        return self.http("GET", path, headers=headers)

    def get_json(self, path, headers=None):
        response = self.get(path, headers)
        assert response.status == 200, response
        return response.json()

    def post_json(self, path, document, headers=None):
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        return self.http("POST", path, body, dict({"Content-Type": "application/json"}, **(headers or {})))

    def metrics(self):
        response = self.get("/metrics")
        assert response.status == 200, response
        return parse_prometheus(response.body.decode("utf-8"))[0]

    def wait_polls(self, count, timeout=WAIT_S):
        """Wait until the watcher has completed `count` more polls (read from /metrics)."""
        start = self.metrics()["madace_poll_duration_seconds_count"]
        deadline = time.monotonic() + timeout
        while self.metrics()["madace_poll_duration_seconds_count"] < start + count:
            assert time.monotonic() < deadline, "the watcher did not poll %d times within %.0f s" % (count, timeout)
            time.sleep(0.01)

    def wait_seq(self, seq, timeout=WAIT_S):
        """Wait until the server has published exactly `seq` events (read from /api/sync)."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.get_json("/api/sync")["seq"]
            if current >= seq:
                assert current == seq, "more events than expected: seq %d, wanted %d" % (current, seq)
                return
            assert time.monotonic() < deadline, "seq stayed at %d, wanted %d" % (current, seq)
            time.sleep(0.02)

    def send_signal(self, signum=signal.SIGTERM):
        self.process.send_signal(signum)

    def wait(self, timeout):
        return self.process.wait(timeout=timeout)

    @property
    def stderr_text(self):
        return "\n".join(self.stderr_lines)

    def stop_later(self):
        """SIGTERM now; the exit is waited for by `reap_stopped()` (http.server takes up to 0.5 s to stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        STOPPING.append(self)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for reader in self._readers:
            reader.join(timeout=5)


STOPPING = []  # servers sent SIGTERM whose exit is not waited for yet


def reap_stopped():
    while STOPPING:
        STOPPING.pop().stop()


def serve_args(root=None, *extra, poll=POLL_S):
    args = ["--port", "0", "--ws-port", "0"]
    if root is not None:
        args += ["--root", str(root)]
    if poll is not None:
        args += ["--poll-interval", poll]
    return args + list(extra)


# -- HTTP ---------------------------------------------------------------------------------------------------------

class HttpResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-cased names → value (the last one)
        self.header_list = []
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "HttpResponse(%d %s, %r, %r)" % (self.status, self.reason, self.headers, self.body[:500])


def http_request(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    try:
        headers = dict(headers or {})
        connection.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        result = HttpResponse(response.status, response.reason,
                              {name.lower(): value for name, value in response.getheaders()}, data)
        result.header_list = response.getheaders()
        return result
    finally:
        connection.close()


def raw_http(port, request_bytes, timeout=WAIT_S):
    """Send raw bytes to `port`; read the answer to EOF; returns HttpResponse (status 0 if nothing came)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request_bytes)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0]:
        return HttpResponse(0, "", {}, raw)
    _, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return HttpResponse(int(status), reason, headers, body)


def upgrade_request(port, path="/ws", key=None, method="GET", version="13", extra_lines=(), omit=()):
    """The bytes of a WebSocket upgrade request; `omit` drops header names, `extra_lines` adds raw header lines."""
    key = base64.b64encode(os.urandom(16)).decode("ascii") if key is None else key
    headers = [("Host", "127.0.0.1:%d" % port), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    lines = ["%s %s HTTP/1.1" % (method, path)]
    lines += ["%s: %s" % (name, value) for name, value in headers if name not in omit]
    lines += list(extra_lines)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + ACCEPT_GUID).digest()).decode("ascii")


def free_port():
    """A port nothing listens on, below the kernel's ephemeral range when it can be, so that no outgoing connection
    of another process takes it between this call and the bind of the server under test."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            ephemeral_low = int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 0
    candidates = [random.randint(10000, ephemeral_low - 1) for _ in range(50)] if ephemeral_low > 10001 else []
    for port in candidates + [0]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise AssertionError("no free port")


def port_refuses(port):
    """True when nothing listens on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=WAIT_S).close()
    except ConnectionRefusedError:
        return True
    return False


def parse_prometheus(text):
    """Prometheus text exposition → ({sample name: float}, {metric name: type}). Fails on a malformed line, a
    sample without a # TYPE for its metric, or a value that is not a number."""
    types = {}
    samples = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] == "TYPE":
                assert len(parts) == 4 and parts[3] in ("counter", "gauge", "summary", "histogram", "untyped"), line
                assert parts[2] not in types, "two # TYPE lines for %s" % parts[2]
                types[parts[2]] = parts[3]
            continue
        fields = line.split(" ")
        assert len(fields) == 2, "a sample line is `name value`: %r" % line
        name, value = fields
        assert name.replace("_", "a").replace(":", "a").isalnum() and not name[0].isdigit(), line
        number = float(value)  # ValueError for anything that is not a number
        base = name
        if name not in types:
            for suffix in ("_sum", "_count", "_bucket"):
                if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("summary", "histogram"):
                    base = name[:-len(suffix)]
        assert base in types, "sample %s has no # TYPE line" % name
        if types[base] == "counter" or name.endswith("_count"):
            assert number >= 0, line
        assert name not in samples, "sample %s appears twice" % name
        samples[name] = number
    return samples, types


# -- WebSocket clients --------------------------------------------------------------------------------------------

def ws_connect(url, **options):
    """The `websockets` library's client: no compression (the server offers none), no keepalive pings."""
    settings = {"compression": None, "ping_interval": None, "max_size": None, "open_timeout": WAIT_S,
                "close_timeout": WAIT_S}
    settings.update(options)
    return websockets.asyncio.client.connect(url, **settings)


async def own_connect(url, **options):
    return await own_connect_raw(url, open_timeout=WAIT_S, **options)


class own_client:
    """`async with own_client(url) as ws:` for the package's own client, closing it on the way out."""

    def __init__(self, url, **options):
        self.url = url
        self.options = options
        self.websocket = None

    async def __aenter__(self):
        self.websocket = await own_connect(self.url, **self.options)
        return self.websocket

    async def __aexit__(self, *exc_info):
        if not self.websocket.closed:
            await asyncio.wait_for(self.websocket.close(), WAIT_S)


def client_for(kind, url, **options):
    """An async context manager for a client of `kind`: "websockets" (the library) or "own" (the package's)."""
    if kind == "websockets":
        return ws_connect(url, **options)
    return own_client(url, **options)


async def recv_json(websocket, timeout=WAIT_S):
    message = await asyncio.wait_for(websocket.recv(), timeout)
    assert isinstance(message, str), "the server sends text frames, got %r" % (message[:80],)
    return json.loads(message)


async def recv_welcome(websocket, reason="connected"):
    """The welcome `ping` and, unless `reason` is None, the `snapshot` after it; returns (ping, snapshot)."""
    welcome = await recv_json(websocket)
    assert welcome["type"] == "ping", welcome
    snapshot = None
    if reason is not None:
        snapshot = await recv_json(websocket)
        assert snapshot["type"] == "snapshot", snapshot
        assert snapshot["data"]["reason"] == reason, snapshot["data"]["reason"]
    return welcome, snapshot


async def recv_events(websocket, count, timeout=WAIT_S):
    """The next `count` messages, all of which must arrive within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    messages = []
    for _ in range(count):
        messages.append(await recv_json(websocket, max(0.01, deadline - time.monotonic())))
    return messages


async def recv_until(websocket, predicate, timeout=WAIT_S):
    """Every message up to and including the first one for which `predicate(message)` is true."""
    deadline = time.monotonic() + timeout
    messages = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("the awaited message did not come within %.1f s; got %r"
                                 % (timeout, [summary(m) for m in messages]))
        try:
            message = await recv_json(websocket, left)
        except asyncio.TimeoutError:
            continue
        messages.append(message)
        if predicate(message):
            return messages


async def fence(websocket):
    """Send a JSON ping and read up to its pong: returns what came before it (events already sent)."""
    token = int(time.time() * 1000) + 1
    await send_text(websocket, json.dumps({"type": "ping", "timestamp": token}))
    before = await recv_until(websocket, lambda m: m["type"] == "pong" and m["data"].get("timestamp") == token)
    return before[:-1]


async def expect_quiet(websocket, seconds):
    """No message for `seconds`, then nothing pending before a JSON ping's pong."""
    try:
        message = await asyncio.wait_for(websocket.recv(), seconds)
    except asyncio.TimeoutError:
        pass
    else:
        raise AssertionError("expected no message, got %s" % summary(json.loads(message)))
    assert await fence(websocket) == []


async def send_text(websocket, text):
    result = websocket.send(text)
    if asyncio.iscoroutine(result):  # the library's send is a coroutine; the package's writes at once
        await result


def summary(message):
    """A short description of a server message, for assertion messages."""
    data = message.get("data") or {}
    detail = data.get("workflowName") or data.get("reason") or data.get("code") or ""
    return "%s#%s %s" % (message.get("type"), message.get("seq"), detail)


def kinds(messages):
    return [(m["type"], m["data"].get("workflowName")) for m in messages]


def seqs(messages):
    return [m["seq"] for m in messages]


# -- a raw WebSocket peer (blocking socket; written here, so it shares no code with the package) -----------------

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10


class RawWebSocket:
    """A client over a plain socket that does only what a test tells it: it never answers pings, and it reads
    only when asked (so it can play a peer that stopped reading)."""

    def __init__(self, port, path="/ws", receive_buffer=None, extra_lines=()):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connect, so the TCP window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(WAIT_S)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        self.sock.sendall(upgrade_request(port, path, key=key, extra_lines=extra_lines))
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "connection closed during the handshake: %r" % buffer
            buffer += chunk
        head, _, self._buffer = buffer.partition(b"\r\n\r\n")
        self.response_head = head.decode("latin-1")
        self.last_rsv1 = False
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101 "), head
        accept = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("sec-websocket-accept:")]
        assert accept == [accept_for(key)], head

    def _read_exactly(self, count, deadline):
        while len(self._buffer) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no frame within the deadline")
            self.sock.settimeout(left)
            chunk = self.sock.recv(max(65536, count - len(self._buffer)))
            if not chunk:
                raise EOFError("the server closed the TCP connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def read_frame(self, timeout=WAIT_S):
        """(opcode, payload) of the next server frame; server frames are never masked and never fragmented here."""
        deadline = time.monotonic() + timeout
        first, second = self._read_exactly(2, deadline)
        self.last_rsv1 = bool(first & 0x40)  # the frame was compressed (permessage-deflate)
        assert first & 0x80, "the server does not fragment its messages"
        assert not second & 0x80, "a server frame must not be masked"
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read_exactly(2, deadline))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exactly(8, deadline))[0]
        return first & 0x0F, self._read_exactly(length, deadline)

    def read_message(self, timeout=WAIT_S):
        """The next text message as JSON, skipping protocol pings (never answered)."""
        deadline = time.monotonic() + timeout
        while True:
            opcode, payload = self.read_frame(max(0.01, deadline - time.monotonic()))
            if opcode == OP_PING:
                continue
            assert opcode == OP_TEXT, (opcode, payload[:80])
            return json.loads(payload.decode("utf-8"))

    def read_until_closed(self, timeout=WAIT_S):
        """Every (opcode, payload) still to read until the server's close frame (included) or the end of the
        TCP connection, pings too."""
        frames = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                opcode, payload = self.read_frame(max(0.01, deadline - time.monotonic()))
                frames.append((opcode, payload))
                if opcode == OP_CLOSE:
                    break
        except (EOFError, OSError):
            pass
        return frames

    def send_frame(self, opcode, payload=b"", fin=True, rsv1=False):
        self.sock.sendall(client_frame(opcode, payload, fin, rsv1, os.urandom(4)))

    def close(self):
        self.sock.close()


def client_frame(opcode, payload=b"", fin=True, rsv1=False, mask=b"\0\0\0\0"):
    """One masked client frame (by default a zero mask: the payload goes as it is, still a valid masked frame)."""
    length = len(payload)
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    if mask != b"\0\0\0\0":
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + payload


def close_payload(payload):
    """(code, reason) of a close frame's payload."""
    if len(payload) < 2:
        return 1005, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8")
