"""Fixtures of the deployment tests: a writable project, `serve` processes set up as the shipped configurations
say, a self-signed certificate, and real nginx and Caddy in front (tests/proxies.py); everything started is stopped
at the end of the test."""

import os
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for folder in ("sync", "watch"):  # their helpers: the serve process, the watch process, file writes
    path = os.path.join(os.path.dirname(HERE), folder)
    if path not in sys.path:
        sys.path.insert(0, path)

from proxies import (BASE_PATH, PUBLIC_NAME, Caddy, Nginx, free_port, make_certificate,  # noqa: E402
                     proxied_serve_flags, shipped_config)
from sync_helpers import ProjectFiles, ServeProcess, serve_args  # noqa: E402


@pytest.fixture
def project(tmp_path):
    return ProjectFiles.copy_of_sample(tmp_path / "project")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """(certificate, key): made by openssl for madace.test, localhost and 127.0.0.1."""
    return make_certificate(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def stopper():
    """stopper(thing) → thing, stopped (its .stop()) at the end of the test, last started first."""
    things = []

    def keep(thing):
        things.append(thing)
        return thing

    yield keep
    for thing in reversed(things):
        thing.stop()


@pytest.fixture
def proxied_serve(project, stopper):
    """proxied_serve(*more flags) → a started `serve` on `project` with the flags the shipped files name."""
    def start(*flags, root=None):
        args = serve_args(str(root or project.root), *(proxied_serve_flags() + list(flags)), poll="0.05")
        return stopper(ServeProcess(args)).wait_started()
    return start


@pytest.fixture
def nginx_in_front(certificate, stopper, tmp_path):
    """nginx_in_front(config name, **placeholders) → Nginx listening with TLS on a free port, from the shipped
    configuration `name` (nginx or nginx-replicas)."""
    def start(name="nginx", port=None, **values):
        port = port or free_port()
        values = dict(dict(SERVER_NAME=PUBLIC_NAME, LISTEN="127.0.0.1:%d" % port, CERT=certificate[0],
                           KEY=certificate[1], BASE_PATH=BASE_PATH), **values)
        directory = tempfile.mkdtemp(prefix="nginx-", dir=str(tmp_path))
        return stopper(Nginx(directory, shipped_config(name, **values), port))
    return start


@pytest.fixture
def caddy_in_front(certificate, stopper, tmp_path):
    def start(upstream):
        port = free_port()
        directory = str(tmp_path / ("caddy-%d" % port))
        os.makedirs(directory)
        site = shipped_config("caddy", SERVER_NAME=PUBLIC_NAME, LISTEN=str(port), CERT=certificate[0],
                              KEY=certificate[1], BASE_PATH=BASE_PATH, UPSTREAM=upstream)
        return stopper(Caddy(directory, site, port))
    return start
