"""How long a hostile file holds `serve`'s event loop (issue 10 §5): JSON ping → pong round trips while the
story file is rewritten as a 4 MiB file of adversarial lines, against the same pings on an idle server.

The files are read and parsed in the sync service's reader thread, so the loop keeps answering; before that,
each rewrite held the loop for the whole parse. Prints the median, p99 and worst round trip of each phase.

    python tests/benchmarks/loop_stall.py [--rewrites 10] [--mib 4]
"""
import argparse
import asyncio
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _serve_bench import ServeProcess, machine_note, make_project, median, percentile  # noqa: E402

import websockets  # noqa: E402

PING_EVERY_S = 0.005


def hostile_story_file(mib):
    line = "- [ ] **[STORY-1]** x" + "-" * 4000 + "y (3 pts) @a\n"  # under the 4,096-character line cap
    return "## TODO\n" + line * (mib * 1024 * 1024 // len(line))


async def round_trips(url, seconds, while_running=None):
    rtts = []
    async with websockets.connect(url, max_size=None) as ws:
        await ws.recv()  # welcome
        await ws.recv()  # snapshot
        task = asyncio.get_running_loop().run_in_executor(None, while_running) if while_running else None
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or (task is not None and not task.done()):
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "ping", "timestamp": int(time.time() * 1000)}))
            while json.loads(await ws.recv())["type"] != "pong":
                pass
            rtts.append(time.perf_counter() - sent)
            await asyncio.sleep(PING_EVERY_S)
        if task is not None:
            await task
    return rtts


def report(label, rtts):
    print("%-34s %5d pings: median %.1f ms, p99 %.1f ms, worst %.1f ms" % (
        label, len(rtts), median(rtts) * 1e3, percentile(rtts, 0.99) * 1e3, max(rtts) * 1e3))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rewrites", type=int, default=10)
    parser.add_argument("--mib", type=int, default=4)
    args = parser.parse_args()
    print(machine_note())
    text = hostile_story_file(args.mib)
    with tempfile.TemporaryDirectory() as parent:
        root = make_project(parent)
        story_path = os.path.join(root, "docs", "workflow-status.md")
        server = ServeProcess(root)
        try:
            url = server.ws_url
            report("idle server", asyncio.run(round_trips(url, 2.0)))

            def rewrite():
                for index in range(args.rewrites):
                    with open(story_path, "w", encoding="utf-8") as handle:
                        handle.write(text.replace("STORY-1]", "STORY-%d]" % (index + 2), 1))
                    time.sleep(0.5)  # each rewrite is seen and parsed before the next
            report("%d rewrites of a %d MiB hostile file" % (args.rewrites, args.mib),
                   asyncio.run(round_trips(url, 0.5, rewrite)))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
