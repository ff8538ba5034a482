"""The package as one file (README, "Install"): a zip application built with the standard library's `zipapp` and
copied alone into an empty directory runs `status`, `status --watch` and `serve --demo`, and what `serve` reads
besides its modules — the pages, their scripts and the demo's sample tree — comes out of the archive. Run by every
interpreter of the test command (3.9, PyPy, the newest); tests/browser/test_zipapp_dashboard.py loads the dashboard
from it in Chromium."""

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_PROJECT = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")
RUN_TIMEOUT_S = 60


@pytest.fixture
def pyz(single_file_app):
    return single_file_app


def run(pyz, *args):
    """`python3 ARGS…` beside the archive (never in the checkout, whose package folder would be imported instead)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MADACE_STATUS_", "PYTHON"))}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run([sys.executable] + list(args), cwd=os.path.dirname(pyz), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=RUN_TIMEOUT_S, text=True,
                          encoding="utf-8")


def test_status_from_the_single_file_prints_what_the_package_prints(pyz):
    from_zip = run(pyz, pyz, "status", "--root", SAMPLE_PROJECT, "-f", "json")
    assert from_zip.returncode == 0, from_zip.stderr
    data = json.loads(from_zip.stdout)["data"]
    assert data["total"] == {"count": 11, "points": 32} and data["workflowCount"] == 5 and data["epicCount"] == 3
    version = run(pyz, pyz, "-V")
    assert version.returncode == 0 and version.stdout.startswith("madace-status ")


def test_the_pages_their_assets_and_the_demo_tree_come_out_of_the_archive(pyz):
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import madace_status.web.assets as assets, "
             "madace_status.web.pages as pages, madace_status.demo.tree as tree; "
             "assert 'zip' in type(assets.__loader__).__name__.lower(), assets.__loader__; "
             "assert assets.find('no-such-file.js') is None; "
             "print(len(assets.find('dashboard-core.js').body), len(assets.find('dashboard.css').body)); "
             "print(sorted(name for name in tree.sample_files() if name.endswith('.state.json'))); "
             "print(b'src=\"static/dashboard-core.js' in pages.render('status', 'ws://127.0.0.1:3001/ws')[0])")
    result = run(pyz, "-c", probe, pyz)
    assert result.returncode == 0, result.stderr
    sizes, state_files, has_page = result.stdout.splitlines()
    assert all(int(size) > 1000 for size in sizes.split())
    assert "madace-data/workflow-states/.pm-planning.state.json" in state_files  # dot-files are in the archive
    assert has_page == "True"


def test_serve_demo_and_status_watch_from_the_single_file(pyz):
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MADACE_STATUS_", "PYTHON"))}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen([sys.executable, pyz, "serve", "--demo", "--port", "0", "--ws-port", "0"],
                               cwd=os.path.dirname(pyz), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, encoding="utf-8")
    timer = threading.Timer(RUN_TIMEOUT_S, process.kill)  # no announcement fails the test, never hangs it
    timer.start()
    try:
        announced = {}
        for line in process.stdout:
            name, _, value = line.partition(":")
            announced[name] = value.strip()
            if name == "Demo":
                break
        assert "Dashboard" in announced, process.stderr.read() if process.poll() is not None else announced
        dashboard, ws_url = announced["Dashboard"], announced["WebSocket"]
        demo_root = next(word for word in announced["Demo"].split() if word.startswith(os.sep))
        base = dashboard.rsplit("/", 1)[0]
        with urllib.request.urlopen(dashboard, timeout=10) as page:
            assert page.status == 200 and b'"static/dashboard-core.js' in page.read()
        with urllib.request.urlopen(base + "/static/dashboard-core.js", timeout=10) as script:
            assert script.status == 200 and len(script.read()) > 1000
        with urllib.request.urlopen(base + "/api/status", timeout=10) as api:
            assert json.loads(api.read())["data"]["workflowCount"] >= 1  # the demo tree, out of the archive
        watch = subprocess.Popen([sys.executable, pyz, "status", "--watch", "-f", "json", "--root", demo_root,
                                  "--server", ws_url], cwd=os.path.dirname(pyz), env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, encoding="utf-8")
        watch_timer = threading.Timer(RUN_TIMEOUT_S, watch.kill)  # no pushed frame fails the test, never hangs it
        watch_timer.start()
        try:
            pushed = next(document for document in map(json.loads, watch.stdout)
                          if document["connection"]["mode"] == "websocket")
            assert pushed["entityType"] == "summary" and pushed["connection"]["note"] is None  # the same project
        finally:
            watch_timer.cancel()
            watch.kill()
            watch.wait(10)
            watch.stdout.close()
    finally:
        timer.cancel()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        process.stdout.close()
        process.stderr.close()
