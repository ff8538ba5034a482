"""Fixtures for the watch-mode tests: a writable copy of the sample project, and servers and watch processes that
are always stopped at the end of the test (the helpers themselves live in watch_helpers.py)."""

import pytest

from watch_helpers import Server, TtyWatch, Watch, copy_project


@pytest.fixture
def project(tmp_path):
    return copy_project(str(tmp_path / "project"))


@pytest.fixture
def start_server():
    servers = []

    def start(root, ws_port=0, args=()):
        server = Server(root, ws_port, args)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def watch():
    processes = []

    def spawn(*args, **kwargs):
        process = Watch(*args, **kwargs)
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        process.close()


@pytest.fixture
def tty_watch():
    processes = []

    def spawn(*args, **kwargs):
        process = TtyWatch(*args, **kwargs)
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        process.close()
