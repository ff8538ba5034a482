"""Fixtures for the project-model tests: the sample project (tests/fixtures/sample-project) and small projects built in tmp_path."""

import json
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SAMPLE_PROJECT = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")


@pytest.fixture
def sample_root():
    assert os.path.isdir(SAMPLE_PROJECT), "the sample project fixture is expected at %s" % SAMPLE_PROJECT
    return SAMPLE_PROJECT


class ProjectBuilder(object):
    """Writes a MADACE project tree under a temporary root, one source at a time."""

    def __init__(self, root):
        self.root = str(root)
        os.makedirs(self.root, exist_ok=True)
        self.states = os.path.join(self.root, "madace-data", "workflow-states")
        self.epics = os.path.join(self.root, "docs", "v3-planning", "epics")
        self.status_file = os.path.join(self.root, "docs", "workflow-status.md")

    def state(self, name, content):
        """A state file `.<name>.state.json`; `content` is a dict/list (JSON-encoded), str or bytes."""
        os.makedirs(self.states, exist_ok=True)
        path = os.path.join(self.states, ".%s.state.json" % name)
        _write(path, content)
        return path

    def stories(self, content):
        os.makedirs(os.path.dirname(self.status_file), exist_ok=True)
        _write(self.status_file, content)
        return self.status_file

    def epic(self, filename, content):
        os.makedirs(self.epics, exist_ok=True)
        path = os.path.join(self.epics, filename)
        _write(path, content)
        return path


def _write(path, content):
    if isinstance(content, (dict, list)):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode("utf-8")
    with open(path, "wb") as handle:
        handle.write(content)


@pytest.fixture
def project(tmp_path):
    return ProjectBuilder(tmp_path / "project")
