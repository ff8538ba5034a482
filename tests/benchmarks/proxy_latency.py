"""Benchmark: file write → `state_updated` at the LAST of N clients of one real `serve`, connected directly and
through the shipped nginx server block over TLS (README, "Behind a reverse proxy"; target in
tests/benchmarks/README.md: through nginx + TLS, 1,000 clients, p50 within 1.5× the direct figure of the same run).

    tests/.venv/bin/python tests/benchmarks/proxy_latency.py [--clients 1000] [--writes 30] [--rounds 2]
                                                             [--client-procs 2] [--spacing 0.2]

One `serve --one-port --base-path /madace --trust-proxy 127.0.0.1` on a copy of the sample project (default poll
interval, inotify), Debian's nginx from `python -m madace_status.deploy nginx` with a certificate made by openssl.
The rounds alternate: N raw-socket clients (_fanout_bench's bare epoll clients, in --client-procs processes)
straight to the server's port, then N through nginx over TLS (the same clients on TLS sockets, decrypted by
OpenSSL in C; nginx has one worker); each
round makes WRITES writes of the workflow state file, one at a time, each waited for at every client. The latency
of a write is the latest arrival over every client (CLOCK_MONOTONIC, one clock for every process) minus the time
just before the write. Prints per round and the median over rounds: p50 and p90 of that latency, and the ratio of
the nginx p50 to the direct p50, per round and overall. nginx runs with `worker_processes auto` (Debian's default)
in a main configuration of the test's own around the shipped server block.
"""

import argparse
import os
import random
import ssl
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # tests/: proxies.py

import _fanout_bench as fanout  # noqa: E402
import _serve_bench as bench  # noqa: E402
from proxies import BASE_PATH, Nginx, free_port, make_certificate, proxied_serve_flags, shipped_config  # noqa: E402

TARGET_RATIO = 1.5
WAIT_TIMEOUT_S = 10.0
WORKFLOW = "pm-planning"


def clients_role(args):
    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    fanout.clients_main(args.port, args.count, args.path, context)


def measure_round(name, port, path, cafile, args, root, rng):
    per_process = args.clients // args.client_procs
    argv = [os.path.abspath(__file__), "--role", "clients", "--port", str(port), "--count", str(per_process),
            "--path", path] + (["--cafile", cafile] if cafile else [])
    helpers = [bench.LineProcess(argv) for _ in range(args.client_procs)]
    try:
        started = time.monotonic()
        for helper in helpers:
            opened, failed = helper.read("ready")
            if int(failed):
                raise RuntimeError("%s: %s clients failed to connect" % (name, failed))
        connect_s = time.monotonic() - started
        time.sleep(1.0)  # the welcomes and snapshots are out of the way
        latencies = []
        for index in range(args.writes):
            for helper in helpers:
                helper.ask("reset", "reset")
            marker = "%s-%d-%d" % (name, index, rng.randrange(1 << 30))
            document = bench.schema_a_document(WORKFLOW, index, marker)
            before = time.monotonic()
            bench.write_json(bench.state_path(root, WORKFLOW), document, atomic=index % 2 == 1)
            last = 0.0
            for helper in helpers:
                received, last_at, _ = helper.ask("wait %g" % WAIT_TIMEOUT_S, "done")
                if int(received) < per_process:
                    raise RuntimeError("%s: %d clients missed write %d" % (name, per_process - int(received), index))
                last = max(last, float(last_at))
            latencies.append((last - before) * 1000)
            time.sleep(args.spacing * rng.uniform(0.8, 1.2))
        return latencies, connect_s
    finally:
        for helper in helpers:
            helper.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", default="main")
    parser.add_argument("--port", type=int)
    parser.add_argument("--count", type=int)
    parser.add_argument("--path")
    parser.add_argument("--cafile")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--spacing", type=float, default=0.2)
    args = parser.parse_args()
    if args.role == "clients":
        return clients_role(args)
    bench.raise_nofile(1 << 16)
    print(bench.machine_note())
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as scratch:
        root = bench.make_project(scratch)
        cert, key = make_certificate(scratch)
        server = bench.ServeProcess(root, extra_args=proxied_serve_flags())
        nginx = None
        try:
            http_port = int(server.http_url.rsplit(":", 1)[1])
            nginx_port = free_port()
            directory = os.path.join(scratch, "nginx")
            os.makedirs(directory)
            nginx = Nginx(directory, shipped_config("nginx", LISTEN="127.0.0.1:%d" % nginx_port, CERT=cert, KEY=key,
                                                    UPSTREAM="127.0.0.1:%d" % http_port), nginx_port)
            results = {"direct": [], "nginx+TLS": []}
            for round_index in range(args.rounds):
                for name, port, cafile in (("direct", http_port, None), ("nginx+TLS", nginx_port, cert)):
                    latencies, connect_s = measure_round(name, port, BASE_PATH + "/ws", cafile, args, root, rng)
                    p50, p90 = bench.percentile(latencies, 0.5), bench.percentile(latencies, 0.9)
                    results[name].append(p50)
                    print("round %d %-9s %d clients (connected in %.1f s): write -> last client p50 %.1f ms, "
                          "p90 %.1f ms" % (round_index + 1, name, args.clients, connect_s, p50, p90), flush=True)
            direct, proxied = bench.median(results["direct"]), bench.median(results["nginx+TLS"])
            ratio = proxied / direct
            # Each round's pair ran back to back: their ratio is less exposed to the machine's drift.
            pair_ratios = [p / d for d, p in zip(results["direct"], results["nginx+TLS"])]
            print("median over %d rounds: direct p50 %.1f ms, nginx+TLS p50 %.1f ms, ratio %.2fx; per-round ratios "
                  "%s, median %.2fx (target <= %.1fx) %s"
                  % (args.rounds, direct, proxied, ratio, " ".join("%.2f" % r for r in pair_ratios),
                     bench.median(pair_ratios), TARGET_RATIO, bench.verdict(bench.median(pair_ratios) <= TARGET_RATIO)))
        finally:
            if nginx is not None:
                nginx.stop()
            server.stop()


if __name__ == "__main__":
    main()
