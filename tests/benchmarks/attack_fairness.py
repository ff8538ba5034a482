"""Fair under attack (README, "Security"): each hostile peer of issue 19 mounted against a real `serve`, with a
well-behaved client measuring its own write → event latency beside a no-attack baseline of the same run.

For each attack: the good client's latency (p50 / p99 / worst) over a state-file write every SPACING_S, its
disconnects, the server's CPU above the baseline's (the attacker's share, in % of one core), the server's RSS
growth, and the tracebacks in its log. The attackers run in a process of their own.

Attacks: a JSON ping flood that reads every pong; a subscribe flood; a compressed message started and never
finished, on CONNECTIONS_HOLDING connections (RSS); 722,000-style continuation frames of empty deflate blocks;
a fragment flood without deflate; 1,000 connections sending one byte of their handshake a second; 2,000
half-sent HTTP requests (with /healthz timed throughout); a permessage-deflate offer whose window size has
5,000 digits. Targets: the good client's p99 <= 100 ms with no disconnect, the attacker's share <= 25 % of a
core, RSS growth <= 100 MB for 10,000 unfinished compressed messages, /healthz <= 100 ms throughout the
half-sent requests, and no traceback.

    python tests/benchmarks/attack_fairness.py                  # every attack, ATTACK_S each
    python tests/benchmarks/attack_fairness.py --attacks json_ping_flood,half_sent_http --seconds 5
"""

import argparse
import asyncio
import json
import multiprocessing
import select
import selectors
import socket
import sys
import time
import zlib

import _serve_bench as bench

ATTACK_S = 10.0  # measured, once the attacker's connections are open (at most SETUP_S)
SETUP_S = 30.0
SPACING_S = 0.2  # between two writes of the good client's state file
CONNECTIONS_HOLDING = 10000  # connections each holding an unfinished compressed message
DRIPPERS = 1000  # connections sending one byte of their handshake a second
HALF_SENT_HTTP = 2000
NOFILE_WANTED = 30000
ZERO_MASK = b"\0\0\0\0"
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"


# -- frames and connections (the attacker's side) -----------------------------------------------------------------

def frame(opcode, payload=b"", fin=True, rsv1=False):
    """A masked client frame with an all-zero key (the payload goes as it is)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    length = len(payload)
    if length < 126:
        header = bytes((first, 0x80 | length))
    elif length < 65536:
        header = bytes((first, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, 0x80 | 127)) + length.to_bytes(8, "big")
    return header + ZERO_MASK + payload


def upgraded(port, offer=None, timeout=10.0):
    """A blocking socket past the 101 (whatever frames came with it are dropped)."""
    return bench.upgraded_socket(port, bench.handshake_request("127.0.0.1", port, "/ws", offer), timeout)[0]


def flood(port, unit, offer=None, first=b"", until=0.0, read=True, ready=None):
    """Send `first` then `unit` again and again on one connection, reading what comes back when `read`;
    reconnect whenever the server closes it. Returns (bytes sent, connections)."""
    ready.set()
    sent = connections = 0
    batch = unit * max(1, 16384 // len(unit))
    while time.monotonic() < until:
        try:
            sock = upgraded(port, offer)
        except OSError:
            time.sleep(0.05)
            continue
        connections += 1
        sock.setblocking(False)
        out = first
        try:
            while time.monotonic() < until:
                if read:
                    while True:
                        try:
                            if not sock.recv(65536):
                                raise ConnectionError("closed")
                        except BlockingIOError:
                            break
                _, writable, _ = select.select([], [sock], [], 0.05)
                if writable:
                    out = out or batch
                    written = sock.send(out)
                    sent += written
                    out = out[written:]
        except OSError:
            pass
        finally:
            sock.close()
    return sent, connections


def unfinished_compressed(port, until, count, ready):
    """`count` connections each sending a compressed message's first frame and nothing more, answering the
    server's pings (so only the reassembly deadline ends them); `ready` is set once all are open. They are not
    opened again: what is measured is what holding them costs (opening them is a connection flood)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    started = compressor.compress(b"a" * 65536) + compressor.flush(zlib.Z_SYNC_FLUSH)  # ~100 bytes → 64 KiB
    message = frame(1, started, fin=False, rsv1=True)
    held = selectors.DefaultSelector()
    opened = 0
    while time.monotonic() < until:
        while opened < count and time.monotonic() < until:
            try:
                sock = upgraded(port, DEFLATE_OFFER)
                sock.sendall(message)
                sock.setblocking(False)
                held.register(sock, selectors.EVENT_READ)
                opened += 1
            except OSError:
                break
            if opened % 200 == 0:
                break  # now and then, answer what came meanwhile
        if opened >= count:
            ready.set()
        for key, _ in held.select(0.05):
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data or data[:1] == b"\x88":
                held.unregister(sock)
                sock.close()
            elif data[:1] == b"\x89":  # a heartbeat: answered, so only the reassembly deadline ends it
                try:
                    sock.send(bench.pong_for(data[2:2 + (data[1] & 0x7F)]))
                except OSError:
                    pass
    for key in list(held.get_map().values()):
        key.fileobj.close()
    return len(message), opened


def dripping_handshakes(port, until, count, ready):
    """`count` connections each sending one more byte of a handshake request every second."""
    request = bench.handshake_request("127.0.0.1", port)
    peers = {}
    opened = 0
    while time.monotonic() < until:
        for _ in range(count - len(peers)):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.setblocking(False)
                peers[sock] = 0
                opened += 1
            except OSError:
                break
        tick = time.monotonic() + 1.0
        for sock in list(peers):
            try:
                sock.send(request[peers[sock]:peers[sock] + 1])
                peers[sock] += 1
            except OSError:
                del peers[sock]
                sock.close()
        time.sleep(max(0.0, tick - time.monotonic()))
        ready.set()
    for sock in peers:
        sock.close()
    return 0, opened


def half_sent_http(port, until, count, ready):
    """`count` HTTP requests sent up to their last header line and left there, made again when closed."""
    head = b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: 1\r\n"
    peers = selectors.DefaultSelector()
    opened = timed_out = 0
    while time.monotonic() < until:
        for _ in range(count - len(peers.get_map())):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(head)
                sock.setblocking(False)
                peers.register(sock, selectors.EVENT_READ)
                opened += 1
            except OSError:
                break
        for key, _ in peers.select(0.2):
            sock = key.fileobj
            try:
                answer = sock.recv(4096)
            except OSError:
                answer = b""
            timed_out += answer.startswith(b"HTTP/1.0 408 ")
            peers.unregister(sock)
            sock.close()
        ready.set()
    for key in list(peers.get_map().values()):
        key.fileobj.close()
    return timed_out, opened


def json_ping_flood(ws, http, until, ready):
    return flood(ws, frame(1, b'{"type":"ping","timestamp":1}'), until=until, ready=ready)


def subscribe_flood(ws, http, until, ready):
    return flood(ws, frame(1, b'{"type":"subscribe","topics":["workflows"]}'), until=until, ready=ready)


def empty_deflate_continuations(ws, http, until, ready):
    empty = b"\x00\x00\x00\xff\xff"  # an empty stored block: inflates to nothing
    return flood(ws, frame(0, empty, fin=False), DEFLATE_OFFER, frame(1, empty, fin=False, rsv1=True), until,
                 read=False, ready=ready)


def fragment_flood(ws, http, until, ready):
    return flood(ws, frame(0, b"", fin=False), None, frame(1, b"x", fin=False), until, read=False, ready=ready)


def unfinished_compressed_messages(ws, http, until, ready):
    return unfinished_compressed(ws, until, CONNECTIONS_HOLDING, ready)


def one_byte_a_second(ws, http, until, ready):
    return dripping_handshakes(ws, until, DRIPPERS, ready)


def half_sent_http_requests(ws, http, until, ready):
    return half_sent_http(http, until, HALF_SENT_HTTP, ready)


def huge_window_bits(ws, http, until, ready):
    offer = "permessage-deflate; server_max_window_bits=%s" % ("1" * 5000)
    ready.set()
    answered = 0
    while time.monotonic() < until:
        try:
            upgraded(ws, offer).close()
            answered += 1
        except OSError:
            pass
        time.sleep(0.01)
    return 0, answered


ATTACKS = {
    "json_ping_flood": json_ping_flood,
    "subscribe_flood": subscribe_flood,
    "unfinished_compressed": unfinished_compressed_messages,
    "empty_deflate_continuations": empty_deflate_continuations,
    "fragment_flood": fragment_flood,
    "one_byte_a_second": one_byte_a_second,
    "half_sent_http": half_sent_http_requests,
    "huge_window_bits": huge_window_bits,
}


def _attack_process(name, ws_port, http_port, seconds, results, ready):
    bench.raise_nofile(NOFILE_WANTED)
    results.put(ATTACKS[name](ws_port, http_port, time.monotonic() + seconds, ready))


# -- the good client and the measurement -----------------------------------------------------------------------

class GoodClient:
    """One well-behaved client: it times the state_updated carrying each marker written, and counts drops."""

    def __init__(self):
        self.received = {}
        self.client = None
        self.disconnects = 0

    async def open(self, ws_port):
        def on_text(_client, payload):
            message = json.loads(payload)
            if message.get("type") == "state_updated":
                marker = message["data"]["workflow"].get("context", {}).get("benchMarker")
                if marker is not None:
                    self.received.setdefault(marker, time.monotonic())
        clients, failures = await bench.open_raw_clients("127.0.0.1", ws_port, 1, on_text)
        if failures:
            raise RuntimeError("the good client could not connect: %s" % failures)
        self.client = clients[0]

    async def measure(self, root, seconds, tag, health_port=None):
        """Write the state file every SPACING_S for `seconds`; (latencies in ms, writes missed, /healthz ms)."""
        written = {}
        health = []
        path = bench.state_path(root, "pm-planning")
        end = time.monotonic() + seconds
        index = 0
        while time.monotonic() < end:
            marker = "%s-%d" % (tag, index)
            written[marker] = time.monotonic()
            bench.write_json(path, bench.schema_a_document("pm-planning", index, marker), atomic=index % 2 == 1)
            index += 1
            if health_port is not None:
                health.append(await asyncio.to_thread(healthz_ms, health_port))
            await asyncio.sleep(SPACING_S)
            if self.client.closed:
                self.disconnects += 1
                await self.open(self.ws_port)
        await asyncio.sleep(1.0)
        latencies = [(self.received[m] - t) * 1000 for m, t in written.items() if m in self.received]
        return latencies, len(written) - len(latencies), health


def healthz_ms(port):
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        return (time.monotonic() - started) * 1000 if answer.startswith(b"HTTP/1.0 200") else float("inf")
    except OSError:
        return float("inf")


def figures(values):
    if not values:
        return "no figures"
    return "p50 %.1f ms, p99 %.1f ms, worst %.1f ms" % (bench.median(values), bench.percentile(values, 0.99),
                                                         max(values))


async def run(args):
    bench.raise_nofile(NOFILE_WANTED)
    parent = bench.tempfile.mkdtemp(prefix="attack-")
    root = bench.make_project(parent)
    server = bench.ServeProcess(root, log_level="info")
    good = GoodClient()
    good.ws_port = server.ws_port
    http_port = int(server.http_url.rsplit(":", 1)[1])
    await good.open(server.ws_port)
    print(bench.machine_note())
    print("server pid %d, open-files limit %s" % (server.pid, bench.raise_nofile(NOFILE_WANTED)))
    rss_start = server.rss_kib()
    cpu, wall = server.cpu_seconds(), time.monotonic()
    baseline, missed, _ = await good.measure(root, args.seconds, "base")
    base_cpu = (server.cpu_seconds() - cpu) / (time.monotonic() - wall)
    print("%-28s good client %s, missed %d; server CPU %.1f %% of a core" % (
        "baseline (no attack)", figures(baseline), missed, 100 * base_cpu))
    ok = True
    for name in args.attacks.split(","):
        results, ready = multiprocessing.Queue(), multiprocessing.Event()
        rss_before = server.rss_kib()
        attacker = multiprocessing.Process(target=_attack_process, args=(
            name, server.ws_port, http_port, args.seconds + SETUP_S, results, ready))
        attacker.start()
        await asyncio.to_thread(ready.wait, SETUP_S)  # its connections open: measured from here
        await asyncio.sleep(1.0)
        cpu, wall = server.cpu_seconds(), time.monotonic()
        peak = [server.rss_kib()]

        async def watch_rss():
            while attacker.is_alive():
                peak.append(server.rss_kib())
                await asyncio.sleep(0.2)
        watcher = asyncio.ensure_future(watch_rss())
        latencies, missed, health = await good.measure(
            root, args.seconds - 2.0, name, http_port if name == "half_sent_http" else None)
        share = (server.cpu_seconds() - cpu) / (time.monotonic() - wall) - base_cpu  # while the attack ran
        await asyncio.to_thread(attacker.join, args.seconds + 60)
        watcher.cancel()
        detail = results.get(timeout=60) if not results.empty() else ("?", "?")
        growth_mb = (max(peak) - rss_before) / 1024.0
        p99 = bench.percentile(latencies, 0.99) if latencies else float("inf")
        met = p99 <= 100 and missed == 0 and share <= 0.25 and good.disconnects == 0
        line = "%-28s good client %s, missed %d, disconnects %d; attacker's share %.1f %% of a core; RSS +%.1f MB " \
               "(attacker: %s, %s)" % (name, figures(latencies), missed, good.disconnects, 100 * share, growth_mb,
                                       detail[0], detail[1])
        if name == "half_sent_http":
            line += "; /healthz %s" % figures(health)
            met = met and bench.percentile(health, 0.99) <= 100
        if name == "unfinished_compressed":
            met = met and growth_mb <= 100
            line += "; RSS target <= 100 MB"
        print(line + ": " + bench.verdict(met), flush=True)
        ok = ok and met
    tracebacks = server.log_tail(10 ** 8).count("Traceback")
    print("tracebacks in the server's log: %d; RSS %d → %d KiB" % (tracebacks, rss_start, server.rss_kib()))
    server.stop()
    bench.shutil.rmtree(parent, ignore_errors=True)
    return ok and tracebacks == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--seconds", type=float, default=ATTACK_S)
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(run(args)) else 1)


if __name__ == "__main__":
    main()
