"""Benchmark: CPU of an idle `serve` watching 1,000 workflow state files (target: ≤ 3 % of one core).

    tests/.venv/bin/python tests/benchmarks/watcher_cpu.py [--files 1000] [--seconds 20] [--windows 5]
                                                         [--no-fast]

Builds a temporary project: a copy of tests/fixtures/sample-project plus generated schema-A state files up to FILES
state files in madace-data/workflow-states/ (none of them changes during the run). Starts
`python -m madace_status serve` on it with no client, waits for start-up, then reads the process's utime+stime
from /proc/<pid>/stat (every thread: the asyncio loop with the watcher, and the idle HTTP thread) over SECONDS,
split into WINDOWS equal windows, and prints the median window and the whole span as % of one core, with the
server's own /metrics figures (polls done, mean wall time per poll, µs per watched file).

Configurations, one after the other in the same run:
  1,000 files, default poll interval (0.1 s)   — the target's case;
  the sample project alone (5 files), 0.1 s      — the reference: what an idle serve costs without the files;
  1,000 files, --poll-interval 0.05              — unless --no-fast.
Takes about 75 s with the defaults (about 50 s with --no-fast).

`--profile N` instead runs the real SyncService in this process on the 1,000-file project (started on a free
loopback port, no client), calls its `poll_once()` N times under cProfile and prints the top functions and the
mean CPU per poll; then K polls (`--profile-changes`) that each follow a rewrite of one state file.
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _serve_bench as bench  # noqa: E402

TARGET_PERCENT = 3.0
STARTUP_SETTLE_S = 2.0


def build_project(parent, files):
    root = bench.make_project(parent)
    directory = os.path.join(root, bench.STATE_DIR)
    existing = len([name for name in os.listdir(directory) if name.endswith(".state.json")])
    for index in range(max(0, files - existing)):
        name = "idle-%04d" % index
        with open(bench.state_path(root, name), "w") as handle:
            json.dump(bench.schema_a_document(name, index), handle, indent=2)
    return root, len([name for name in os.listdir(directory) if name.endswith(".state.json")])


def measure(root, poll_interval, seconds, windows):
    with bench.ServeProcess(root, poll_interval=poll_interval) as server:
        time.sleep(STARTUP_SETTLE_S)
        metrics_before = server.metrics()
        percents = []
        started_cpu = server.cpu_seconds()
        started = time.monotonic()
        for _ in range(windows):
            window_cpu = server.cpu_seconds()
            window_start = time.monotonic()
            time.sleep(seconds / windows)
            percents.append(100 * (server.cpu_seconds() - window_cpu) / (time.monotonic() - window_start))
        total = 100 * (server.cpu_seconds() - started_cpu) / (time.monotonic() - started)
        metrics_after = server.metrics()
    polls = metrics_after["madace_poll_duration_seconds_count"] - metrics_before["madace_poll_duration_seconds_count"]
    poll_s = metrics_after["madace_poll_duration_seconds_sum"] - metrics_before["madace_poll_duration_seconds_sum"]
    events = metrics_after.get("madace_events_total", 0)
    return {"median": bench.median(percents), "total": total, "windows": percents, "polls": polls,
            "poll_ms": 1000 * poll_s / polls if polls else float("nan"), "events": events,
            "rate": polls / seconds}


def report(label, files, result):
    print("%-34s %5.2f %% of one core (median of %d windows: %s; whole span %.2f %%); %d polls (%.1f/s), "
          "mean poll %.2f ms wall = %.2f us per file; %d events"
          % (label, result["median"], len(result["windows"]), " ".join("%.2f" % p for p in result["windows"]),
             result["total"], result["polls"], result["rate"], result["poll_ms"],
             1000 * result["poll_ms"] / max(1, files), result["events"]))


def profile(args):
    import asyncio
    import cProfile
    import pstats
    from madace_status.project.loader import ProjectPaths
    from madace_status.sync.service import SyncService

    async def run(root):
        service = SyncService(ProjectPaths(root=root), host="127.0.0.1", ws_port=0)
        await service.start()
        try:
            for _ in range(10):
                service.poll_once()
            profiler = cProfile.Profile()
            started = time.process_time()
            profiler.enable()
            for _ in range(args.profile):
                service.poll_once()
            profiler.disable()
            cpu = time.process_time() - started
            plain_started = time.process_time()
            for _ in range(args.profile):
                service.poll_once()
            plain = time.process_time() - plain_started
            # One state file rewritten before each poll: what a change costs (reload, diff, publish).
            changed_profiler = cProfile.Profile()
            path = bench.state_path(root, "idle-0000")
            changed_cpu = 0.0
            for index in range(args.profile_changes):
                bench.write_json(path, bench.schema_a_document("idle-0000", index, marker=index), atomic=False)
                started = time.process_time()
                changed_profiler.enable()
                service.poll_once()
                changed_profiler.disable()
                changed_cpu += time.process_time() - started
            changed_plain = 0.0
            for index in range(args.profile_changes):
                bench.write_json(path, bench.schema_a_document("idle-0000", index, marker=-index), atomic=True)
                started = time.process_time()
                service.poll_once()
                changed_plain += time.process_time() - started
        finally:
            await service.stop()
        return profiler, cpu, plain, changed_profiler, changed_cpu, changed_plain

    with tempfile.TemporaryDirectory(prefix="madace-bench-") as parent:
        root, files = build_project(os.path.join(parent, "big"), args.files)
        profiler, cpu, plain, changed_profiler, changed_cpu, changed_plain = asyncio.run(run(root))
    print("SyncService.poll_once() on %d idle state files, %d polls: %.2f ms CPU per poll without the profiler "
          "(= %.1f %% of one core at 10 polls/s), %.2f ms under cProfile"
          % (files, args.profile, 1000 * plain / args.profile, 100 * plain / args.profile * 10,
             1000 * cpu / args.profile))
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    print("poll_once() after one of the %d state files was rewritten, %d times: %.1f ms CPU per poll without the "
          "profiler, %.1f ms under cProfile"
          % (files, args.profile_changes, 1000 * changed_plain / args.profile_changes,
             1000 * changed_cpu / args.profile_changes))
    pstats.Stats(changed_profiler).sort_stats("cumulative").print_stats(14)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured span per configuration")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--no-fast", action="store_true", help="skip the 0.05 s poll interval")
    parser.add_argument("--profile", type=int, metavar="N", default=0,
                        help="profile N in-process polls of the real SyncService instead")
    parser.add_argument("--profile-changes", type=int, metavar="K", default=10,
                        help="with --profile: then K polls that each follow a one-file write")
    args = parser.parse_args()
    if args.profile:
        return profile(args)
    with tempfile.TemporaryDirectory(prefix="madace-bench-") as parent:
        root, files = build_project(os.path.join(parent, "big"), args.files)
        sample_root, sample_files = build_project(os.path.join(parent, "sample"), 0)
        print(bench.machine_note())
        print("idle serve, no client, CPU from /proc/<pid>/stat (clock tick %d Hz), %.0f s per configuration"
              % (bench.CLK_TCK, args.seconds))
        main_result = measure(root, None, args.seconds, args.windows)
        report("%d files, poll 0.1 s (default):" % files, files, main_result)
        reference = measure(sample_root, None, args.seconds, args.windows)
        report("%d files (sample), poll 0.1 s:" % sample_files, sample_files, reference)
        fast = None
        if not args.no_fast:
            fast = measure(root, 0.05, args.seconds, args.windows)
            report("%d files, poll 0.05 s:" % files, files, fast)
    print()
    value = main_result["median"]
    print("RESULT %d idle state files, default poll 0.1 s: %.2f %% of one core (%.2f x target %.0f %%); "
          "%.2f %% above the 5-file reference (%.2f %%)%s"
          % (files, value, value / TARGET_PERCENT, TARGET_PERCENT, value - reference["median"], reference["median"],
             "; at 0.05 s: %.2f %%" % fast["median"] if fast else ""))
    print("(end) " + bench.machine_note())
    print("target: <= %.0f %% %s" % (TARGET_PERCENT, bench.verdict(value <= TARGET_PERCENT)))


if __name__ == "__main__":
    sys.exit(main())
