"""Benchmark: the flow history read from git (README, "Flow history"): a repository of 1,000 commits of a
500-story status file (one story moved per commit), read cold (no cache) and warm (every commit cached), on this
machine. Targets: cold ≤ 3 s, warm ≤ 100 ms.

    tests/.venv/bin/python tests/benchmarks/history_git.py [--commits 1000] [--stories 500] [--runs 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from madace_status.sync.history.git import GitBackfill  # noqa: E402

STATES = ("BACKLOG", "TODO", "IN PROGRESS", "DONE")


def status_text(stories, moved):
    """The status file with the first `moved` stories in DONE, the rest in BACKLOG."""
    sections = {state: [] for state in STATES}
    for index in range(stories):
        state = "DONE" if index < moved else "BACKLOG"
        sections[state].append("- [ ] **[STORY-%04d]** Story number %d | %d points | @dev%d"
                               % (index, index, index % 8 + 1, index % 5))
    return "# Status\n\n" + "".join("## %s\n\n%s\n\n" % (state, "\n".join(lines)) for state, lines in sections.items())


def build_repository(root, commits, stories):
    """`commits` commits of docs/workflow-status.md through git fast-import (seconds, not minutes)."""
    subprocess.run(["git", "init", "-q", "-b", "main", root], check=True)
    stream = []
    for number in range(commits):
        data = status_text(stories, number % stories).encode()
        message = b"move %d" % number
        stream.append(b"commit refs/heads/main\n")
        stream.append(b"committer Bench <bench@example.com> %d +0000\n" % (1767225600 + number * 3600))
        stream.append(b"data %d\n%s\n" % (len(message), message))
        stream.append(b"M 100644 inline docs/workflow-status.md\ndata %d\n%s\n" % (len(data), data))
    subprocess.run(["git", "-C", root, "fast-import", "--quiet"], input=b"".join(stream), check=True)
    subprocess.run(["git", "-C", root, "checkout", "-q", "main"], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--stories", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = os.path.join(directory, "project")
        started = time.perf_counter()
        build_repository(root, args.commits, args.stories)
        print("built %d commits of a %d-story file in %.1f s" % (args.commits, args.stories,
                                                                 time.perf_counter() - started))
        status_file = os.path.join(root, "docs", "workflow-status.md")
        cold, warm = [], []
        for run in range(args.runs):
            cache = os.path.join(directory, "cache-%d" % run)
            for times, label in ((cold, "cold"), (warm, "warm")):
                backfill = GitBackfill(root, status_file, cache)
                started = time.perf_counter()
                samples = backfill.samples()
                times.append(time.perf_counter() - started)
                assert len(samples) == args.commits and not backfill.warnings, (len(samples), backfill.warnings)
        print("cold (every version read and parsed): median %.2f s (runs: %s)"
              % (statistics.median(cold), ", ".join("%.2f" % t for t in cold)))
        print("warm (every commit cached):           median %.0f ms (runs: %s)"
              % (statistics.median(warm) * 1000, ", ".join("%.0f" % (t * 1000) for t in warm)))
        print("targets: cold <= 3 s %s, warm <= 100 ms %s" % (
            "MET" if statistics.median(cold) <= 3 else "MISSED", "MET" if statistics.median(warm) <= 0.1 else "MISSED"))


if __name__ == "__main__":
    main()
