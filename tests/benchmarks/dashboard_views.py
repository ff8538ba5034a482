"""Benchmark: what the epics panel, the flow chart and the details view cost the dashboard, with a 2,000-story
project in headless Chromium, measured in the page with performance.now().

    python tests/benchmarks/dashboard_views.py [--stories 2000] [--epics 50] [--moves 6] [--samples 500]

The project is dashboard_render.py's (each epic lists its share of the stories). A script added before the
page's own wraps every view's render(model, change) and records how long it took: the full render (after the
snapshot) and each live `stories_updated` (a story moved in the status file). The flow chart is measured a
second time with a history of `--samples` samples served to the page (the server's default limit is 500), so it
draws its full bound of points. The flow chart's full render only starts its history request (the drawing is
done when the answer arrives); each of its live updates is a full drawing. Figures only: no target is asserted.
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _serve_bench as bench  # noqa: E402
import dashboard_render as board_bench  # noqa: E402

WAIT_MS = 30000  # generous: the machine is shared

# Before the page's scripts: a MadaceViews array whose push() wraps each view's render with a timer.
TIMING_SCRIPT = r"""
(() => {
  const times = {};
  const views = [];
  views.push = function (view) {
    const render = view.render;
    view.render = function (model, change) {
      const start = performance.now();
      try { return render.call(this, model, change); } finally {
        const key = view.name + " " + (change ? change.type : "full");
        (times[key] = times[key] || []).push(performance.now() - start);
      }
    };
    return Array.prototype.push.call(this, view);
  };
  window.MadaceViews = views;
  window.__viewTimes = times;
})();
"""


def history_body(count):
    start_ms = int(time.time() * 1000) - count * 60000
    samples = [{"at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime((start_ms + index * 60000) / 1000)),
                "counts": {"BACKLOG": 1900 - index, "TODO": 1, "IN_PROGRESS": index % 2, "DONE": 99 + index}}
               for index in range(count)]
    return json.dumps({"success": True, "states": ["BACKLOG", "TODO", "IN_PROGRESS", "DONE"], "count": count,
                       "samples": samples})


def measure(browser, server, root, moves, history=None):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        context.add_init_script(TIMING_SCRIPT)
        if history is not None:
            context.route(re.compile(r".*/api/history.*"), lambda route: route.fulfill(
                status=200, content_type="application/json", body=history))
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(server.http_url + "/status")
        page.wait_for_function("() => document.getElementById('conn').dataset.mode === 'connected'")
        page.wait_for_function("() => document.querySelector('#flow-panel svg') && "
                               "!document.getElementById('flow-panel').hasAttribute('aria-busy')")
        for move in range(moves):
            done = page.evaluate("() => (window.__viewTimes['flow stories_updated'] || []).length")
            board_bench.move_story(root, board_bench.backlog_story(root, move), "DONE")
            page.wait_for_function("(n) => (window.__viewTimes['flow stories_updated'] || []).length > n", arg=done)
        drawn = page.locator("#flow-panel .flow-body").get_attribute("data-samples")
        return page.evaluate("() => window.__viewTimes"), drawn
    finally:
        context.close()


def report(title, times, drawn):
    print(title + " (flow chart: %s samples drawn)" % drawn)
    for key in sorted(times):
        values = times[key]
        print("   %-26s median %6.2f ms   worst %6.2f ms   (%d calls)" % (key, bench.median(values), max(values),
                                                                          len(values)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stories", type=int, default=2000)
    parser.add_argument("--epics", type=int, default=50)
    parser.add_argument("--moves", type=int, default=6)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright  # a test extra, as for the browser tests

    parent = tempfile.mkdtemp(prefix="madace-views-bench-")
    root = os.path.join(parent, "project")
    try:
        board_bench.generate(root, args.stories, args.epics)
        server = bench.ServeProcess(root)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=board_bench.CHROMIUM, headless=True,
                                                     args=board_bench.CHROMIUM_ARGS)
                try:
                    served = measure(browser, server, root, args.moves)
                    long = measure(browser, server, root, args.moves, history_body(args.samples))
                finally:
                    browser.close()
        finally:
            server.stop()
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    print(bench.machine_note())
    print("%d stories, %d epics, %d story moves, Chromium headless, 1440x900" % (args.stories, args.epics, args.moves))
    report("the server's own history", *served)
    report("a history of %d samples" % args.samples, *long)


if __name__ == "__main__":
    main()
