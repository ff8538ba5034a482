"""Soak: nothing stale, ever, under minutes of random file operations with many clients (README, "Live updates:
what is guaranteed"). Not part of the test command.

A real `serve` (subprocess, `--watcher` inotify or poll) on a copy of the sample project; CLIENTS `websockets`
clients in this process, each keeping a replica by `sync/replica.py`'s rules; a writer thread doing random
operations (in-place, truncate-then-write and atomic writes of state files, deletes, mass creates and deletes
past the large-directory threshold, the state directory removed, re-created or swapped for a symlink, the story
file rewritten or renamed over, epics added and removed) at RATE per second in bursts of random length. After
each burst the files are quiet and a settle check measures, from the end of the burst's last operation, the time
until every replica, `/api/status` and `/api/status/workflow/:name` equal a fresh read of the files; then it
waits SETTLE_STABLE_S more and checks that nothing moved (a late event would mean the first answer was wrong).
Only valid contents are written: a state file caught mid-write keeps its last good record for the grace period
(sources.INVALID_GRACE_S, 0.5 s) by design, which the stateful test covers.

Prints the number of operations and settle checks, settle p50 / p99 / max, divergences (a check that did not
settle within SETTLE_TIMEOUT_S), late events and the tracebacks in the server's log: targets are zero
divergences, zero tracebacks, and p99 <= 100 ms with inotify (poll: <= 2 poll periods + read time for
directories of up to 64 files; an idle file of a larger directory is checked in turns every 0.5 s).

    python tests/benchmarks/settle_soak.py                    # 10 minutes per backend, 50 clients
    python tests/benchmarks/settle_soak.py --minutes 1 --backends inotify
"""

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sync"))

import _serve_bench as bench  # noqa: E402
import settle_harness as harness  # noqa: E402
import websockets.asyncio.client  # noqa: E402

from madace_status.sync.replica import Replica, parse_message  # noqa: E402

CLIENTS = 50
RATE = 300  # operations per second within a burst
BURST_MAX_OPS = 120
SETTLE_TIMEOUT_S = 10.0
SETTLE_STABLE_S = 0.3
CHECK_EVERY_S = 0.002
SERVED = []  # per settle check: seconds until /api/status agreed (the server alone)
NAMES = ["alpha", "beta", "gamma", "delta", "pm-planning", "code-review", "route-workflow"]


class Clients:
    """CLIENTS websockets clients on one loop thread, each with its replica."""

    def __init__(self, ws_url, count):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.replicas = [Replica("/") for _ in range(count)]
        self.failures = []
        self.connections = asyncio.run_coroutine_threadsafe(self._open_all(ws_url), self.loop).result(60)

    async def _open_all(self, ws_url):
        connections = []
        for replica in self.replicas:
            connection = await websockets.asyncio.client.connect(ws_url + "?source=soak", max_size=None)
            connections.append(connection)
            self.loop.create_task(self._follow(connection, replica))
        return connections

    async def _follow(self, connection, replica):
        try:
            async for text in connection:
                message = parse_message(text)
                if message is not None:
                    try:
                        replica.receive(*message)
                    except Exception as error:  # noqa: BLE001 — reported as a failure of the run
                        self.failures.append(repr(error))
        except websockets.exceptions.ConnectionClosed as error:
            self.failures.append("connection closed: %s" % error)

    def positions(self):
        return asyncio.run_coroutine_threadsafe(self._positions(), self.loop).result(10)

    async def _positions(self):
        return [replica.last_seq for replica in self.replicas]

    def view(self, index):
        async def build():
            return harness.view_of(self.replicas[index].project())
        return asyncio.run_coroutine_threadsafe(build(), self.loop).result(10)

    def close(self):
        async def close_all():
            for connection in self.connections:
                await connection.close()
        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read().decode())


POLL_INTERVAL_S = 0.1  # serve's default --poll-interval, which the poll run uses
SLOW_SERVER_S = {"inotify": 0.1, "poll": 2 * POLL_INTERVAL_S + 0.05}  # slower checks print what came before
READS = []  # seconds each fresh read of the files took (the "read time" of the poll target)
RECENT = []  # the last few operations (printed with a slow check)


def random_operation(tree, rng):
    """One operation, chosen by weight: mostly state-file writes, as a workflow engine makes them."""
    roll = rng.random()
    name = rng.choice(NAMES)
    mode = rng.choice(harness.WRITE_MODES)
    RECENT.append("%.3f %s %s" % (roll, name, mode))
    del RECENT[:-6]
    if roll < 0.55:
        tree.write_state(name, harness.workflow_document(name, rng.choice(["pending", "in_progress", "completed",
                                                                           "failed"]), rng.randint(0, 6),
                                                         rng.randint(0, 6), rng.choice("AB")), mode)
    elif roll < 0.65:
        tree.delete_state(name)
    elif roll < 0.80:
        tree.write_stories(harness.story_board(rng.randint(0, 50), rng.randint(0, 40)), mode)
    elif roll < 0.90:
        epic_id = rng.choice(["EPIC-MAM", "EPIC-S1", "EPIC-S2"])
        if rng.random() < 0.3:
            tree.remove_epic(epic_id)
        else:
            tree.write_epic(epic_id, rng.randint(0, 30), mode)
    elif roll < 0.94:
        tree.mass_create(rng.randint(65, 200), prefix=rng.choice(["bulk", "batch"]))
    elif roll < 0.97:
        tree.mass_delete()
    elif roll < 0.985:
        tree.recreate_state_dir(rng.sample(NAMES, 2))
    elif roll < 0.993:
        tree.swap_state_dir_for_symlink(outside=rng.random() < 0.3)
    else:
        tree.remove_state_dir()


def disagreement(server, clients, expected, served_at):
    """None when /api/status and every replica show `expected`. `served_at` (a one-item list) gets the time
    /api/status first agreed, so the server's own settle time is told apart from the clients'."""
    status = get_json(server.http_url + "/api/status")
    found = harness.first_difference(expected["summary"], status["data"])
    if found:
        return "/api/status: " + found
    if not served_at:
        served_at.append(time.monotonic())
    sync = get_json(server.http_url + "/api/sync")
    positions = clients.positions()
    if any(position != sync["seq"] for position in positions):
        return "replicas at seq %s, server at %d" % (sorted(set(map(str, positions))), sync["seq"])
    found = harness.first_difference(expected, clients.view(0))
    if found:
        return "replica 0: " + found
    return None


def settle_check(server, clients, root, last_op_done, slow_s):
    """Seconds from `last_op_done` until every view agrees (None: not within SETTLE_TIMEOUT_S), and whether
    anything moved in the SETTLE_STABLE_S after that."""
    started = time.monotonic()
    expected = harness.fresh_view(root)
    READS.append(time.monotonic() - started)
    deadline = last_op_done + SETTLE_TIMEOUT_S
    served_at = []
    while True:
        problem = disagreement(server, clients, expected, served_at)
        if problem is None:
            settled = time.monotonic() - last_op_done
            break
        if time.monotonic() > deadline:
            print("  DIVERGENCE: %s" % problem, flush=True)
            return None, False
        time.sleep(CHECK_EVERY_S)
    SERVED.append(served_at[0] - last_op_done)
    if SERVED[-1] > slow_s:
        print("  slow: the server took %.0f ms after %s" % (1000 * SERVED[-1], RECENT), flush=True)
    seq = get_json(server.http_url + "/api/sync")["seq"]
    time.sleep(SETTLE_STABLE_S)
    late = get_json(server.http_url + "/api/sync")["seq"] != seq
    for index in range(1, len(clients.replicas)):  # all applied the same events: each must show the same
        found = harness.first_difference(expected, clients.view(index))
        if found:
            print("  DIVERGENCE (replica %d): %s" % (index, found), flush=True)
            return None, late
    for workflow in expected["workflows"][:5]:
        entity = get_json(server.http_url + "/api/status/workflow/%s" % workflow["name"])
        if entity["result"]["data"] != workflow:
            print("  DIVERGENCE (/api/status/workflow/%s)" % workflow["name"], flush=True)
            return None, late
    return settled, late


def soak(backend, minutes, clients_count, seed):
    rng = random.Random(seed)
    parent = bench.tempfile.mkdtemp(prefix="soak-")
    tree = harness.ProjectTree.copy_of_sample(os.path.join(parent, "project"))
    server = bench.ServeProcess(tree.root, poll_interval=POLL_INTERVAL_S, extra_args=["--watcher", backend],
                                log_level="info")
    clients = Clients(server.ws_url, clients_count)
    operations = checks = divergences = late_events = 0
    settle_times = []
    cpu_before = server.cpu_seconds()
    try:
        end = time.monotonic() + minutes * 60
        while time.monotonic() < end:
            for _ in range(rng.randint(1, BURST_MAX_OPS)):
                random_operation(tree, rng)
                operations += 1
                time.sleep(rng.expovariate(RATE))
            settled, late = settle_check(server, clients, tree.root, time.monotonic(), SLOW_SERVER_S[backend])
            checks += 1
            late_events += late
            if settled is None:
                divergences += 1
            else:
                settle_times.append(settled)
        cpu = server.cpu_seconds() - cpu_before
        log = server.log_tail(10 ** 7)
    finally:
        clients.close()
        server.stop()
        tree.cleanup()
        bench.shutil.rmtree(parent, ignore_errors=True)
    tracebacks = log.count("Traceback (most recent call last)")
    print("%s: %d operations, %d settle checks, %d clients; server CPU %.1f s" % (
        backend, operations, checks, clients_count, cpu))
    if settle_times:
        print("  every replica too (%d Python clients on the same cores): p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
            clients_count,
            1000 * bench.median(settle_times), 1000 * bench.percentile(settle_times, 0.99),
            1000 * max(settle_times)))
    served, SERVED[:] = list(SERVED), []
    if served:
        print("  the served state (/api/status): p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
            1000 * bench.median(served), 1000 * bench.percentile(served, 0.99), 1000 * max(served)))
    print("  divergences %d, late events %d, tracebacks in the log %d, client failures %d" % (
        divergences, late_events, tracebacks, len(clients.failures)))
    for failure in clients.failures[:5]:
        print("  client failure: %s" % failure)
    clean = divergences == 0 and tracebacks == 0
    if backend == "inotify" and served:
        print("  target (the served state) p99 <= 100 ms, zero divergences, zero tracebacks: %s" % bench.verdict(
            bench.percentile(served, 0.99) <= 0.1 and clean))
    elif backend == "poll" and served:
        bound = 2 * POLL_INTERVAL_S + bench.median(READS)
        print("  target (the served state) p99 <= 2 poll periods + a read (%.0f ms here), zero divergences, zero "
              "tracebacks: %s" % (1000 * bound, bench.verdict(bench.percentile(served, 0.99) <= bound and clean)))
    del READS[:]
    return divergences == 0 and tracebacks == 0 and not clients.failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--backends", default="inotify,poll")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    bench.raise_nofile(4096)
    print(bench.machine_note())
    ok = True
    for backend in args.backends.split(","):
        ok = soak(backend, args.minutes, args.clients, args.seed) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
