"""The entry points of issue 2: the console script, `python -m` and --help on every command (the plain copy of
the folder is tested in tests/unit, so on every interpreter)."""

import os
import subprocess
import sys

from madace_status import __version__

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")


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


def test_every_command_has_help():
    for command in (["--help"], ["status", "--help"], ["serve", "--help"]):
        result = run([sys.executable, "-m", "madace_status"] + command, cwd=REPO_ROOT)
        assert result.returncode == 0 and result.stdout.startswith("usage: madace-status"), command


def test_short_version_flag_prints_the_version():
    result = run([sys.executable, "-m", "madace_status", "-V"], cwd=REPO_ROOT)
    assert (result.returncode, result.stdout.strip()) == (0, "madace-status " + __version__)
