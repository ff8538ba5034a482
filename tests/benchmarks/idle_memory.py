"""Benchmark: resident memory per idle WebSocket connection, ours beside a `websockets` server (target in
tests/benchmarks/README.md).

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

`--deflate`: the clients of serve-deflate, ours-deflate and websockets-deflate offer permessage-deflate (as
Chromium does; `websockets` with its default compression keeps a compressor and an inflater per connection).
Targets: ours deflate ≤ 2 × ours plain (serve and bare alike), and ≤ 0.3 × websockets deflate.
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
HELPER_IMPL = {"ours-bare": "ours", "websockets": "websockets", "websockets-ka": "websockets-keepalive",
               "ours-deflate": "ours", "websockets-deflate": "websockets-deflate"}
DEFLATE_SERVERS = ("serve", "serve-deflate", "ours-bare", "ours-deflate", "websockets-deflate")
DEFLATE_CLIENTS = frozenset(("serve-deflate", "ours-deflate", "websockets-deflate"))  # offer permessage-deflate
DEFLATE_TARGET_VS_PLAIN = 2.0
DEFLATE_TARGET_VS_WEBSOCKETS = 0.3


def connect(script, port, count, offer=False):
    clients = bench.LineProcess([script, "--role", "clients", "--port", str(port), "--connections", str(count)]
                                + (["--offer-deflate"] if offer else []))
    opened, failed = [int(x) for x in clients.read("ready")[:2]]
    if opened != count:
        clients.close()
        raise SystemExit("only %d of %d connections opened (%d failed)" % (opened, count, failed))
    return clients


def measure_serve(script, args, parent, offer=False):
    root = bench.make_project(tempfile.mkdtemp(dir=parent))
    with bench.ServeProcess(root) as server:
        time.sleep(0.5)
        warm = connect(script, server.ws_port, args.warmup, offer)
        try:
            time.sleep(args.settle)
            before = server.rss_kib()
            clients = connect(script, server.ws_port, args.connections, offer)
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


def measure_helper(script, args, impl, offer=False):
    server = bench.LineProcess([script, "--role", "server", "--impl", impl])
    try:
        port = int(server.read("port")[0])
        warm = connect(script, port, args.warmup, offer)
        try:
            time.sleep(args.settle)
            before = int(server.ask("rss", "rss")[0])
            clients = connect(script, port, args.connections, offer)
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
    servers = DEFLATE_SERVERS if args.deflate else SERVERS
    per_connection = {name: [] for name in servers}
    with tempfile.TemporaryDirectory(prefix="madace-bench-") as parent:
        for rep in range(args.reps):
            cells = []
            order = servers if rep % 2 == 0 else servers[::-1]
            for name in order:
                offer = name in DEFLATE_CLIENTS
                if name.startswith("serve"):
                    before, after = measure_serve(script, args, parent, offer)
                else:
                    before, after = measure_helper(script, args, HELPER_IMPL[name], offer)
                kib = (after - before) / args.connections
                per_connection[name].append(kib)
                cells.append("%s %d -> %d KiB = %.2f KiB/conn" % (name, before, after, kib))
            print("rep %d: %s" % (rep + 1, "; ".join(cells)))
    medians = {name: bench.median(values) for name, values in per_connection.items()}
    if args.deflate:
        return report_deflate(args, medians)
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


def report_deflate(args, medians):
    print()
    print("RESULT RSS per idle connection, median of %d: %s" % (args.reps, ", ".join(
        "%s %.2f KiB" % (name, medians[name]) for name in DEFLATE_SERVERS)))
    vs_plain = max(medians["serve-deflate"] / medians["serve"], medians["ours-deflate"] / medians["ours-bare"])
    vs_websockets = max(medians["serve-deflate"], medians["ours-deflate"]) / medians["websockets-deflate"]
    print("  deflate / plain: serve %.3f, bare %.3f; ours deflate / websockets deflate: serve %.3f, bare %.3f"
          % (medians["serve-deflate"] / medians["serve"], medians["ours-deflate"] / medians["ours-bare"],
             medians["serve-deflate"] / medians["websockets-deflate"],
             medians["ours-deflate"] / medians["websockets-deflate"]))
    print("(end) " + bench.machine_note())
    print("targets (the worse of serve and bare): <= %.0f x plain %s, <= %.1f x websockets deflate %s"
          % (DEFLATE_TARGET_VS_PLAIN, bench.verdict(vs_plain <= DEFLATE_TARGET_VS_PLAIN),
             DEFLATE_TARGET_VS_WEBSOCKETS, bench.verdict(vs_websockets <= DEFLATE_TARGET_VS_WEBSOCKETS)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to wait before each RSS reading")
    parser.add_argument("--deflate", action="store_true", help="measure permessage-deflate (see above)")
    parser.add_argument("--offer-deflate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--role", choices=("main", "server", "clients"), default="main", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        return bench.bench_server_main(args.impl)
    if args.role == "clients":
        return bench.bench_clients_main(args.port, args.connections,
                                        offer=bench.DEFLATE_OFFER if args.offer_deflate else None)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
