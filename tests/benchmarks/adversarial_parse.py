"""Parse time per MB of adversarial input (issue 10 §5), for each markdown/JSON parser.

Each hostile line is a long run of one character class that used to make a regex backtrack (spaces, dashes,
symbols, `*`, `[`, digits, `@`, emoji), placed where the parsers look at it (story item, epic field, heading).
It prints seconds per MB at n and 4n characters and the ratio (≈4 linear; ≈16 quadratic).

    python tests/benchmarks/adversarial_parse.py [--kb 64] [--before]

`--before` also times the parsers as they were at `main` (read with `git show`), on 10 KB and 20 KB lines
only, with a per-case timeout, since they were quadratic.
"""
import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from madace_status.project import epics, stories, workflows  # noqa: E402

RUNS = {"spaces": " ", "dashes": "-", "symbols": "!#", "stars": "*", "brackets": "[", "digits": "7",
        "ats": "@", "emoji": "\U0001F4CB", "underscores": "_", "tabs": "\t"}


def story_text(run):
    return ("## IN PROGRESS\n- [ ] **[STORY-001]** t%s - **Done**\n- [ ] **[STORY-002]** %s (2026-01-01) - **\n"
            "- [ ] **[STORY-003]** A%s — __b%s__\n  **Status:** %s\n" % (run, run, run, run, run))


def epic_text(run):
    return ("# EPIC-1: t\n**Status:** a%sb%s\n**Owner:** %s@\n### STORY-1: %s\n1. **STORY-2%s**\n"
            % (run, run, run, run, run))


def workflow_bytes(run):
    return json.dumps({"workflow": "w", "status": "in_progress", "current_step": run,
                       "steps": [{"name": run, "status": "done"}]}).encode()


def parsers(story_mod, epic_mod):
    return {"stories": lambda run: story_mod.parse_story_file(story_text(run)),
            "epics": lambda run: epic_mod.parse_epic_file(epic_text(run), "EPIC-1.md"),
            "workflows": lambda run: workflows.parse_workflow_bytes(workflow_bytes(run), "w")}


def seconds_per_mb(parse, unit, chars):
    run = (unit * (chars // len(unit) + 1))[:chars]
    size = len(story_text(run).encode())   # ≈ 5 runs: the size the parsers see
    start = time.perf_counter()
    parse(run)
    return (time.perf_counter() - start) / (size / 1e6)


def _timed(args, queue):
    which, name, unit, chars = args
    mods = _main_modules() if which == "before" else (stories, epics)
    queue.put(seconds_per_mb(parsers(*mods)[name], unit, chars))


def _main_modules():
    loaded = []
    for name in ("stories", "epics"):
        source = subprocess.run(["git", "show", "main~0:madace_status/project/%s.py" % name], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
        module = types.ModuleType("before_" + name)
        exec(compile(source, "main:" + name, "exec"), module.__dict__)
        loaded.append(module)
    return loaded


def timed_with_limit(args, limit_s):
    queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_timed, args=(args, queue))
    proc.start()
    proc.join(limit_s)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return None
    return queue.get() if not queue.empty() else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=int, default=64, help="run length n in KB (4n is also measured)")
    parser.add_argument("--before", action="store_true", help="also time main's parsers (10/20 KB, timeout)")
    parser.add_argument("--base", default="main", help="git revision for --before")
    args = parser.parse_args()
    n = args.kb * 1024
    print("%-10s %-12s %12s %12s %7s" % ("parser", "run", "s/MB @n", "s/MB @4n", "ratio"))
    for name in ("stories", "epics", "workflows"):
        for label, unit in RUNS.items():
            parse = parsers(stories, epics)[name]
            a = seconds_per_mb(parse, unit, n)
            b = seconds_per_mb(parse, unit, 4 * n)
            print("%-10s %-12s %12.4f %12.4f %7.2f" % (name, label, a, b, (b * 4) / a if a else 0))
    if args.before:
        print("\nbefore (%s) vs after, s/MB on one hostile line; '>' = timed out" % args.base)
        for name in ("stories", "epics"):
            for label in ("spaces", "dashes", "symbols"):
                for chars in (10 * 1024, 20 * 1024):
                    before = timed_with_limit(("before", name, RUNS[label], chars), 60)
                    after = seconds_per_mb(parsers(stories, epics)[name], RUNS[label], chars)
                    print("%-10s %-8s %3d KB  before %s  after %.4f" % (
                        name, label, chars // 1024, ">60 s" if before is None else "%.2f" % before, after))


if __name__ == "__main__":
    main()
