"""The two pictures at the top of the README (tests/browser/readme/): the dashboard, and `status --watch` in a
terminal, both of a real `serve` on the sample project.

Every run makes them afresh under tests/output/readme/ and checks that the repository's copies are the pictures
this test makes (PNGs of the same size, small enough for a README). The repository's copies are replaced only on
request, so that a test run never changes the checkout:

    MADACE_STATUS_README_PICTURES=update tests/.venv/bin/python -m pytest tests/browser/test_readme_pictures.py
"""

import html
import os
import shutil
import struct
import subprocess
import sys
import threading

from playwright.sync_api import expect

from browser_helpers import REPO_ROOT, apply_one_at_a_time

OUTPUT_DIR = os.path.join(REPO_ROOT, "tests", "output", "readme")
README_PICTURES_DIR = os.path.join(REPO_ROOT, "tests", "browser", "readme")
UPDATE_VARIABLE = "MADACE_STATUS_README_PICTURES"
DASHBOARD_VIEWPORT = {"width": 1280, "height": 800}
TERMINAL_VIEWPORT = {"width": 900, "height": 465}
MAX_PICTURE_BYTES = 400 * 1024  # a README picture that a clone pays for: keep it small
FIRST_FRAME_TIMEOUT_S = 15.0
TERMINAL_STYLE = ("body{margin:0;background:#1e1f29;}"
                  "pre{margin:0;padding:18px 22px;color:#e6e6e6;font:14px/1.0 'DejaVu Sans Mono',monospace;}")


def png_size(path):
    """(width, height) of a PNG file, from its IHDR chunk."""
    with open(path, "rb") as picture:
        head = picture.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % path
    return struct.unpack(">II", head[16:24])


def status_environment():
    env = {name: value for name, value in os.environ.items() if not name.startswith("MADACE_STATUS_")}
    env.update(PYTHONPATH=REPO_ROOT, PYTHONIOENCODING="utf-8", COLUMNS="100")
    return env


def first_watch_frame(ws_url, project_root):
    """The first frame `status --watch` prints through a pipe: its header line, a blank line, then what one-shot
    `status` prints (so its length is known)."""
    env = status_environment()
    one_shot = subprocess.run([sys.executable, "-m", "madace_status", "status", "--root", project_root], cwd=REPO_ROOT,
                              env=env, stdout=subprocess.PIPE, check=True, text=True, encoding="utf-8").stdout
    frame_lines = 2 + len(one_shot.rstrip("\n").split("\n"))
    process = subprocess.Popen([sys.executable, "-m", "madace_status", "status", "--watch", "--server", ws_url,
                                "--root", project_root], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, encoding="utf-8")
    timer = threading.Timer(FIRST_FRAME_TIMEOUT_S, process.kill)  # a frame that never comes fails, not hangs
    timer.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if len(lines) == frame_lines:
                break
    finally:
        timer.cancel()
        process.kill()
        process.wait(10)
    assert len(lines) == frame_lines, "no whole frame from status --watch:\n" + "\n".join(lines)
    return lines


def check_and_publish(name):
    """Check the fresh picture `name` against the repository's copy; replace that copy when asked to."""
    fresh = os.path.join(OUTPUT_DIR, name)
    kept = os.path.join(README_PICTURES_DIR, name)
    assert os.path.getsize(fresh) <= MAX_PICTURE_BYTES, "%s is %d bytes" % (name, os.path.getsize(fresh))
    if os.environ.get(UPDATE_VARIABLE) == "update":
        os.makedirs(README_PICTURES_DIR, exist_ok=True)
        shutil.copyfile(fresh, kept)
    assert os.path.isfile(kept), "%s is missing: run with %s=update" % (kept, UPDATE_VARIABLE)
    assert png_size(kept) == png_size(fresh), "%s is not the picture this test makes" % kept
    assert os.path.getsize(kept) <= MAX_PICTURE_BYTES


def test_readme_pictures_of_the_dashboard_and_of_the_terminal_view(server, project, open_page):
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    apply_one_at_a_time(server, (lambda: project.advance_pm_planning(4),
                                 lambda: project.move_story("STORY-V3-022", "TODO")))

    dashboard = open_page(server.dashboard_url, viewport=DASHBOARD_VIEWPORT)
    page = dashboard.page
    expect(page.locator("#conn-text")).to_contain_text("Connected (rtt", timeout=5000)
    expect(page.locator("#card-TODO")).to_have_class("card violated")
    expect(page.locator("#feed li")).to_have_count(2)
    page.screenshot(path=os.path.join(OUTPUT_DIR, "dashboard.png"))
    dashboard.assert_clean()

    frame = first_watch_frame(server.ws_url, project.root)
    assert "Connection: 🟢 WebSocket" in frame[0]
    terminal = open_page(None, viewport=TERMINAL_VIEWPORT).page
    terminal.set_content("<!doctype html><meta charset=utf-8><style>%s</style><pre>%s</pre>"
                         % (TERMINAL_STYLE, html.escape("\n".join(frame))))
    terminal.screenshot(path=os.path.join(OUTPUT_DIR, "terminal.png"))

    check_and_publish("dashboard.png")
    check_and_publish("terminal.png")
