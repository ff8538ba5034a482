"""The package runs from a plain copy of its folder (no install), on every interpreter the unit tests run on:
Python 3.9, the current CPython, and PyPy."""

import json
import os
import shutil
import subprocess
import sys

from madace_status import __version__

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")


def run(command, cwd):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_a_plain_copy_of_the_package_folder_runs_help_version_and_status(tmp_path):
    shutil.copytree(os.path.join(REPO_ROOT, "madace_status"), str(tmp_path / "madace_status"))
    help_text = run([sys.executable, "-m", "madace_status", "--help"], cwd=str(tmp_path))
    assert help_text.returncode == 0 and "status" in help_text.stdout and "serve" in help_text.stdout
    version = run([sys.executable, "-m", "madace_status", "--version"], cwd=str(tmp_path))
    assert version.stdout.strip() == "madace-status " + __version__
    status = run([sys.executable, "-m", "madace_status", "status", "STORY-V3-020", "--root", SAMPLE, "-f", "json"],
                 cwd=str(tmp_path))
    assert status.returncode == 0 and '"entityId": "STORY-V3-020"' in status.stdout


def test_a_plain_copy_carries_the_demo_sample_tree(tmp_path):
    shutil.copytree(os.path.join(REPO_ROOT, "madace_status"), str(tmp_path / "madace_status"))
    project = tmp_path / "demo-project"
    script = ("import sys; from madace_status.demo import DemoSimulator, create_demo_project; "
              "create_demo_project(sys.argv[1]); DemoSimulator(sys.argv[1], seed=1).step()")
    made = run([sys.executable, "-c", script, str(project)], cwd=str(tmp_path))
    assert made.returncode == 0, made.stderr
    status = run([sys.executable, "-m", "madace_status", "status", "--root", str(project), "-f", "json"],
                 cwd=str(tmp_path))
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)["data"]
    assert summary["total"]["count"] == 12 and summary["workflowCount"] >= 4 and summary["violations"] == []
