"""The 1,000-client mode of sync_latency.py: file write → event at the LAST of N clients, for a real `serve` and
for the reference (a `websockets` server with a naive 0.1 s poller of a file), in the same run.

Clients: raw-socket WebSocket clients (no masking work, no JSON parsing, one bare epoll loop per process: see
clients_main) in CLIENT_PROCS separate processes per server, so that the client side is not one Python loop
decoding 1,000 frames in turn. Each client process notes, per client, the `time.monotonic()` of the first `state_updated`
frame since the last `reset` (CLOCK_MONOTONIC is one clock for every process of the machine); the latency of a
write is the latest of these over every client of every process, minus the time taken just before the write.

The writes alternate between the servers (ours: the project's state file; each reference: a file outside the
project, so no server sees another's writes), one at a time, each waited for at every client before the
next, about SPACING apart with random jitter so that the reference's writes land at every phase of its poll.

On Linux a third server (skipped with --no-floor) is the same `websockets` reference told of each write by a bare
inotify thread instead of its poll: the issue's reference with the poll phase taken out, so that what is left
is the two fan-outs (ours and `websockets.broadcast`) on the same clients, and the ratio of the two is printed.
"""

import asyncio
import json
import os
import random
import select
import ssl
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _floor_bench as floor  # noqa: E402
import _serve_bench as bench  # noqa: E402

REFERENCE_POLL_S = 0.1  # the naive poller's period (the reference: `websockets` + a 0.1 s poller)
TARGET_LAST_P50_MS = 25.0
TARGET_RATIO = 0.35
WAIT_TIMEOUT_S = 10.0  # a write not at every client by then counts as missing
MARKER = b'"state_updated"'
RECV_BYTES = 256 * 1024


# -- the reference server: websockets + a naive 0.1 s poller -------------------------------------------------

def reference_main(path, inotify=False):
    """`--role reference --file PATH`: prints `port N`; every REFERENCE_POLL_S reads PATH and, when its content
    changed and parses, broadcasts {"type": "state_updated", "seq", "data": <the file's JSON>} to every client
    with `websockets.broadcast`. Ends when stdin closes. With `inotify` (`--role reference-inotify`) it reads
    PATH when a bare inotify thread (_floor_bench.finished_writes) reports it written instead: the same
    server with the poll phase taken out, so that the two fan-outs are compared alone."""
    import websockets
    bench.raise_nofile(1 << 16)

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        server, connections = await bench.open_websockets_server()
        print("port %d" % server.sockets[0].getsockname()[1], flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(done.set_result, None)),
                         daemon=True).start()
        last = None
        seq = 0
        written = asyncio.Queue()
        if inotify:
            changes = floor.finished_writes(path)
            threading.Thread(target=lambda: [loop.call_soon_threadsafe(written.put_nowait, None) for _ in changes],
                             daemon=True).start()
        while not done.done():
            try:
                with open(path, "rb") as handle:
                    content = handle.read()
                if content != last:
                    data = json.loads(content)
                    last = content
                    seq += 1
                    websockets.broadcast(connections, json.dumps(
                        {"type": "state_updated", "timestamp": int(time.time() * 1000), "seq": seq, "data": data},
                        separators=(",", ":")))
            except (OSError, ValueError):
                pass  # caught mid-write: the next poll sees the rest
            if inotify:
                await asyncio.wait([asyncio.ensure_future(written.get()), done], return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(REFERENCE_POLL_S)
        server.close()

    asyncio.run(main())


# -- a client process -----------------------------------------------------------------------------------------

def clients_main(port, count, path="/ws", ssl_context=None):
    """`--role fanout-clients --port P --clients N`: prints `ready OPENED FAILED`, then answers `reset` →
    `reset`, and `wait TIMEOUT` → `done RECEIVED LATEST EARLIEST` (clients that got a state_updated since the
    reset; the latest and earliest monotonic time of their first one).

    The clients are the instrument, so they are as lean as Python allows: blocking handshakes one after the
    other, then one bare `select.epoll` loop over every socket and stdin — one recv() per readable socket, the
    frames scanned in place (`_serve_bench.next_frame`), pings answered. An asyncio Protocol per client cost
    ~38 µs of CPU per client and message, more than the server's own send, on the same two cores. `path` and
    `ssl_context` (TLS sockets, decrypted by OpenSSL in C): for a server behind a proxy (proxy_latency.py)."""
    bench.raise_nofile(count + 256)
    request = bench.handshake_request("127.0.0.1", port, path)
    sockets, buffers, failures = [], [], 0
    for _ in range(count):
        try:
            sockets.append(_handshake(port, request, buffers, ssl_context))
        except (OSError, ValueError):
            failures += 1
    print("ready %d %d" % (len(sockets), failures), flush=True)
    _serve_commands(sockets, buffers)


def _handshake(port, request, buffers, ssl_context=None):
    sock, rest = bench.upgraded_socket(port, request, ssl_context=ssl_context)
    sock.setblocking(False)
    buffers.append(rest)  # the welcome may have come with the response
    return sock


def _serve_commands(sockets, buffers):
    epoll = select.epoll()
    index_of = {}
    for index, sock in enumerate(sockets):
        index_of[sock.fileno()] = index
        epoll.register(sock.fileno(), select.EPOLLIN)
    stdin = sys.stdin.fileno()
    epoll.register(stdin, select.EPOLLIN)
    first = [0.0] * len(sockets)
    received, deadline, pending = 0, None, b""
    while True:
        timeout = -1 if deadline is None else max(0.0, deadline - time.monotonic())
        for fd, _ in epoll.poll(timeout):
            if fd == stdin:
                data = os.read(stdin, 4096)
                pending += data
                while b"\n" in pending or not data:
                    line, _, pending = pending.partition(b"\n")
                    words = line.split() if data else [b"quit"]
                    if words and words[0] == b"quit":
                        return
                    if words and words[0] == b"reset":
                        first, received = [0.0] * len(sockets), 0
                        print("reset", flush=True)
                    elif words and words[0] == b"wait":
                        deadline = time.monotonic() + float(words[1])
                continue
            now = time.monotonic()
            index = index_of[fd]
            sock = sockets[index]
            try:
                data = sock.recv(RECV_BYTES)
                while isinstance(sock, ssl.SSLSocket) and sock.pending():  # decrypted already: no epoll event
                    data += sock.recv(RECV_BYTES)
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
            except OSError:
                data = b""
            if not data:
                epoll.unregister(fd)
                continue
            buffer = buffers[index] + data if buffers[index] else data
            position = 0
            while True:
                frame = bench.next_frame(buffer, position)
                if frame is None:
                    break
                opcode, start, position = frame
                if opcode == 1:
                    if not first[index] and MARKER in buffer[start:start + 48]:
                        first[index] = now
                        received += 1
                elif opcode == 9:
                    sock.send(bench.pong_for(buffer[start:position]))
                elif opcode == 8:
                    sock.send(bench.CLOSE_REPLY)
            buffers[index] = buffer[position:]
        if deadline is not None and (received == len(sockets) or time.monotonic() >= deadline):
            seen = [at for at in first if at]
            print("done %d %.6f %.6f" % (len(seen), max(seen, default=0.0), min(seen, default=0.0)), flush=True)
            deadline = None


# -- the run --------------------------------------------------------------------------------------------------

class Side:
    """One server (ours or the reference), its client processes, and the file whose writes it must deliver."""

    def __init__(self, name, port, path, clients, procs, script, server_pid):
        self.name, self.path, self.clients, self.server_pid = name, path, clients, server_pid
        share = [clients // procs + (1 if index < clients % procs else 0) for index in range(procs)]
        self.procs = [bench.LineProcess([script, "--role", "fanout-clients", "--port", str(port),
                                         "--clients", str(count)]) for count in share if count]
        self.last_ms, self.first_ms, self.missing = [], [], 0
        self.cpu_ms = None  # (server, its client processes): CPU ms per write over the run

    def cpu_seconds(self):
        return (bench.proc_cpu_seconds(self.server_pid),
                sum(bench.proc_cpu_seconds(proc.pid) for proc in self.procs))

    def ready(self):
        opened = sum(int(proc.read("ready")[0]) for proc in self.procs)
        if opened != self.clients:
            raise SystemExit("%s: %d of %d clients connected" % (self.name, opened, self.clients))

    def measure(self, document, marker, atomic):
        for proc in self.procs:
            proc.ask("reset", "reset")
        document["context"]["benchMarker"] = marker
        started = time.monotonic()
        bench.write_json(self.path, document, atomic)
        received, latest, earliest = 0, 0.0, float("inf")
        for proc in self.procs:
            count, last, first = proc.ask("wait %g" % WAIT_TIMEOUT_S, "done")
            received += int(count)
            if int(count):
                latest, earliest = max(latest, float(last)), min(earliest, float(first))
        if received < self.clients:
            self.missing += self.clients - received
            return
        self.last_ms.append((latest - started) * 1000)
        self.first_ms.append((earliest - started) * 1000)

    def close(self):
        for proc in self.procs:
            proc.close()


def run(args, script):
    """The 1,000-client measurement; returns the exit status."""
    print(bench.machine_note())
    bench.raise_nofile(args.clients * 4 + 512)
    rng = random.Random(args.seed)
    sides = []
    with tempfile.TemporaryDirectory(prefix="madace-bench-") as parent:
        root = bench.make_project(parent)
        ours_path = bench.state_path(root, "pm-planning")
        reference_path = os.path.join(parent, "reference.state.json")  # outside the project: serve ignores it
        evented_path = os.path.join(parent, "evented", "reference.state.json")  # its own directory's watch
        os.mkdir(os.path.dirname(evented_path))
        with open(ours_path) as handle:
            document = json.load(handle)
        references = [("websockets+poll", "reference", reference_path)]
        if args.floor and sys.platform.startswith("linux"):
            references.append(("websockets+inotify", "reference-inotify", evented_path))
        for _, _, path in references:
            bench.write_json(path, document, atomic=True)
        helpers = [(name, bench.LineProcess([script, "--role", role, "--file", path]), path)
                   for name, role, path in references]
        try:
            with bench.ServeProcess(root) as server:
                sides = [Side("ours", server.ws_port, ours_path, args.clients, args.client_procs, script, server.pid)]
                sides += [Side(name, int(helper.read("port")[0]), path, args.clients, args.client_procs, script,
                               helper.pid) for name, helper, path in helpers]
                for side in sides:
                    side.ready()
                print("%d clients per server in %d client processes each (raw sockets); serve (default watcher) vs "
                      "websockets %s + a naive %.1f s poller%s; %d writes each, alternating, ~%.2f s apart, "
                      "in-place and atomic in turn"
                      % (args.clients, args.client_procs, _websockets_version(), REFERENCE_POLL_S,
                         " and websockets + a bare inotify thread" if len(sides) == 3 else "", args.writes,
                         args.spacing))
                before = [side.cpu_seconds() for side in sides]
                for index in range(args.writes):
                    for side in sides:
                        time.sleep(args.spacing * rng.uniform(0.5, 1.5))
                        side.measure(document, "w%d" % index, atomic=index % 2 == 1)
                for side, (server_s, clients_s) in zip(sides, before):
                    server_after, clients_after = side.cpu_seconds()
                    side.cpu_ms = ((server_after - server_s) * 1000 / args.writes,
                                   (clients_after - clients_s) * 1000 / args.writes)
                metrics = server.metrics()
        finally:
            for side in sides:
                side.close()
            for _, helper, _ in helpers:
                helper.close()
    ours, theirs = sides[:2]
    for side in sides:
        print("%-16s last client: p50 %.1f ms, p90 %.1f ms, max %.1f ms | first client p50 %.1f ms | %d writes%s"
              % (side.name, bench.percentile(side.last_ms, 0.5), bench.percentile(side.last_ms, 0.9),
                 max(side.last_ms), bench.percentile(side.first_ms, 0.5), len(side.last_ms),
                 ", %d (write, client) pairs MISSING" % side.missing if side.missing else ""))
    # Every write costs the server's sends and every client's read; with both on this machine's cores, the
    # last client cannot have it sooner than that CPU time spread over all of them (the idle time included).
    cores = os.cpu_count() or 1
    for side in sides:
        print("%-16s CPU per write (whole run / writes): server %.1f ms + its client processes %.1f ms = %.1f ms; "
              "spread over %d cores: %.1f ms" % (side.name, side.cpu_ms[0], side.cpu_ms[1], sum(side.cpu_ms), cores,
                                                 sum(side.cpu_ms) / cores))
    broadcasts = metrics.get("madace_broadcast_duration_seconds_count", 0)
    if broadcasts:
        print("server /metrics: mean broadcast (hub.publish to %d clients) %.2f ms over %d events"
              % (args.clients, 1000 * metrics["madace_broadcast_duration_seconds_sum"] / broadcasts, broadcasts))
    ours_p50, theirs_p50 = bench.percentile(ours.last_ms, 0.5), bench.percentile(theirs.last_ms, 0.5)
    ratio = ours_p50 / theirs_p50
    print("RESULT last of %d clients, p50: ours %.1f ms, websockets + %.1f s poller %.1f ms, ratio %.2f"
          % (args.clients, ours_p50, REFERENCE_POLL_S, theirs_p50, ratio))
    if len(sides) == 3 and sides[2].last_ms:
        evented_p50 = bench.percentile(sides[2].last_ms, 0.5)
        print("fan-out alone: websockets + a bare inotify thread (no poll phase) %.1f ms, ours / it %.2f"
              % (evented_p50, ours_p50 / evented_p50))
    print("(end) " + bench.machine_note())
    print("targets: last-client p50 <= %.0f ms %s, ratio <= %.2f %s"
          % (TARGET_LAST_P50_MS, bench.verdict(ours_p50 <= TARGET_LAST_P50_MS), TARGET_RATIO,
             bench.verdict(ratio <= TARGET_RATIO)))
    return 1 if any(side.missing for side in sides) else 0


def _websockets_version():
    try:
        import websockets
        return websockets.__version__
    except ImportError:
        raise SystemExit("the reference needs `websockets` (the dev extra)")
