"""Benchmark: resident memory per idle WebSocket connection, ours beside a `websockets` server (SPEC §9).

    tests/.venv/bin/python tests/benchmarks/idle_memory.py [--connections 2000] [--reps 3] [--warmup 50]

Every repetition starts fresh server processes, one at a time, and measures each the same way: WARMUP
connections first (so one-time allocations — imports, the first snapshot, the loop's selector — are in
the baseline), VmRSS read from /proc/<pid>/status, then CONNECTIONS more idle connections from a separate client
process (lean raw sockets, tests/benchmarks/_serve_bench.RawClient), a pause for the server to settle, and
VmRSS again. KiB per connection = (after − before) / CONNECTIONS. The servers:
  serve          the real `python -m madace_status serve` on a copy of tests/fixtures/sample-project (default poll
                 interval): our WebSocket server, the Hub with its per-client state, the watcher — every client
                 also got the welcome and a full snapshot (RSS read without a gc: it is another program);
  ours-bare      madace_status.websocket.serve(on_connect=...) with the real Hub and a trivial snapshot
                 (gc.collect() before each reading);
  websockets     websockets.asyncio.server.serve(compression=None, ping_interval=None), a handler awaiting
                 wait_closed() (gc before each reading) — keepalive off, its leanest configuration;
  websockets-ka  the same with the default keepalive (ping_interval=20: one more task per connection).
Prints per repetition and the medians: KiB per connection for each and the ratios ours / websockets (the
reference is `websockets`, keepalive off). Targets: ≤ 8 KiB per connection and ≤ 0.5 × websockets.
Takes about 1 minute with the defaults.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _serve_bench as bench  # noqa: E402

TARGET_KIB = 8.0
TARGET_RATIO = 0.5
SERVERS = ("serve", "ours-bare", "websockets", "websockets-ka")
HELPER_IMPL = {"ours-bare": "ours", "websockets": "websockets", "websockets-ka": "websockets-keepalive"}


def connect(script, port, count):
    clients = bench.LineProcess([script, "--role", "clients", "--port", str(port), "--connections", str(count)])
    opened, failed = [int(x) for x in clients.read("ready")[:2]]
    if opened != count:
        clients.close()
        raise SystemExit("only %d of %d connections opened (%d failed)" % (opened, count, failed))
    return clients


def measure_serve(script, args, parent):
    root = bench.make_project(tempfile.mkdtemp(dir=parent))
    with bench.ServeProcess(root) as server:
        time.sleep(0.5)
        warm = connect(script, server.ws_port, args.warmup)
        try:
            time.sleep(args.settle)
            before = server.rss_kib()
            clients = connect(script, server.ws_port, args.connections)
            try:
                deadline = time.monotonic() + 30
                while server.metrics().get("madace_connections") != args.warmup + args.connections:
                    if time.monotonic() > deadline:
                        raise SystemExit("serve does not count every connection")
                    time.sleep(0.1)
                time.sleep(args.settle)
                after = server.rss_kib()
            finally:
                clients.close()
        finally:
            warm.close()
    return before, after


def measure_helper(script, args, impl):
    server = bench.LineProcess([script, "--role", "server", "--impl", impl])
    try:
        port = int(server.read("port")[0])
        warm = connect(script, port, args.warmup)
        try:
            time.sleep(args.settle)
            before = int(server.ask("rss", "rss")[0])
            clients = connect(script, port, args.connections)
            try:
                deadline = time.monotonic() + 30
                while int(server.ask("count", "count")[0]) != args.warmup + args.connections:
                    if time.monotonic() > deadline:
                        raise SystemExit("%s does not count every connection" % impl)
                    time.sleep(0.1)
                time.sleep(args.settle)
                after = int(server.ask("rss", "rss")[0])
            finally:
                clients.close()
        finally:
            warm.close()
    finally:
        server.close()
    return before, after


def run(args):
    print(bench.machine_note())
    soft, hard = bench.raise_nofile(args.connections + args.warmup + 256)
    script = os.path.abspath(__file__)
    print("%d idle connections (+%d warm-up) per server, %d repetitions, fresh processes each time; "
          "RLIMIT_NOFILE %s/%s" % (args.connections, args.warmup, args.reps, soft, hard))
    per_connection = {name: [] for name in SERVERS}
    with tempfile.TemporaryDirectory(prefix="madace-bench-") as parent:
        for rep in range(args.reps):
            cells = []
            order = SERVERS if rep % 2 == 0 else SERVERS[::-1]
            for name in order:
                if name == "serve":
                    before, after = measure_serve(script, args, parent)
                else:
                    before, after = measure_helper(script, args, HELPER_IMPL[name])
                kib = (after - before) / args.connections
                per_connection[name].append(kib)
                cells.append("%s %d -> %d KiB = %.2f KiB/conn" % (name, before, after, kib))
            print("rep %d: %s" % (rep + 1, "; ".join(cells)))
    medians = {name: bench.median(values) for name, values in per_connection.items()}
    reference = medians["websockets"]
    print()
    print("RESULT RSS per idle connection, median of %d: %s" % (args.reps, ", ".join(
        "%s %.2f KiB" % (name, medians[name]) for name in SERVERS)))
    print("  ratios to websockets (keepalive off): serve %.3f, ours-bare %.3f; to websockets-ka: serve %.3f"
          % (medians["serve"] / reference, medians["ours-bare"] / reference,
             medians["serve"] / medians["websockets-ka"]))
    ours = medians["serve"]
    print("(end) " + bench.machine_note())
    print("targets (real serve): <= %.0f KiB %s (%.2f x target), <= %.1f x websockets %s"
          % (TARGET_KIB, bench.verdict(ours <= TARGET_KIB), ours / TARGET_KIB, TARGET_RATIO,
             bench.verdict(ours / reference <= TARGET_RATIO)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to wait before each RSS reading")
    parser.add_argument("--role", choices=("main", "server", "clients"), default="main", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        return bench.bench_server_main(args.impl)
    if args.role == "clients":
        return bench.bench_clients_main(args.port, args.connections)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
