"""Benchmark: wall time of `madace-status status --format json` on a large generated project.

    python tests/benchmarks/status_cli.py [--runs N] [--check] [--keep]

Generates a project with 1,000 stories, 200 workflow state files (schemas A and B) and 50 epics in a
temporary directory, then runs the command as a subprocess repeatedly and prints the median wall time
beside `python -c pass` measured in the same run (the interpreter's own start-up). The target
(tests/benchmarks/README.md) is a median of at most 150 ms. Two modes are measured: with a bytecode cache (as an
installed package runs; the cache goes to a temporary PYTHONPYCACHEPREFIX, never into the checkout) and without one
(every module compiled from source on each run). `--check` exits 1 when the cached median misses the target.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET_MS = 150.0
STORIES = 1000
WORKFLOWS = 200
EPICS = 50
STATES = ("BACKLOG", "TODO", "IN PROGRESS", "DONE")


def generate(root, stories=STORIES, workflows=WORKFLOWS, epic_count=EPICS):
    """Write the generated project under `root` (the sizes are parameters so other benchmarks reuse it)."""
    states = os.path.join(root, "madace-data", "workflow-states")
    epics = os.path.join(root, "docs", "v3-planning", "epics")
    os.makedirs(states)
    os.makedirs(epics)
    for i in range(workflows):
        name = "workflow-%03d" % i
        if i % 2:
            total = 3 + i % 7
            current = 1 + i % total
            document = {"workflow": name, "currentStep": current, "totalSteps": total,
                        "status": ("in_progress", "completed", "failed", "pending")[i % 4],
                        "startedAt": "2026-11-20T10:00:00.000Z", "lastUpdated": "2026-11-20T10:%02d:00.000Z" % (i % 60),
                        "steps": [{"id": "step-%d" % s, "status": "completed" if s < current - 1 else "pending",
                                   "startedAt": "2026-11-20T10:00:00.000Z"} for s in range(total)],
                        "context": {"projectName": "Bench", "index": i}}
        else:
            document = {"workflowName": name, "currentStep": i % 6, "completed": i % 10 == 0,
                        "variables": {"project_name": "Bench", "_TOTAL_STEPS": 6},
                        "startedAt": "2026-11-20T10:00:00.000Z", "updatedAt": "2026-11-20T10:30:00.000Z",
                        "childWorkflows": [{"workflowPath": "w/child/workflow.yaml", "stateFile": ".child.state.json",
                                            "status": "running", "startedAt": "2026-11-20T10:00:00.000Z"}]}
        with open(os.path.join(states, ".%s.state.json" % name), "w") as handle:
            json.dump(document, handle, indent=2)
    lines = ["# MAM Workflow Status", "", "**Project:** Bench", ""]
    forms = ("- [ ] **[STORY-B-%04d]** Story number %d | %d points | @dev%d | Due: 2026-12-%02d",
             "- **[STORY-B-%04d]** Story number %d (2026-11-%02d) [Points: %d]",
             "- [STORY-B-%04d] Story number %d [Points: %d]",
             "- ✅ [STORY-B-%04d] Story number %d (%d points) - **DONE**")
    per_state = {"BACKLOG": stories - 502, "TODO": 1, "IN PROGRESS": 1, "DONE": 500}
    number = 0
    for state in STATES:
        lines.extend(["", "## " + state, ""])
        for k in range(per_state[state]):
            if state == "BACKLOG" and k % 50 == 0:
                lines.extend(["", "### Milestone %d: Group %d" % (k // 50, k // 50), ""])
            form = forms[number % 4]
            if number % 4 == 0:
                lines.append(form % (number, number, 1 + number % 8, number % 9, 1 + number % 28))
            elif number % 4 == 1:
                lines.append(form % (number, number, 1 + number % 28, 1 + number % 8))
                lines.append("  **Status:** working on it")
            else:
                lines.append(form % (number, number, 1 + number % 8))
            number += 1
    with open(os.path.join(root, "docs", "workflow-status.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    for i in range(epic_count):
        with open(os.path.join(epics, "EPIC-B-%03d-generated-epic.md" % i), "w", encoding="utf-8") as handle:
            handle.write("# EPIC-B-%03d: Generated epic %d\n\n**Priority:** P%d (x)\n**Effort Estimate:** %d points\n"
                         "**Target Quarter:** Q%d 2026\n**Owner:** Team %d\n**Status:** 🔄 In Progress\n"
                         "**Last Updated:** 2026-11-22\n\n## Summary\n\nEpic %d does things.\n\n## User Stories\n\n"
                         % (i, i, i % 3, 5 + i, 1 + i % 4, i, i)
                         + "".join("### US-%03d-%d: Story\n" % (i, s) for s in range(5)))


def measure(argv, runs, env):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        completed = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        times.append((time.perf_counter() - start) * 1000.0)
        if completed.returncode != 0:
            raise SystemExit("benchmark command failed (%d): %s" % (completed.returncode,
                                                                    completed.stderr.decode(errors="replace")))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="measured runs per command (default 21)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the cached median exceeds the target")
    parser.add_argument("--keep", action="store_true", help="keep the generated project (to profile it)")
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="madace-status-bench-")
    try:
        root = os.path.join(workdir, "project")
        generate(root)
        status = [sys.executable, "-m", "madace_status", "status", "--format", "json", "--root", root]
        baseline = [sys.executable, "-c", "pass"]
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("MADACE_STATUS_")}
        base_env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + base_env["PYTHONPATH"] if base_env.get("PYTHONPATH") else "")
        cached = dict(base_env, PYTHONPYCACHEPREFIX=os.path.join(workdir, "pycache"))
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        uncached = dict(base_env, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=os.path.join(workdir, "none"))
        output = subprocess.run(status, env=cached, stdout=subprocess.PIPE, check=True).stdout
        summary = json.loads(output.decode("utf-8"))["data"]
        print("project: %d stories, %d workflows, %d epics (%s)" % (
            summary["total"]["count"], summary["workflowCount"], summary["epicCount"], root))
        print("python: %s %s" % (sys.implementation.name, sys.version.split()[0]))
        measure(status, 2, cached)          # warm the bytecode cache and the page cache
        measure(baseline, 2, cached)
        rows = []
        for label, env in (("bytecode cached", cached), ("no bytecode cache", uncached)):
            status_ms = statistics.median(measure(status, args.runs, env))
            pass_ms = statistics.median(measure(baseline, args.runs, env))
            rows.append((label, status_ms, pass_ms))
            print("%-18s status --format json: median %6.1f ms | python -c pass: median %5.1f ms | "
                  "difference %6.1f ms | target %.0f ms" % (label, status_ms, pass_ms, status_ms - pass_ms, TARGET_MS))
        if args.check and rows[0][1] > TARGET_MS:
            print("FAIL: median %.1f ms exceeds %.0f ms" % (rows[0][1], TARGET_MS))
            return 1
        return 0
    finally:
        if args.keep:
            print("kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
