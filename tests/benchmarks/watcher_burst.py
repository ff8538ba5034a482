"""Benchmark: a burst of 1,000 writes to 100 state files in one second against a real `serve` (issue 11).

    tests/.venv/bin/python tests/benchmarks/watcher_burst.py [--files 100] [--writes 1000] [--seconds 1.0]
                                                           [--clients 5] [--rounds 3]

Copies tests/fixtures/sample-project, adds FILES state files, starts `python -m madace_status serve` on it (the
default watcher: inotify on Linux) and connects CLIENTS raw-socket clients (no compression) in this process.
Each round then writes WRITES times, evenly over SECONDS, to file `index % FILES` (in place and atomic rename
in turn), each write carrying its index as a marker; the last write to each file is the one the clients must
end up with. Each client keeps, per workflow, the marker of the last `state_updated` it received (a `snapshot`
counts too) and counts `invalid` states.

Prints per round: the convergence time (from the last write until every client shows the final marker of every
file), the `state_updated` events each client received (the coalescing: fewer than WRITES means bursts were
read once), the invalid states seen, and any (client, file) pair that never converged (LOST) within the
timeout. The exit status is 1 if anything was lost or any invalid state was seen. The same property is
tested (without figures) by tests/sync/test_sync_watcher.py.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _serve_bench as bench  # noqa: E402

CONVERGE_TIMEOUT_S = 30.0
PREFIX = "burst-"


class Replicas:
    """What each client has seen: per workflow, the marker of the last state it received."""

    def __init__(self, count):
        self.markers = [{} for _ in range(count)]
        self.events = [0] * count
        self.invalid = [0] * count

    def on_text(self, client, payload):
        message = json.loads(payload)
        kind, data, index = message.get("type"), message.get("data") or {}, client.tag
        if kind == "state_updated":
            self.events[index] += 1
            self._note(index, data.get("workflow") or {})
        elif kind == "snapshot":
            for workflow in data.get("workflows") or ():
                self._note(index, workflow)

    def _note(self, index, workflow):
        name = workflow.get("name") or workflow.get("workflow") or ""
        if not name.startswith(PREFIX):
            return
        if workflow.get("status") == "invalid":
            self.invalid[index] += 1
            return
        self.markers[index][name] = (workflow.get("context") or {}).get("burstMarker")

    def converged(self, final):
        return all(markers.get(name) == marker for markers in self.markers for name, marker in final.items())

    def lost(self, final):
        return sum(markers.get(name) != marker for markers in self.markers for name, marker in final.items())


async def burst(root, replicas, args, round_index):
    names = [PREFIX + "%03d" % index for index in range(args.files)]
    documents = {name: bench.schema_a_document(name, index) for index, name in enumerate(names)}
    final = {}
    started = time.monotonic()
    for index in range(args.writes):
        due = started + args.seconds * index / args.writes
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        name = names[index % args.files]
        marker = "r%d-%d" % (round_index, index)
        documents[name]["context"]["burstMarker"] = marker
        bench.write_json(bench.state_path(root, name), documents[name], atomic=index % 2 == 1)
        final[name] = marker
    last_write = time.monotonic()
    deadline = last_write + CONVERGE_TIMEOUT_S
    while not replicas.converged(final) and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    converged_at = time.monotonic()
    return final, last_write - started, (converged_at - last_write) * 1000


async def main_async(args):
    print(bench.machine_note())
    with tempfile.TemporaryDirectory(prefix="madace-bench-") as parent:
        root = bench.make_project(parent)
        for index in range(args.files):
            name = PREFIX + "%03d" % index
            bench.write_json(bench.state_path(root, name), bench.schema_a_document(name, index), atomic=True)
        with bench.ServeProcess(root) as server:
            replicas = Replicas(args.clients)
            clients, failures = await bench.open_raw_clients(server.ws_host, server.ws_port, args.clients,
                                                             replicas.on_text)
            if failures:
                raise SystemExit("%d clients failed to connect: %s" % (len(failures), failures[0]))
            await asyncio.sleep(0.5)  # the welcome and the snapshot
            print("serve pid %d, %d clients (raw sockets, this process), %d state files written %d times in %.1f s "
                  "per round (in place and atomic rename in turn), %d rounds"
                  % (server.pid, args.clients, args.files, args.writes, args.seconds, args.rounds))
            convergences, events, bad = [], [], 0
            for round_index in range(args.rounds):
                replicas.events = [0] * args.clients
                replicas.invalid = [0] * args.clients
                final, took, converge_ms = await burst(root, replicas, args, round_index)
                lost = replicas.lost(final)
                bad += lost + sum(replicas.invalid)
                convergences.append(converge_ms)
                events.append(bench.median(replicas.events))
                print("round %d: writes took %.2f s; converged %.1f ms after the last write; state_updated per "
                      "client %s (of %d writes); invalid %d; %s"
                      % (round_index + 1, took, converge_ms, "/".join(map(str, replicas.events)), args.writes,
                         sum(replicas.invalid), "LOST %d (client, file) pairs" % lost if lost else
                         "every client has every file's final content"))
                await asyncio.sleep(0.5)
            metrics = server.metrics()
            for client in clients:
                client.transport.abort()
    polls = metrics.get("madace_poll_duration_seconds_count", 0)
    print("server /metrics: %d polls, %d events" % (polls, metrics.get("madace_events_total", 0)))
    print("RESULT burst of %d writes to %d files in %.1f s, %d clients, median of %d rounds: converged %.1f ms "
          "after the last write, %.0f state_updated per client; %s"
          % (args.writes, args.files, args.seconds, args.clients, args.rounds, bench.median(convergences),
             bench.median(events), "no invalid state, nothing lost" if not bad else "%d FAILURES" % bad))
    print("(end) " + bench.machine_note())
    return 1 if bad else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=1.0, help="the burst's length")
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
