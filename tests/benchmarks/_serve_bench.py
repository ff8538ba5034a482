"""Shared helpers of the `serve` benchmarks (sync_latency, broadcast_cpu, idle_memory, many_connections,
watcher_cpu). Not a benchmark itself and not a test: imported by those scripts.

- a writable copy of tests/fixtures/sample-project, and generated state files;
- a real `python -m madace_status serve` subprocess on free loopback ports (stderr to a temporary file, so a
  chatty log never blocks it), with its /metrics;
- CPU seconds and RSS of any process from /proc;
- a lean raw-socket WebSocket client (asyncio.Protocol, no library) that can hold thousands of connections per
  process, answers protocol pings, and hands every text payload to a callback;
- medians and percentiles.
"""

import asyncio
import json
import os
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_PROJECT = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")
STATE_DIR = os.path.join("madace-data", "workflow-states")
CLK_TCK = os.sysconf("SC_CLK_TCK")

if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


# -- limits, statistics -------------------------------------------------------------------------------------

def raise_nofile(wanted):
    """Raise the soft RLIMIT_NOFILE towards `wanted` (capped by the hard limit); returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def percentile(values, fraction):
    """Nearest-rank percentile (fraction in 0..1) of a non-empty list."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[index]


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def machine_note():
    """CPUs and load averages, printed by every benchmark: the machine is shared and the figures are noisy."""
    try:
        with open("/proc/loadavg") as handle:
            load = " ".join(handle.read().split()[:3])
    except OSError:
        load = "?"
    return "machine: %d CPUs, load average %s, Python %s" % (os.cpu_count() or 0, load, sys.version.split()[0])


def verdict(ok):
    return "MET" if ok else "MISSED"


# -- projects -----------------------------------------------------------------------------------------------

def make_project(parent, with_sample=True):
    """A writable copy of tests/fixtures/sample-project in `parent`/project; returns its root."""
    root = os.path.join(parent, "project")
    if with_sample:
        shutil.copytree(SAMPLE_PROJECT, root)
        for directory, dirs, files in os.walk(root):
            os.chmod(directory, os.stat(directory).st_mode | stat.S_IWUSR | stat.S_IXUSR)
            for name in files:
                path = os.path.join(directory, name)
                os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
    else:
        os.makedirs(os.path.join(root, STATE_DIR))
    return root


def state_path(root, name):
    return os.path.join(root, STATE_DIR, ".%s.state.json" % name)


def schema_a_document(name, index=0, marker=None):
    """A schema-A workflow state of a realistic size (5 steps)."""
    document = {"workflow": name, "currentStep": 3, "totalSteps": 5, "status": "in_progress",
                "startedAt": "2026-11-20T10:00:00.000Z", "lastUpdated": "2026-11-20T10:30:00.000Z",
                "steps": [{"id": "step-%d" % s, "status": ("completed" if s < 2 else "in_progress" if s == 2
                                                           else "pending"),
                           "startedAt": "2026-11-20T10:00:00.000Z"} for s in range(5)],
                "context": {"projectName": "Bench", "index": index}}
    if marker is not None:
        document["context"]["benchMarker"] = marker
    return document


def write_json(path, document, atomic):
    """Write a state file as a workflow engine does: in place (truncate + write) or temp file + rename."""
    text = json.dumps(document, indent=2)
    if atomic:
        temporary = path + ".tmp"  # not `.<name>.state.json`: the watcher ignores it
        with open(temporary, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    else:
        with open(path, "w") as handle:
            handle.write(text)


# -- /proc ----------------------------------------------------------------------------------------------------

def proc_cpu_seconds(pid):
    """utime + stime of a process (every thread), in seconds (clock-tick resolution)."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


# -- the real serve command -----------------------------------------------------------------------------------

class ServeProcess:
    """`python -m madace_status serve --root ROOT --port 0 --ws-port 0 [...]` as a subprocess."""

    def __init__(self, root, poll_interval=None, extra_args=(), log_level="warning", python=None):
        self._log = tempfile.TemporaryFile()
        command = [python or sys.executable, "-m", "madace_status", "serve", "--root", root, "--host", "127.0.0.1",
                   "--port", "0", "--ws-port", "0", "--log-level", log_level]
        if poll_interval is not None:
            command += ["--poll-interval", str(poll_interval)]
        command += list(extra_args)
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        # The server's flow history goes to a cache directory of this run, never the user's (removed at stop).
        self._cache_home = tempfile.mkdtemp(prefix="bench-cache-")
        env["XDG_CACHE_HOME"] = self._cache_home
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self._log, env=env,
                                        text=True)
        self.pid = self.process.pid
        self.ws_url = self.http_url = None
        deadline = time.monotonic() + 30
        while self.ws_url is None:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("serve exited early (%s): %s" % (self.process.poll(), self.log_tail()))
            match = re.match(r"WebSocket:\s+(ws://\S+)", line)
            if match:
                self.ws_url = match.group(1)
            match = re.match(r"Dashboard:\s+(http://[^/]+)/", line)
            if match:
                self.http_url = match.group(1)
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not announce its WebSocket URL")
        host_port = self.ws_url.split("//", 1)[1].split("/", 1)[0]
        self.ws_host, port = host_port.rsplit(":", 1)
        self.ws_port = int(port)

    def log_tail(self, limit=2000):
        self._log.seek(0)
        return self._log.read()[-limit:].decode("utf-8", "replace")

    def metrics(self):
        """/metrics as {name: float}."""
        with urllib.request.urlopen(self.http_url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def cpu_seconds(self):
        return proc_cpu_seconds(self.pid)

    def rss_kib(self):
        return proc_rss_kib(self.pid)

    def stop(self, timeout=10):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self._log.close()
        shutil.rmtree(self._cache_home, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


# -- a lean raw-socket WebSocket client -------------------------------------------------------------------------

HANDSHAKE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example key: the server's answer is not checked


DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"  # what Chromium offers


def handshake_request(host, port, path="/ws", offer=None):
    """The upgrade request; `offer` a Sec-WebSocket-Extensions value (the clients never inflate: the benchmarks
    count frames, the tests check content)."""
    extension = "Sec-WebSocket-Extensions: %s\r\n" % offer if offer else ""
    return ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: bench\r\n%s\r\n"
            % (path, host, port, HANDSHAKE_KEY, extension)).encode()


def upgraded_socket(port, request, timeout=20, ssl_context=None):
    """A blocking socket to 127.0.0.1:`port` past the 101 answering `request`: (socket, bytes that came after
    the response). ConnectionError, with the status line, for any other answer. With `ssl_context`: over TLS."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if ssl_context is not None:
        sock = ssl_context.wrap_socket(sock, server_hostname="127.0.0.1")
    try:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        status, rest = head.split(b"\r\n\r\n", 1)
        if not status.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(status.split(b"\r\n", 1)[0].decode("latin-1"))
    except BaseException:
        sock.close()
        raise
    return sock, rest


CLOSE_REPLY = b"\x88\x80\0\0\0\0"  # a masked close frame with no payload (zero key)


def next_frame(buffer, position):
    """(opcode, payload start, end) of the unmasked server frame at `position` of `buffer`, or None while it is
    not all there."""
    size = len(buffer)
    if size - position < 2:
        return None
    length = buffer[position + 1] & 0x7F
    header = 2
    if length == 126:
        if size - position < 4:
            return None
        length = int.from_bytes(buffer[position + 2:position + 4], "big")
        header = 4
    elif length == 127:
        if size - position < 10:
            return None
        length = int.from_bytes(buffer[position + 2:position + 10], "big")
        header = 10
    end = position + header + length
    if end > size:
        return None
    return buffer[position] & 0x0F, position + header, end


def pong_for(payload):
    """The pong answering a ping of `payload`, masked with a zero key (so the payload goes as it is)."""
    return bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload


class RawClient(asyncio.Protocol):
    """One client connection: the upgrade request, then unmasked server frames parsed by hand.

    `on_text(client, payload_bytes)` is called for every text frame (the benchmarks' messages are never
    fragmented). Pings are answered with a masked pong (all-zero mask), a close frame with a close.
    """

    __slots__ = ("request", "on_text", "transport", "opened", "closed", "buffer", "upgraded", "count", "tag")

    def __init__(self, request, on_text, opened, tag=None):
        self.request = request
        self.on_text = on_text
        self.opened = opened
        self.closed = False
        self.transport = None
        self.buffer = b""
        self.upgraded = False
        self.count = 0
        self.tag = tag

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc):
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))

    def data_received(self, data):
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.buffer = b""
                if not self.opened.done():
                    self.opened.set_exception(ConnectionError(buffer[:end].split(b"\r\n", 1)[0].decode()))
                self.transport.abort()
                return
            self.upgraded = True
            if not self.opened.done():
                self.opened.set_result(self)
            buffer = buffer[end + 4:]
        position = 0
        while True:
            frame = next_frame(buffer, position)
            if frame is None:
                break
            opcode, start, position = frame
            if opcode == 1:
                self.count += 1
                self.on_text(self, buffer[start:position])
            elif opcode == 9:
                self.transport.write(pong_for(buffer[start:position]))
            elif opcode == 8:
                self.transport.write(CLOSE_REPLY)
                self.transport.close()
        self.buffer = buffer[position:] if position < len(buffer) else b""


async def open_raw_clients(host, port, count, on_text, concurrency=200, path="/ws", source_hosts=None,
                           retries=3, offer=None, ssl_context=None):
    """Open `count` RawClient connections, at most `concurrency` handshakes at a time; returns the clients
    (fewer when some fail) and the failures. `source_hosts`: local addresses to bind, in turn (None: let
    connect() choose, which is much faster than bind(port 0) once thousands of sockets exist)."""
    loop = asyncio.get_running_loop()
    request = handshake_request(host, port, path, offer)
    semaphore = asyncio.Semaphore(concurrency)
    clients = []
    failures = []

    async def one(index):
        async with semaphore:
            for attempt in range(retries):
                opened = loop.create_future()
                try:
                    local = {"local_addr": (source_hosts[index % len(source_hosts)], 0)} if source_hosts else {}
                    await loop.create_connection(lambda: RawClient(request, on_text, opened, index), host, port,
                                                 ssl=ssl_context, **local)
                    client = await asyncio.wait_for(opened, 20)
                    clients.append(client)
                    return
                except (OSError, asyncio.TimeoutError) as error:
                    if attempt == retries - 1:
                        failures.append(repr(error))
                    else:
                        await asyncio.sleep(0.2 * (attempt + 1))

    await asyncio.gather(*(one(index) for index in range(count)))
    return clients, failures


# -- bench server processes (ours / websockets), driven by lines on stdin ------------------------------------

def bench_message_data(size):
    """A `state_updated`-like payload whose JSON envelope is about `size` bytes."""
    data = {"workflowName": "bench", "state": {"status": "in_progress", "currentStep": 3, "totalSteps": 5,
                                               "progress": 40, "currentStepName": "generate-initial-prd"},
            "workflow": {"name": "bench", "status": "in_progress", "steps": [], "context": {"pad": ""}}}
    envelope = {"type": "state_updated", "timestamp": 1795637150253, "seq": 1, "data": data}
    overhead = len(json.dumps(envelope, separators=(",", ":")))
    data["workflow"]["context"]["pad"] = "x" * max(0, size - overhead)
    return data


class _DryTransport:
    """Stands in for a connection's transport during a `dry` run: writes go nowhere (no syscall)."""

    def __init__(self, real):
        self.real = real

    def write(self, data):
        pass

    def get_write_buffer_size(self):
        return 0

    def __getattr__(self, name):
        return getattr(self.real, name)


def _now_ms():
    return int(time.time() * 1000)


def _rusage_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _serve_ours(announce):
    """Our WebSocket server with the real Hub (trivial snapshot function), as the sync service wires it."""
    from madace_status.sync.clients.hub import Hub
    from madace_status.websocket import serve
    loop = asyncio.get_running_loop()
    hub = Hub(loop, lambda topics, workflows: {}, heartbeat_s=3600)  # not started: no heartbeat during a run
    server = await serve(host="127.0.0.1", port=0, on_connect=hub.client_connected, on_message=hub.client_message,
                         on_close=hub.client_disconnected, backlog=4096)
    announce(server.port)

    def broadcast(data):
        hub.publish("state_updated", data, "workflows", "bench")

    return server, broadcast, lambda: len(hub.clients), lambda: list(hub.clients)


async def _serve_floor(announce):
    """The syscall floor: our server and Hub hold the connections, but a broadcast is json.dumps + one frame +
    a bare `socket.send(frame)` per client (no hub, no transport: benchmark-only use of `transport._sock`)."""
    from madace_status.websocket import frames
    server, _, count, connections = await _serve_ours(announce)
    seq = [0]

    def broadcast(data):
        seq[0] += 1
        payload = json.dumps({"type": "state_updated", "timestamp": _now_ms(), "seq": seq[0], "data": data},
                             separators=(",", ":")).encode()
        frame = frames.serialize_frame(frames.OP_TEXT, payload)
        for websocket in connections():  # the hub's order, as Hub.publish walks them
            websocket.transport._sock.send(frame)

    return server, broadcast, count, connections


async def open_websockets_server(ping_interval=None, compression=None):
    """(server, the set of its open connections): a `websockets` server (asyncio implementation) on a free
    loopback port that only holds its connections, for `websockets.broadcast()`."""
    from websockets.asyncio.server import serve as ws_serve
    connections = set()

    async def handler(websocket):
        connections.add(websocket)
        try:
            await websocket.wait_closed()
        finally:
            connections.discard(websocket)

    server = await ws_serve(handler, "127.0.0.1", 0, compression=compression, ping_interval=ping_interval,
                            backlog=4096)
    return server, connections


async def _serve_websockets(announce, ping_interval=None, compression=None):
    """A `websockets` server (asyncio implementation), no compression (unless `compression="deflate"`: its
    default permessage-deflate settings), no keepalive pings (unless `ping_interval` is given), broadcast()."""
    import websockets
    server, connections = await open_websockets_server(ping_interval, compression)
    seq = [0]
    announce(server.sockets[0].getsockname()[1])

    def broadcast(data):
        seq[0] += 1
        message = json.dumps({"type": "state_updated", "timestamp": _now_ms(), "seq": seq[0], "data": data},
                             separators=(",", ":"))
        websockets.broadcast(connections, message)

    return server, broadcast, lambda: len(connections), lambda: list(connections)


def bench_server_main(impl, profile_path=None):
    """`--role server --impl ours|websockets`: prints `port N`, then answers commands read from stdin:
    `count` → connections; `bench B INTERVAL SIZE` → B broadcasts INTERVAL s apart, `sent <seconds in the
    broadcast calls (thread CPU)>`; `cpu` → process CPU seconds since the last `bench`; `rss` → gc, then VmRSS
    KiB; `quit`."""
    import gc
    raise_nofile(1 << 20)

    async def main():
        loop = asyncio.get_running_loop()
        commands = asyncio.Queue()

        def announce(port):
            print("port %d" % port, flush=True)

        starter = {"ours": _serve_ours, "websockets": _serve_websockets, "floor": _serve_floor,
                   "websockets-keepalive": lambda announce: _serve_websockets(announce, ping_interval=20),
                   "websockets-deflate": lambda announce: _serve_websockets(announce, compression="deflate")}[impl]
        server, broadcast, count, connections = await starter(announce)
        forward_stdin_commands(loop, commands)
        cpu_start = _rusage_seconds()
        profiling = False
        while True:
            command = await commands.get()
            if not command:
                continue
            if command[0] == "quit":
                break
            if command[0] == "count":
                print("count %d" % count(), flush=True)
            elif command[0] == "bench":
                broadcasts, interval, size = int(command[1]), float(command[2]), int(command[3])
                data = bench_message_data(size)
                gc.collect()
                in_calls = 0.0
                cpu_start = _rusage_seconds()
                if profiling:
                    import cProfile
                    profiler = cProfile.Profile()
                    profiler.enable()
                for _ in range(broadcasts):
                    started = time.thread_time()
                    broadcast(data)
                    in_calls += time.thread_time() - started
                    await asyncio.sleep(interval)
                if profiling:
                    profiler.disable()
                    profiler.dump_stats(profile_path)
                print("sent %.6f" % in_calls, flush=True)
            elif command[0] == "dry":  # `dry B SIZE`: B broadcasts back to back, every transport.write a no-op
                broadcasts, size = int(command[1]), int(command[2])
                data = bench_message_data(size)
                swapped = connections()
                for connection in swapped:
                    connection.transport = _DryTransport(connection.transport)
                gc.collect()
                started = time.thread_time()
                for _ in range(broadcasts):
                    broadcast(data)
                elapsed = time.thread_time() - started
                for connection in swapped:
                    connection.transport = connection.transport.real
                print("dry %.6f" % elapsed, flush=True)
            elif command[0] == "profile":  # `profile on`: the next `bench` runs under cProfile
                profiling = bool(profile_path) and command[1:] == ["on"]
                print("profile %s" % profiling, flush=True)
            elif command[0] == "cpu":
                print("cpu %.6f" % (_rusage_seconds() - cpu_start), flush=True)
            elif command[0] == "rss":
                gc.collect()
                print("rss %d" % proc_rss_kib(os.getpid()), flush=True)
        closing = server.close()
        if asyncio.iscoroutine(closing):
            await closing

    asyncio.run(main())


def forward_stdin_commands(loop, commands):
    """Queue each line of stdin, split into words, on `commands` (an asyncio.Queue of `loop`), from a thread;
    then ["quit"] at end of input. The client processes of the benchmarks are driven that way."""
    def read_stdin():
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.split())
        loop.call_soon_threadsafe(commands.put_nowait, ["quit"])

    threading.Thread(target=read_stdin, daemon=True).start()


def bench_clients_main(port, count, marker=b'"state_updated"', concurrency=200, offer=None, path="/ws",
                       ssl_context=None):
    """`--role clients`: opens `count` RawClient connections to 127.0.0.1:`port`, prints `ready OPENED FAILED`,
    then answers stdin commands: `reset` → zero the marker counts; `wait K TIMEOUT` → `done MIN TOTAL
    LAST_MONOTONIC FIRST_MONOTONIC` (of the marker messages since the reset) once every client counted K
    markers (or at the timeout); `quit`. With an `offer` (permessage-deflate) payloads may be compressed, so
    every text message counts (after a reset only broadcasts arrive). `path` and `ssl_context` (TLS): for a
    server behind a proxy."""
    if offer:
        marker = None
    raise_nofile(count + 256)

    async def main():
        loop = asyncio.get_running_loop()
        commands = asyncio.Queue()
        counts = [0] * count
        last = [0.0]
        first = [0.0]

        def on_text(client, payload):
            if marker is None or marker in payload[:48]:
                counts[client.tag] += 1
                last[0] = time.monotonic()
                if not first[0]:
                    first[0] = last[0]

        clients, failures = await open_raw_clients("127.0.0.1", port, count, on_text, concurrency=concurrency,
                                                   offer=offer, path=path, ssl_context=ssl_context)
        print("ready %d %d %s" % (len(clients), len(failures), (failures[:1] or [""])[0].replace(" ", "_")),
              flush=True)

        forward_stdin_commands(loop, commands)
        opened = [client.tag for client in clients]
        while True:
            command = await commands.get()
            if not command:
                continue
            if command[0] == "quit":
                break
            if command[0] == "reset":
                for index in range(count):
                    counts[index] = 0
                first[0] = last[0] = 0.0
                print("reset", flush=True)
            elif command[0] == "wait":
                wanted, timeout = int(command[1]), float(command[2])
                deadline = time.monotonic() + timeout
                while min(counts[i] for i in opened) < wanted and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
                print("done %d %d %.6f %.6f" % (min(counts[i] for i in opened), sum(counts), last[0], first[0]),
                      flush=True)
        for client in clients:
            client.transport.abort()

    asyncio.run(main())


class LineProcess:
    """A helper subprocess (this interpreter) spoken to by lines on stdin/stdout."""

    def __init__(self, argv):
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        # The server's flow history goes to a cache directory of this run, never the user's (removed at stop).
        self._cache_home = tempfile.mkdtemp(prefix="bench-cache-")
        env["XDG_CACHE_HOME"] = self._cache_home
        self.process = subprocess.Popen([sys.executable] + argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env, cwd=REPO_ROOT)
        self.pid = self.process.pid

    def read(self, expected):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("helper %s exited (%s)" % (self.pid, self.process.poll()))
        words = line.split()
        if words[0] != expected:
            raise RuntimeError("helper %s said %r, expected %r" % (self.pid, line, expected))
        return words[1:]

    def ask(self, command, expected):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read(expected)

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
