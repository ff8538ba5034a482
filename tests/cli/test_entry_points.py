"""The entry points of issue 2: the console script, `python -m`, --help and --version, a plain copy."""

import os
import shutil
import subprocess
import sys

from madace_status import __version__

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(REPO_ROOT, "..", "shared", "sample-project")


def run(command, cwd):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_console_script_installed_by_the_test_extra_prints_the_version_and_the_status():
    script = os.path.join(os.path.dirname(sys.executable), "madace-status")
    assert os.access(script, os.X_OK), "tests/run.sh installs the package, which provides %s" % script
    version = run([script, "--version"], cwd=REPO_ROOT)
    assert (version.returncode, version.stdout.strip()) == (0, "madace-status " + __version__)
    status = run([script, "status", "--root", SAMPLE, "--format", "json"], cwd=REPO_ROOT)
    assert status.returncode == 0, status.stderr
    assert '"entityType": "summary"' in status.stdout


def test_a_plain_copy_of_the_package_folder_runs_help_version_and_status(tmp_path):
    shutil.copytree(os.path.join(REPO_ROOT, "madace_status"), str(tmp_path / "madace_status"))
    help_text = run([sys.executable, "-m", "madace_status", "--help"], cwd=str(tmp_path))
    assert help_text.returncode == 0 and "status" in help_text.stdout and "serve" in help_text.stdout
    version = run([sys.executable, "-m", "madace_status", "--version"], cwd=str(tmp_path))
    assert version.stdout.strip() == "madace-status " + __version__
    status = run([sys.executable, "-m", "madace_status", "status", "STORY-V3-020", "--root", SAMPLE, "-f", "json"],
                 cwd=str(tmp_path))
    assert status.returncode == 0 and '"entityId": "STORY-V3-020"' in status.stdout


def test_every_command_has_help():
    for command in (["--help"], ["status", "--help"], ["serve", "--help"]):
        result = run([sys.executable, "-m", "madace_status"] + command, cwd=REPO_ROOT)
        assert result.returncode == 0 and result.stdout.startswith("usage: madace-status"), command
