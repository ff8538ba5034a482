"""The flow history's costs (madace_status/sync/history/store.py): what `record()` costs its caller (the event loop),
one append by the writer thread, the rotation rewrite at the sample cap, and the load of a full file.

    python tests/benchmarks/history_io.py [--samples 5000]

It writes only in a temporary directory (XDG_CACHE_HOME is pointed there) and prints microseconds / milliseconds.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from madace_status.project.model import Project, Story  # noqa: E402
from madace_status.sync.history.samples import HISTORY_MAX_SAMPLES, encode_sample  # noqa: E402
from madace_status.sync.history.store import HistoryStore  # noqa: E402


def board(done, total=2000):
    """A 2,000-story project with `done` of them DONE and the rest in BACKLOG."""
    stories = [Story("S-%d" % n, "story", "DONE" if n < done else "BACKLOG", points=3) for n in range(total)]
    return Project("/nowhere", [], stories, [])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=HISTORY_MAX_SAMPLES)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="history-bench-")
    root = os.path.join(directory, "project")
    os.mkdir(root)
    environ = {"XDG_CACHE_HOME": os.path.join(directory, "cache")}
    projects = [board(done % 2000) for done in range(args.samples + 1)]
    try:
        store = HistoryStore.open(root, environ=environ, max_samples=args.samples)
        record_s = []
        append_s = []
        for project in projects[:-1]:
            started = time.perf_counter()
            store.record(project)
            record_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            store.flush()
            append_s.append(time.perf_counter() - started)
        size = os.path.getsize(store.path)
        started = time.perf_counter()
        store.record(projects[-1])  # one over the cap: the newest half is kept and the file rewritten
        store.flush()
        rotation_s = time.perf_counter() - started
        after = os.path.getsize(store.path)
        store.close()
        # Load a full file: the size the cap allows.
        with open(store.path, "wb") as handle:
            handle.write(b"".join(encode_sample(s) for s in store.samples()) * 2)
        started = time.perf_counter()
        loaded = HistoryStore.open(root, environ=environ, max_samples=args.samples)
        load_s = time.perf_counter() - started
        print("samples %d, line %d bytes, file at the cap %d bytes" % (args.samples, size // args.samples, size))
        print("record() on the caller's thread (the event loop): median %.1f µs, max %.1f µs"
              % (statistics.median(record_s) * 1e6, max(record_s) * 1e6))
        print("append by the writer thread (record → flush): median %.1f µs, p99 %.1f µs"
              % (statistics.median(append_s) * 1e6, sorted(append_s)[int(len(append_s) * 0.99)] * 1e6))
        print("rotation at the cap (rewrite of %d samples, %d bytes): %.1f ms" % (len(store.samples()), after,
                                                                                 rotation_s * 1e3))
        print("load of a %d-sample file: %.1f ms" % (len(loaded.samples()), load_s * 1e3))
        loaded.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
