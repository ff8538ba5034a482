"""Fixtures for the sync-server tests (the helpers themselves live in sync_helpers.py beside this file).

`project`: a writable copy of the sample project (tests/fixtures/sample-project) in tmp_path. `serve(root, *flags)`: start
`python -m madace_status serve --port 0 --ws-port 0 …` and wait for the URLs it prints; every process a test
started is sent SIGTERM when the test ends (its exit is collected a little later, so the next test does not wait
for http.server's half-second shutdown). `live`: the usual case, a server on `project` polling every 0.05 s.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # so test modules can `import sync_helpers` whatever pytest's import mode
    sys.path.insert(0, HERE)

import sync_helpers  # noqa: E402
from sync_helpers import ProjectFiles, ServeProcess, reap_stopped, serve_args  # noqa: E402

MAX_STOPPING = 6  # servers left to finish stopping in the background at once


@pytest.fixture(scope="session", autouse=True)
def _reap_servers():
    yield
    reap_stopped()


@pytest.fixture
def project(tmp_path):
    return ProjectFiles.copy_of_sample(tmp_path / "project")


class _Servers:
    def __init__(self):
        self.started = []

    def __call__(self, root=None, *flags, poll="0.05", sync=True, env=None):
        server = ServeProcess(serve_args(root, *flags, poll=poll), env=env)
        self.started.append(server)
        return server.wait_started(sync=sync)

    def stop_all(self):
        for server in self.started:
            server.stop_later()
        if len(sync_helpers.STOPPING) > MAX_STOPPING:
            reap_stopped()


@pytest.fixture
def serve():
    servers = _Servers()
    yield servers
    servers.stop_all()


@pytest.fixture
def live(project, serve):
    """A server on `project`, polling every 0.05 s."""
    return serve(project.root)
