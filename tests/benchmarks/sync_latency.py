"""Benchmark: file write → `state_updated` received by WebSocket clients of a real `serve` (target in
tests/benchmarks/README.md).

    [MADACE_STATUS_WATCHER=poll] tests/.venv/bin/python tests/benchmarks/sync_latency.py [--clients 100] [--writes 50] [--rounds 3]
                                                          [--spacing 0.3] [--poll-interval S]
    tests/.venv/bin/python tests/benchmarks/sync_latency.py --clients 1 [...]      the 1-client figures
    tests/.venv/bin/python tests/benchmarks/sync_latency.py --clients 1000 [--writes 30] [--client-procs 2]

Up to IN_PROCESS_MAX_CLIENTS clients (the default mode, described below) the clients are the package's own, in
this process. Above that (`--mode fanout`, the default for 1,000 clients) see _fanout_bench.py: raw-socket
clients in `--client-procs` processes per server, the latency of each write to the LAST client, and the
reference — a `websockets` server with a naive 0.1 s poller of a file, 1,000 clients too — in the same run,
with the ratio of the two p50s (issue 11: ≤ 25 ms and ≤ 0.35×).

Copies tests/fixtures/sample-project to a temporary directory, starts `python -m madace_status serve` on it as a
subprocess with the DEFAULT poll interval (0.1 s; `--poll-interval` passes another one), and connects the
clients with the package's own client (`madace_status.websocket.connect`, callback mode, all in this
process). Each round then rewrites `.pm-planning.state.json` WRITES times, about SPACING s apart (random
jitter of ±1/6 so the writes land at every phase of the poll cycle), alternating an in-place write (truncate +
write) and an atomic write (temp file + rename), each carrying a unique marker. For every (write, client) pair
the latency is the time from just before the write to the matching `state_updated` arriving at that client
(`time.monotonic()` on both sides, taken when the frame is handed to `on_message`).

Prints, per round and as the median over rounds: p50 / p99 over all (write, client) pairs, and the
distribution of the per-write maximum (the time until the LAST client had the event). The reference measured
in the same run is (a) the poll-phase floor — a change waits on average half a poll interval before the
watcher can see it, so p50 cannot be below about interval/2 — and (b) the JSON ping → pong round trip
of the same 100 clients through the same server (transport + hub, no watcher). Ratios are printed against the
the targets (p50 ≤ 60 ms, p99 ≤ 150 ms). Takes about 1 minute with the defaults. `--extra-files N` adds N
idle state files to the project (the target is for the sample project alone).
"""

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _fanout_bench as fanout  # noqa: E402
import _floor_bench as floor_bench  # noqa: E402
import _serve_bench as bench  # noqa: E402

from madace_status.websocket import connect  # noqa: E402

TARGET_P50_MS = 60.0
TARGET_P99_MS = 150.0
ONE_CLIENT_P50_MS = 3.0  # issue 11, with an event backend
ONE_CLIENT_P99_MS = 10.0
DEFAULT_POLL_S = 0.1
SLOW_WRITE_MS = 8.0  # a write → event slower than this is listed with the time its own write call took
WORKFLOW = "pm-planning"
FANOUT_DEFAULT_WRITES = 30  # per server, in fanout mode
IN_PROCESS_MAX_CLIENTS = 100  # more clients than this in one Python loop would measure the client, not the server


class Clients:
    def __init__(self):
        self.sockets = []
        self.welcomed = []  # messages received per client
        self.events = []  # per client: [(monotonic, message)]
        self.pongs = []  # per client: [(monotonic, message)]

    def callback(self, index):
        events, pongs, welcomed = self.events[index], self.pongs[index], self.welcomed

        def on_message(_websocket, message):
            now = time.monotonic()
            head = message[:32]
            if '"state_updated"' in head:
                events.append((now, message))
            elif '"pong"' in head:
                pongs.append((now, message))
            else:
                welcomed[index] += 1
        return on_message

    async def open(self, url, count):
        for index in range(count):
            self.events.append([])
            self.pongs.append([])
            self.welcomed.append(0)
        sockets = await asyncio.gather(*(connect(url + "?source=bench", on_message=self.callback(index))
                                         for index in range(count)))
        self.sockets = list(sockets)
        deadline = time.monotonic() + 20
        while min(self.welcomed) < 2:  # the welcome ping and the snapshot
            if time.monotonic() > deadline:
                raise RuntimeError("not every client got its welcome and snapshot")
            await asyncio.sleep(0.01)
        gc.freeze()  # the measuring side's full collections must not land in the latencies either


async def ping_reference(clients, rounds=20):
    """JSON ping → pong round trip of every client at once (transport + hub, no watcher), in ms."""
    rtts = []
    for round_index in range(rounds):
        for pongs in clients.pongs:
            pongs.clear()
        sent = []
        for websocket in clients.sockets:
            sent.append(time.monotonic())
            websocket.send(json.dumps({"type": "ping", "timestamp": round_index}))
        deadline = time.monotonic() + 5
        while any(not pongs for pongs in clients.pongs) and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        for started, pongs in zip(sent, clients.pongs):
            if pongs:
                rtts.append((pongs[0][0] - started) * 1000)
        await asyncio.sleep(0.05)
    return rtts


async def run_round(clients, root, round_index, writes, spacing, rng, floor=None):
    """One round of WRITES writes; with `floor` (its file, its FloorClient) each write is followed, half a
    spacing later, by the same write to the floor relay's file. Returns (written, latencies per client,
    missing, the floor's latencies in ms)."""
    path = bench.state_path(root, WORKFLOW)
    with open(path) as handle:
        document = json.load(handle)
    for events in clients.events:
        events.clear()
    written = {}  # marker → (monotonic before the write, atomic?, ms the write call itself took)
    floor_written = {}  # marker → monotonic before the floor's write
    for write_index in range(writes):
        await asyncio.sleep(spacing * rng.uniform(5 / 6, 7 / 6) / (2 if floor else 1))
        marker = "r%d-w%d" % (round_index, write_index)
        document["context"]["benchMarker"] = marker
        document["lastUpdated"] = "2026-11-20T11:%02d:%02d.000Z" % (write_index // 60 % 60, write_index % 60)
        atomic = write_index % 2 == 1
        started = time.monotonic()
        bench.write_json(path, document, atomic)
        written[marker] = (started, atomic, (time.monotonic() - started) * 1000)
        if floor:
            await asyncio.sleep(spacing * rng.uniform(5 / 6, 7 / 6) / 2)
            floor_written[marker] = time.monotonic()
            bench.write_json(floor[0], document, atomic)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(len(events) >= writes for events in clients.events):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # anything late
    latencies = {marker: [] for marker in written}  # marker → [ms per client]
    missing = 0
    for events in clients.events:
        seen = {}
        for received, message in events:
            data = json.loads(message)["data"]
            marker = data["workflow"]["context"].get("benchMarker")
            if marker in written and marker not in seen:
                seen[marker] = (received - written[marker][0]) * 1000
        for marker in written:
            if marker in seen:
                latencies[marker].append(seen[marker])
            else:
                missing += 1
    floor_latencies = [(floor[1].received[marker] - started) * 1000 for marker, started in floor_written.items()
                       if marker in floor[1].received] if floor else []
    return written, latencies, missing, floor_latencies


def summarise(written, latencies):
    pairs = [value for values in latencies.values() for value in values]
    per_write_max = [max(values) for values in latencies.values() if values]
    spreads = [max(values) - min(values) for values in latencies.values() if values]
    by_kind = {False: [], True: []}
    for marker, values in latencies.items():
        by_kind[written[marker][1]].extend(values)
    # The slow writes beside the time of the writer's own write call: both slow at once points at the machine
    # (the writer was held up too), not at the watcher.
    write_calls = [written[marker][2] for marker in written]
    slow = sorted((max(values), written[marker][2]) for marker, values in latencies.items()
                  if values and max(values) > SLOW_WRITE_MS)
    return {"write_call_p50": bench.median(write_calls), "slow": slow,
            "p50": bench.percentile(pairs, 0.5), "p99": bench.percentile(pairs, 0.99), "max": max(pairs),
            "write_max_p50": bench.median(per_write_max), "write_max_max": max(per_write_max),
            "per_write_max": per_write_max, "pairs": len(pairs), "spread_p50": bench.median(spreads),
            "first_p50": bench.median([min(values) for values in latencies.values() if values]),
            "inplace_p50": bench.percentile(by_kind[False], 0.5), "atomic_p50": bench.percentile(by_kind[True], 0.5)}


async def main_async(args):
    rng = random.Random(args.seed)
    print(bench.machine_note())
    with tempfile.TemporaryDirectory(prefix="madace-bench-") as parent:
        root = bench.make_project(parent)
        for index in range(args.extra_files):
            name = "idle-%04d" % index
            with open(bench.state_path(root, name), "w") as handle:
                json.dump(bench.schema_a_document(name, index), handle, indent=2)
        with bench.ServeProcess(root, poll_interval=args.poll_interval) as server:
            interval = args.poll_interval if args.poll_interval is not None else DEFAULT_POLL_S
            print("serve pid %d on %s, poll interval %s s (%s), %d clients (madace_status.websocket.connect), "
                  "%d rounds x %d writes ~%.2f s apart, alternating in-place / atomic rename; %d state files"
                  % (server.pid, server.ws_url, interval,
                     "default" if args.poll_interval is None else "--poll-interval",
                     args.clients, args.rounds, args.writes, args.spacing,
                     len([name for name in os.listdir(os.path.dirname(bench.state_path(root, WORKFLOW)))
                          if name.endswith(".state.json")])))
            clients = Clients()
            await clients.open(server.ws_url, args.clients)
            rtts = await ping_reference(clients)
            floor = await open_floor(parent) if args.floor else None
            results, floor_rounds = [], []
            total_missing = 0
            for round_index in range(args.rounds):
                written, latencies, missing, floor_latencies = await run_round(
                    clients, root, round_index, args.writes, args.spacing, rng, floor and floor[:2])
                total_missing += missing
                summary = summarise(written, latencies)
                results.append(summary)
                print("round %d: %d pairs, p50 %.1f ms, p99 %.1f ms, max %.1f ms | per-write max: median %.1f ms, "
                      "worst %.1f ms | first client - last client per write: median %.1f ms | p50 in-place %.1f ms, "
                      "atomic %.1f ms%s"
                      % (round_index + 1, summary["pairs"], summary["p50"], summary["p99"], summary["max"],
                         summary["write_max_p50"], summary["write_max_max"], summary["spread_p50"],
                         summary["inplace_p50"], summary["atomic_p50"], ", %d MISSING" % missing if missing else ""))
                print("  per-write max (ms): " + " ".join("%.0f" % value for value in summary["per_write_max"]))
                print("  the writer's own write call: median %.2f ms; writes over %.0f ms → (their write call): %s"
                      % (summary["write_call_p50"], SLOW_WRITE_MS, ", ".join(
                          "%.1f (%.1f)" % pair for pair in summary["slow"]) or "none"))
                if floor:
                    floor_rounds.append(floor_latencies)
                    print("  floor, same round: %d of %d writes relayed, p50 %.1f ms, p99 %.1f ms, max %.1f ms"
                          % (len(floor_latencies), args.writes, bench.percentile(floor_latencies, 0.5),
                             bench.percentile(floor_latencies, 0.99), max(floor_latencies)))
            metrics = server.metrics()
            if floor:
                floor[1].close()
                floor[2].close()
            for websocket in clients.sockets:
                websocket.start_close()
            await asyncio.gather(*(websocket.wait_closed() for websocket in clients.sockets))

    p50 = bench.median([r["p50"] for r in results])
    p99 = bench.median([r["p99"] for r in results])
    write_max = bench.median([r["write_max_p50"] for r in results])
    ping_p50, ping_p99 = bench.percentile(rtts, 0.5), bench.percentile(rtts, 0.99)
    floor = interval * 1000 / 2
    polls = metrics.get("madace_poll_duration_seconds_count", 0)
    poll_ms = 1000 * metrics.get("madace_poll_duration_seconds_sum", 0) / polls if polls else float("nan")
    broadcasts = metrics.get("madace_broadcast_duration_seconds_count", 0)
    broadcast_ms = (1000 * metrics.get("madace_broadcast_duration_seconds_sum", 0) / broadcasts
                    if broadcasts else float("nan"))
    print()
    print("reference, same run: JSON ping -> pong at %d clients: p50 %.2f ms, p99 %.2f ms; poll-phase floor "
          "(interval/2) %.0f ms" % (args.clients, ping_p50, ping_p99, floor))
    print("server /metrics: mean poll %.2f ms over %d polls, mean broadcast %.2f ms over %d events"
          % (poll_ms, polls, broadcast_ms, broadcasts))
    if floor_rounds:
        floor_p50 = bench.median([bench.percentile(r, 0.5) for r in floor_rounds])
        floor_p99 = bench.median([bench.percentile(r, 0.99) for r in floor_rounds])
        print("floor, same run (a bare inotify -> read -> TCP relay, see _floor_bench.py), median of %d rounds: "
              "p50 %.1f ms, p99 %.1f ms; serve / floor: p50 %.2f x, p99 %.2f x"
              % (len(floor_rounds), floor_p50, floor_p99, p50 / floor_p50, p99 / floor_p99))
    print("RESULT write -> state_updated at every client, median of %d rounds: p50 %.1f ms (%.2f x target %.0f, "
          "%.2f x poll floor), p99 %.1f ms (%.2f x target %.0f); per-write max median %.1f ms%s"
          % (args.rounds, p50, p50 / TARGET_P50_MS, TARGET_P50_MS, p50 / floor, p99, p99 / TARGET_P99_MS,
             TARGET_P99_MS, write_max, "; %d (write, client) pairs MISSING" % total_missing if total_missing else ""))
    print("(end) " + bench.machine_note())
    print("targets: p50 <= %.0f ms %s, p99 <= %.0f ms %s" % (TARGET_P50_MS, bench.verdict(p50 <= TARGET_P50_MS),
                                                             TARGET_P99_MS, bench.verdict(p99 <= TARGET_P99_MS)))
    if args.clients == 1:
        print("issue 11 targets, 1 client: p50 <= %.0f ms %s, p99 <= %.0f ms %s"
              % (ONE_CLIENT_P50_MS, bench.verdict(p50 <= ONE_CLIENT_P50_MS), ONE_CLIENT_P99_MS,
                 bench.verdict(p99 <= ONE_CLIENT_P99_MS)))
    return 0 if not total_missing else 1


async def open_floor(parent):
    """(its file, a connected FloorClient, its process): the floor relay of _floor_bench.py, Linux only."""
    if not sys.platform.startswith("linux"):
        return None
    directory = os.path.join(parent, "floor")
    os.mkdir(directory)
    path = os.path.join(directory, "floor.json")
    process = bench.LineProcess([os.path.abspath(__file__), "--role", "floor", "--file", path])
    client = floor_bench.FloorClient()
    await client.open(int(process.read("port")[0]))
    return path, client, process


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--writes", type=int, default=50, help="writes per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spacing", type=float, default=0.3, help="mean seconds between writes")
    parser.add_argument("--poll-interval", type=float, default=None, help="passed to serve (default: its own, 0.1)")
    parser.add_argument("--extra-files", type=int, default=0,
                        help="idle state files added to the project (the watched file is one of many)")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--mode", choices=("auto", "in-process", "fanout"), default="auto",
                        help="auto: in-process up to %d clients, else fanout" % IN_PROCESS_MAX_CLIENTS)
    parser.add_argument("--client-procs", type=int, default=2, help="fanout: client processes per server")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the floors: in-process mode, the bare relay's writes (_floor_bench.py); "
                             "fanout mode, the websockets + inotify server (_fanout_bench.py)")
    parser.add_argument("--role", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "floor":
        return floor_bench.relay_main(args.file)
    if args.role in ("reference", "reference-inotify"):
        return fanout.reference_main(args.file, inotify=args.role == "reference-inotify")
    if args.role == "fanout-clients":
        return fanout.clients_main(args.port, args.clients)
    if args.mode == "fanout" or (args.mode == "auto" and args.clients > IN_PROCESS_MAX_CLIENTS):
        if args.writes == parser.get_default("writes"):
            args.writes = FANOUT_DEFAULT_WRITES
        return fanout.run(args, os.path.abspath(__file__))
    bench.raise_nofile(args.clients * 2 + 256)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
