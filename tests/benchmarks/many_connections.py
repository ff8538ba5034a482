"""Benchmark: 10,000 WebSocket connections held by a real `serve`, then one file write reaching all (target in
tests/benchmarks/README.md).

    tests/.venv/bin/python tests/benchmarks/many_connections.py [--connections 10000] [--processes 4]
                                                              [--writes 5] [--spacing 2]

Copies tests/fixtures/sample-project to a temporary directory and starts `python -m madace_status serve` on it (default
poll interval 0.1 s, log level warning). CONNECTIONS connections are opened from PROCESSES client processes
(lean raw-socket clients, tests/benchmarks/_serve_bench.RawClient; each answers pings and reads the welcome
and the snapshot). Then, WRITES times, SPACING s apart, `.pm-planning.state.json` is rewritten (atomic rename,
alternating with in-place) and the time from just before the write until the resulting `state_updated` has
been received on every one of the connections is measured (`time.monotonic()`, the same clock in every
process). Prints the connect time, the server's RSS and CPU, and per write the time to the first client and
to the last; then the medians over the writes. The reference measured in the same run is the first client's
time (the watcher's poll phase plus the reload: what a lone client would see); last − first is the cost of
the fan-out to every connection. Target: last ≤ 2 s (tests/benchmarks/README.md).

Needs RLIMIT_NOFILE above CONNECTIONS in the server process (this script raises the soft limit and the server
inherits it); when the hard limit is too low it says so and runs the largest count it allows. Takes about
30 s with the defaults. `--profile-connect N` instead runs the real SyncService in this process under cProfile
while a client process opens N connections, and prints the top functions (the cost of accepting a client).
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _serve_bench as bench  # noqa: E402

TARGET_S = 2.0
WORKFLOW = "pm-planning"
FD_MARGIN = 200  # the server's own files, sockets and pipes


def run(args):
    print(bench.machine_note())
    wanted = args.connections
    soft, hard = bench.raise_nofile(max(20000, wanted + FD_MARGIN))
    if soft < wanted + FD_MARGIN:
        largest = max(0, soft - FD_MARGIN)
        print("RLIMIT_NOFILE is %s (hard %s): too low for %d connections in the server process (needs >= %d); "
              "running the largest count it allows: %d" % (soft, hard, wanted, wanted + FD_MARGIN, largest))
        wanted = largest
    else:
        print("RLIMIT_NOFILE %s/%s (>= %d needed by the server; every client process raises its own)"
              % (soft, hard, wanted + FD_MARGIN))
    script = os.path.abspath(__file__)
    shares = [wanted // args.processes + (1 if i < wanted % args.processes else 0) for i in range(args.processes)]
    with tempfile.TemporaryDirectory(prefix="madace-bench-") as parent:
        root = bench.make_project(parent)
        path = bench.state_path(root, WORKFLOW)
        with open(path) as handle:
            document = json.load(handle)
        with bench.ServeProcess(root) as server:
            rss_idle = server.rss_kib()
            cpu_idle = server.cpu_seconds()
            started = time.monotonic()
            clients = [bench.LineProcess([script, "--role", "clients", "--port", str(server.ws_port),
                                          "--connections", str(share)]) for share in shares]
            try:
                opened = failed = 0
                errors = []
                for process in clients:
                    words = process.read("ready")
                    opened += int(words[0])
                    failed += int(words[1])
                    if len(words) > 2:
                        errors.append(words[2])
                connect_s = time.monotonic() - started
                connect_cpu = server.cpu_seconds() - cpu_idle
                held = 0
                deadline = time.monotonic() + 30
                while held != opened and time.monotonic() < deadline:
                    held = int(server.metrics().get("madace_connections", 0))
                    time.sleep(0.2)
                print("serve pid %d: %d connections held (%d failed%s) from %d client processes %s, opened in %.1f s "
                      "(%.0f/s; server CPU %.2f ms per connection: handshake, welcome, snapshot); server RSS %d KiB "
                      "idle "
                      "-> %d KiB (%.2f KiB/connection)"
                      % (server.pid, held, failed, ": " + errors[0] if errors else "", args.processes, shares,
                         connect_s, opened / connect_s, connect_cpu * 1000 / max(1, opened), rss_idle, server.rss_kib(),
                         (server.rss_kib() - rss_idle) / max(1, opened)))
                if opened == 0:
                    raise SystemExit("no connection could be opened")
                lasts, firsts = [], []
                for write_index in range(args.writes):
                    time.sleep(args.spacing)
                    for process in clients:
                        process.ask("reset", "reset")
                    document["context"]["benchMarker"] = "many-%d" % write_index
                    document["lastUpdated"] = "2026-11-20T12:00:%02d.000Z" % (write_index % 60)
                    cpu_before = server.cpu_seconds()
                    written_at = time.monotonic()
                    bench.write_json(path, document, atomic=write_index % 2 == 0)
                    last = first = None
                    reached = 0
                    for process in clients:
                        least, total, last_at, first_at = process.ask("wait 1 30", "done")
                        reached += int(total)
                        if int(least) < 1:
                            print("  write %d: a client process did not get the event within 30 s" % (write_index + 1))
                        last = max(last or 0.0, float(last_at))
                        first = min(first or float("inf"), float(first_at))
                    cpu = server.cpu_seconds() - cpu_before
                    lasts.append(last - written_at)
                    firsts.append(first - written_at)
                    print("write %d (%s): first client %.0f ms, all %d of %d connections %.0f ms; server CPU %.2f s"
                          % (write_index + 1, "atomic" if write_index % 2 == 0 else "in place",
                             firsts[-1] * 1000, reached, opened, lasts[-1] * 1000, cpu))
                metrics = server.metrics()
                broadcasts = metrics.get("madace_broadcast_duration_seconds_count", 0)
                print("server /metrics: %d events, mean broadcast (publish loop) %.1f ms, dropped %d, messages sent %d"
                      % (broadcasts,
                         1000 * metrics.get("madace_broadcast_duration_seconds_sum", 0) / max(1, broadcasts),
                         metrics.get("madace_events_dropped_total", 0), metrics.get("madace_messages_sent_total", 0)))
            finally:
                for process in clients:
                    process.close()
    last, first = bench.median(lasts), bench.median(firsts)
    print()
    print("RESULT %d connections: write -> event at all of them, median of %d writes: %.3f s (%.2f x target %.0f s); "
          "first client %.3f s; worst write %.3f s"
          % (opened, len(lasts), last, last / TARGET_S, TARGET_S, first, max(lasts)))
    print("(end) " + bench.machine_note())
    print("target: %d connections held, one event reaching all within %.0f s: %s"
          % (args.connections, TARGET_S, bench.verdict(opened >= args.connections and held >= args.connections
                                                       and last <= TARGET_S)))


def profile_connect(args):
    """The real SyncService in this process under cProfile while a client process opens N connections."""
    import asyncio
    import cProfile
    import pstats
    from madace_status.project.loader import ProjectPaths
    from madace_status.sync.service import SyncService
    bench.raise_nofile(args.profile_connect + FD_MARGIN)
    script = os.path.abspath(__file__)

    async def run(root):
        service = SyncService(ProjectPaths(root=root), host="127.0.0.1", ws_port=0)
        await service.start()
        loop = asyncio.get_running_loop()
        profiler = cProfile.Profile()
        cpu = time.process_time()
        profiler.enable()
        clients = bench.LineProcess([script, "--role", "clients", "--port", str(service.bound_port),
                                     "--connections", str(args.profile_connect)])
        try:
            words = await loop.run_in_executor(None, clients.read, "ready")
            profiler.disable()
            cpu = time.process_time() - cpu
        finally:
            clients.close()
            await service.stop()
        return profiler, int(words[0]), cpu

    with tempfile.TemporaryDirectory(prefix="madace-bench-") as parent:
        profiler, opened, cpu = asyncio.run(run(bench.make_project(parent)))
    print("SyncService in-process under cProfile: %d connections opened, %.2f ms CPU per connection (profiled, "
          "this process: handshake, welcome, snapshot)" % (opened, 1000 * cpu / max(1, opened)))
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--spacing", type=float, default=2.0, help="seconds between writes")
    parser.add_argument("--profile-connect", type=int, metavar="N", default=0,
                        help="instead: profile the sync service in-process while N connections open")
    parser.add_argument("--role", choices=("main", "clients"), default="main", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "clients":
        return bench.bench_clients_main(args.port, args.connections, concurrency=100)
    if args.profile_connect:
        return profile_connect(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
