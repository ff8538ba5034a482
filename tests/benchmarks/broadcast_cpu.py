"""Benchmark: server CPU per (broadcast x recipient) at 1,000 clients, ours beside `websockets.broadcast()`.

    tests/.venv/bin/python tests/benchmarks/broadcast_cpu.py [--clients 1000] [--broadcasts 100] [--reps 5]
                                                           [--interval 0.025] [--size 1024]

Starts three server processes on loopback:
  A (ours)       madace_status.websocket.serve(on_connect=, on_message=, on_close=) wired to the real
                 madace_status.sync.clients.hub.Hub (trivial snapshot function, heartbeat not started); a broadcast is
                 `Hub.publish()`: one JSON serialisation and one frame, written to every subscriber;
  B (websockets) websockets.asyncio.server.serve(compression=None, ping_interval=None), a handler that waits for
                 the close, and a broadcast is json.dumps + `websockets.broadcast(connections, message)`;
  floor          the same connections as A, but a broadcast is one frame and a bare `socket.send()` per client:
                 what the kernel alone costs per recipient (loopback TCP send + waking the reader), the part no
                 Python-level change can remove;
and, for each, a separate client process holding CLIENTS lean raw-socket connections (tests/benchmarks/
_serve_bench.RawClient) that counts the broadcast messages. Each repetition (the order of the three rotates)
sends BROADCASTS messages of about SIZE bytes of JSON, INTERVAL s apart, waits until every
client has received every one (checked: a missing message fails the run), then reads the server process's
CPU (getrusage RUSAGE_SELF: user + system, everything the process did from the first broadcast until all were
delivered, i.e. including the event loop's socket writes). Prints per repetition and the medians: CPU µs per
(broadcast x recipient) for A, B and the floor, the ratio A/B (target ≤ 0.6, tests/benchmarks/README.md), the ratio of
what each spends above the floor, and the thread CPU spent inside the broadcast calls alone. Last, the same
broadcasts are run with every transport.write replaced by a no-op (no syscall) to show the Python-level cost
alone. Takes about 1 minute with the defaults on a quiet machine, 2 on a busy one (scale with --reps /
--broadcasts / --clients).
`--profile FILE.prof` adds one more repetition of A run under cProfile (not counted) and prints its top
functions.

`--deflate` measures permessage-deflate instead, with clients that offer it as Chromium does (they count frames,
never inflate): ours with plain clients, ours with deflate clients (each event compressed once per window size,
the same frame to every client), and `websockets` with its default compression (compressed once per client).
Targets: ours deflate ≤ 1.2 × ours plain, and ≤ 0.3 × websockets deflate.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _serve_bench as bench  # noqa: E402

TARGET_RATIO = 0.6
IMPLS = ("ours", "websockets", "floor")
DEFLATE_IMPLS = ("ours", "ours-deflate", "websockets-deflate")
DEFLATE_SERVER_IMPL = {"ours": "ours", "ours-deflate": "ours", "websockets-deflate": "websockets-deflate"}
DEFLATE_TARGET_VS_PLAIN = 1.2
DEFLATE_TARGET_VS_WEBSOCKETS = 0.3


def run(args):
    print(bench.machine_note())
    soft, hard = bench.raise_nofile(args.clients + 256)
    script = os.path.abspath(__file__)
    servers, client_procs = {}, {}
    try:
        for impl in IMPLS:
            extra = ["--profile", os.path.abspath(args.profile)] if args.profile and impl == "ours" else []
            servers[impl] = bench.LineProcess([script, "--role", "server", "--impl", impl] + extra)
            port = int(servers[impl].read("port")[0])
            client_procs[impl] = bench.LineProcess([script, "--role", "clients", "--port", str(port),
                                                    "--clients", str(args.clients)])
        for impl in IMPLS:
            opened, failed = [int(x) for x in client_procs[impl].read("ready")[:2]]
            held = int(servers[impl].ask("count", "count")[0])
            if opened != args.clients or held != args.clients:
                raise SystemExit("%s: %d of %d clients connected (%d failed), server sees %d"
                                 % (impl, opened, args.clients, failed, held))
        print("%d clients per server (separate client processes, raw sockets), %d broadcasts of ~%d B JSON, "
              "%.3f s apart, %d repetitions; RLIMIT_NOFILE %s/%s"
              % (args.clients, args.broadcasts, args.size, args.interval, args.reps, soft, hard))
        per_recipient = {impl: [] for impl in IMPLS}
        in_calls = {impl: [] for impl in IMPLS}
        ratios = []
        deliveries = args.broadcasts * args.clients
        for rep in range(args.reps):
            order = IMPLS[rep % 3:] + IMPLS[:rep % 3]
            row = {}
            for impl in order:
                client_procs[impl].ask("reset", "reset")
                calls = float(servers[impl].ask("bench %d %f %d" % (args.broadcasts, args.interval, args.size),
                                                "sent")[0])
                least, total = client_procs[impl].ask("wait %d 60" % args.broadcasts, "done")[:2]
                if int(least) != args.broadcasts or int(total) != deliveries:
                    raise SystemExit("%s: a client got %s of %d messages (total %s of %d)"
                                     % (impl, least, args.broadcasts, total, deliveries))
                cpu = float(servers[impl].ask("cpu", "cpu")[0])
                row[impl] = cpu
                per_recipient[impl].append(cpu / deliveries * 1e6)
                in_calls[impl].append(calls / deliveries * 1e6)
            ratio = row["ours"] / row["websockets"]
            ratios.append(ratio)
            print("rep %d: ours %.3f s CPU (%.2f us/recipient, %.2f in publish), websockets %.3f s (%.2f us, "
                  "%.2f in broadcast), floor %.2f us; ratio %.3f; all %d x %d delivered to each"
                  % (rep + 1, row["ours"], per_recipient["ours"][-1], in_calls["ours"][-1], row["websockets"],
                     per_recipient["websockets"][-1], in_calls["websockets"][-1], per_recipient["floor"][-1], ratio,
                     args.broadcasts, args.clients))
        ours, theirs = bench.median(per_recipient["ours"]), bench.median(per_recipient["websockets"])
        ratio = bench.median(ratios)
        print()
        print("RESULT server CPU per (broadcast x recipient), median of %d: ours %.2f us, websockets.broadcast() "
              "%.2f us; ratio ours/websockets %.3f (median of per-rep ratios; %.3f from the medians)"
              % (args.reps, ours, theirs, ratio, ours / theirs))
        floor = bench.median(per_recipient["floor"])
        print("  syscall floor (bare socket.send per recipient, same run) %.2f us: above it ours %.2f us, websockets "
              "%.2f us, ratio %.3f; best possible ours/websockets with one send() per recipient: %.3f"
              % (floor, ours - floor, theirs - floor, (ours - floor) / (theirs - floor), floor / theirs))
        print("  inside the broadcast call only (thread CPU): ours %.2f us, websockets %.2f us, ratio %.3f"
              % (bench.median(in_calls["ours"]), bench.median(in_calls["websockets"]),
                 bench.median(in_calls["ours"]) / bench.median(in_calls["websockets"])))
        dry = {impl: [] for impl in ("ours", "websockets")}
        for rep in range(args.reps):
            for impl in (("ours", "websockets") if rep % 2 == 0 else ("websockets", "ours")):
                seconds = float(servers[impl].ask("dry %d %d" % (args.broadcasts, args.size), "dry")[0])
                dry[impl].append(seconds / deliveries * 1e6)
        dry_ours, dry_theirs = bench.median(dry["ours"]), bench.median(dry["websockets"])
        print("  Python only (every transport.write a no-op, %d broadcasts back to back, median of %d): ours %.2f us, "
              "websockets %.2f us per recipient, ratio %.3f"
              % (args.broadcasts, args.reps, dry_ours, dry_theirs, dry_ours / dry_theirs))
        print("(end) " + bench.machine_note())
        print("target: ratio <= %.1f %s" % (TARGET_RATIO, bench.verdict(ratio <= TARGET_RATIO)))
        if args.profile:
            profile(args, servers, client_procs)
    finally:
        for process in list(client_procs.values()) + list(servers.values()):
            process.close()


def run_deflate(args):
    """`--deflate`: server CPU per recipient of ours plain, ours deflate and websockets deflate (same run)."""
    print(bench.machine_note())
    soft, hard = bench.raise_nofile(args.clients + 256)
    script = os.path.abspath(__file__)
    servers, client_procs = {}, {}
    try:
        for impl in DEFLATE_IMPLS:
            servers[impl] = bench.LineProcess([script, "--role", "server", "--impl", DEFLATE_SERVER_IMPL[impl]])
            port = int(servers[impl].read("port")[0])
            offer = ["--offer-deflate"] if impl != "ours" else []
            client_procs[impl] = bench.LineProcess([script, "--role", "clients", "--port", str(port),
                                                    "--clients", str(args.clients)] + offer)
        for impl in DEFLATE_IMPLS:
            opened = int(client_procs[impl].read("ready")[0])
            if opened != args.clients:
                raise SystemExit("%s: %d of %d clients connected" % (impl, opened, args.clients))
        print("%d clients per server, %d broadcasts of ~%d B JSON, %.3f s apart, %d repetitions; RLIMIT_NOFILE %s/%s"
              % (args.clients, args.broadcasts, args.size, args.interval, args.reps, soft, hard))
        per_recipient = {impl: [] for impl in DEFLATE_IMPLS}
        deliveries = args.broadcasts * args.clients
        for rep in range(args.reps):
            order = DEFLATE_IMPLS[rep % 3:] + DEFLATE_IMPLS[:rep % 3]
            for impl in order:
                client_procs[impl].ask("reset", "reset")
                servers[impl].ask("bench %d %f %d" % (args.broadcasts, args.interval, args.size), "sent")
                least, total = client_procs[impl].ask("wait %d 60" % args.broadcasts, "done")[:2]
                if int(least) != args.broadcasts or int(total) != deliveries:
                    raise SystemExit("%s: a client got %s of %d messages" % (impl, least, args.broadcasts))
                per_recipient[impl].append(float(servers[impl].ask("cpu", "cpu")[0]) / deliveries * 1e6)
            print("rep %d: %s" % (rep + 1, ", ".join("%s %.2f us/recipient" % (impl, per_recipient[impl][-1])
                                                       for impl in DEFLATE_IMPLS)))
        medians = {impl: bench.median(values) for impl, values in per_recipient.items()}
        vs_plain = medians["ours-deflate"] / medians["ours"]
        vs_websockets = medians["ours-deflate"] / medians["websockets-deflate"]
        print()
        print("RESULT server CPU per (broadcast x recipient), median of %d: ours plain %.2f us, ours deflate %.2f us, "
              "websockets deflate %.2f us; ours deflate / ours plain %.3f, ours deflate / websockets deflate %.3f"
              % (args.reps, medians["ours"], medians["ours-deflate"], medians["websockets-deflate"], vs_plain,
                 vs_websockets))
        print("(end) " + bench.machine_note())
        print("targets: <= %.1f x ours plain %s, <= %.1f x websockets deflate %s"
              % (DEFLATE_TARGET_VS_PLAIN, bench.verdict(vs_plain <= DEFLATE_TARGET_VS_PLAIN),
                 DEFLATE_TARGET_VS_WEBSOCKETS, bench.verdict(vs_websockets <= DEFLATE_TARGET_VS_WEBSOCKETS)))
    finally:
        for process in list(client_procs.values()) + list(servers.values()):
            process.close()


def profile(args, servers, client_procs):
    """One more repetition of A, its server under cProfile (enabled only around the broadcasts)."""
    import pstats
    servers["ours"].ask("profile on", "profile")
    client_procs["ours"].ask("reset", "reset")
    servers["ours"].ask("bench %d %f %d" % (args.broadcasts, args.interval, args.size), "sent")
    client_procs["ours"].ask("wait %d 60" % args.broadcasts, "done")
    print()
    print("cProfile of server A during %d broadcasts to %d clients (tottime order):" % (args.broadcasts, args.clients))
    stats = pstats.Stats(os.path.abspath(args.profile))
    stats.sort_stats("tottime").print_stats(12)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=100)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.025, help="seconds between broadcasts")
    parser.add_argument("--size", type=int, default=1024, help="bytes of JSON per message")
    parser.add_argument("--profile", metavar="FILE", help="also profile one repetition of ours into FILE")
    parser.add_argument("--deflate", action="store_true", help="measure permessage-deflate (see above)")
    parser.add_argument("--offer-deflate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--role", choices=("main", "server", "clients"), default="main", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        return bench.bench_server_main(args.impl, args.profile)
    if args.role == "clients":
        return bench.bench_clients_main(args.port, args.clients,
                                        offer=bench.DEFLATE_OFFER if args.offer_deflate else None)
    return run_deflate(args) if args.deflate else run(args)


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    if code is None and "--role" not in sys.argv:
        print("(%.0f s)" % (time.monotonic() - started))
    sys.exit(code)
