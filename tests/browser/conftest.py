"""Fixtures of the browser tests: Debian's Chromium through Playwright (never `playwright install`), a real
`serve` subprocess per test on a writable copy of the sample project, and recorded pages."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # so test modules can `import browser_helpers` whatever pytest's import mode
    sys.path.insert(0, HERE)

from browser_helpers import (PROBE_SCRIPT, SAMPLE_PROJECT, PageRecorder, SampleProject, ServeProcess,  # noqa: E402
                             launched_chromium)


@pytest.fixture(scope="module")
def browser():
    # Per module, not per session: Playwright's sync API keeps an event loop running in this thread until it
    # stops, and the asyncio.run() of every later test module would fail while it runs.
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def project(tmp_path):
    assert os.path.isdir(SAMPLE_PROJECT), "the sample project fixture is expected at %s" % SAMPLE_PROJECT
    return SampleProject(str(tmp_path / "project"))


@pytest.fixture
def serve(project, tmp_path):
    """serve(*extra_args) → a started ServeProcess on the test's project; all are stopped at the end."""
    started = []

    def start(*extra_args):
        server = ServeProcess(project.root, str(tmp_path / ("serve-%d.log" % len(started))), extra_args)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(serve):
    return serve()


@pytest.fixture
def open_page(browser):
    """open_page(url, **context options) → PageRecorder of a new page in a new context (closed at the end)."""
    contexts = []

    def open_(url, color_scheme="light", viewport=None, context=None):
        if context is None:
            context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900},
                                          color_scheme=color_scheme)
            context.add_init_script(PROBE_SCRIPT)
            contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10000)
        recorder = PageRecorder(page)
        if url:
            page.goto(url)
        return recorder

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def new_context(browser):
    """A fresh browser context with the probe installed (for tests that open several pages in one)."""
    contexts = []

    def make(**options):
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**options)
        context.add_init_script(PROBE_SCRIPT)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
