"""Helpers for the CLI tests: run `python -m madace_status status …` as a user would, in a clean environment."""

import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_PROJECT = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")


def clean_env(**extra):
    """The inherited environment without MADACE_STATUS_*, colour or width settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MADACE_STATUS_") and k not in ("NO_COLOR", "TERM", "COLUMNS", "LINES")}
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONIOENCODING"] = "utf-8"
    env["COLUMNS"] = "120"
    env.update(extra)
    return env


class Result(object):
    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self):
        return "Result(rc=%r, stdout=%r, stderr=%r)" % (self.returncode, self.stdout[:2000], self.stderr[:2000])


def run_status(*args, cwd=None, env=None, timeout=60):
    """Run the status command; returns (returncode, stdout, stderr) decoded as UTF-8."""
    completed = subprocess.run([sys.executable, "-m", "madace_status", "status"] + list(args),
                               cwd=cwd or REPO_ROOT, env=env or clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=timeout)
    return Result(completed.returncode, completed.stdout.decode("utf-8", "replace"),
                  completed.stderr.decode("utf-8", "replace"))
