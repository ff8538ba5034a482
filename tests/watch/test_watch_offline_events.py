"""`status --watch` offline: the fallback waits on the same change detector as `serve` (inotify with `auto` on
Linux), so a file write re-renders at once instead of at the next --interval; without inotify it polls every
--interval as before. Real processes, real files, a real `serve` coming up on the port; the inotify
descriptor is looked for in /proc/PID/fd."""

import sys
import time

import pytest

from watch_helpers import (clean_env, free_port, inotify_descriptors, mode, set_workflow_step, wait_documents,
                           wait_until, workflow_step)

LONG_INTERVAL_S = 30.0  # far longer than any wait below: a change seen sooner was not found by the interval
EVENT_DEADLINE_S = 3.0  # write → NDJSON document with events (milliseconds unloaded; slack for a loaded machine)
SHORT_INTERVAL_S = 0.5
RECONNECT_TIMEOUT_S = 40.0  # the backoff's jittered delays after a few refused attempts add up to at most this
WEBSOCKET, POLLING = "websocket", "polling"

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify and /proc exist on Linux only")


@linux_only
def test_offline_a_write_shows_at_once_and_the_inotify_descriptor_is_closed_back_online(
        project, start_server, watch):
    port = free_port()
    view = watch("-f", "json", "--root", project, "--server", "ws://127.0.0.1:%d" % port,
                 "--interval", str(LONG_INTERVAL_S))
    docs, index = wait_documents(view.stdout, lambda doc: True)
    assert mode(docs[index]) == POLLING
    wait_until(lambda: inotify_descriptors(view.process.pid) == 1, what="one inotify descriptor while offline")

    latencies = []
    for step in (1, 2, 5):
        set_workflow_step(project, "pm-planning", step)
        written = time.monotonic()
        docs, index = wait_documents(view.stdout, lambda doc, step=step: workflow_step(doc, "pm-planning") == step,
                                     start=index + 1)
        latencies.append(time.monotonic() - written)
        assert mode(docs[index]) == POLLING
    print("offline write → document: %s ms" % ", ".join("%.1f" % (s * 1000) for s in latencies))
    assert max(latencies) < EVENT_DEADLINE_S < LONG_INTERVAL_S

    start_server(project, ws_port=port)
    docs, back = wait_documents(view.stdout, lambda doc: mode(doc) == WEBSOCKET, start=index + 1,
                                timeout=RECONNECT_TIMEOUT_S)
    assert workflow_step(docs[back], "pm-planning") == 5
    wait_until(lambda: inotify_descriptors(view.process.pid) == 0, what="the inotify descriptor closed when online")


@linux_only
def test_without_inotify_the_offline_fallback_polls_every_interval(project, watch):
    port = free_port()
    env = clean_env(COLUMNS="120", MADACE_STATUS_TEST_NO_INOTIFY="1")
    view = watch("-f", "json", "--root", project, "--server", "ws://127.0.0.1:%d" % port,
                 "--interval", str(SHORT_INTERVAL_S), env=env)
    docs, index = wait_documents(view.stdout, lambda doc: True)
    assert mode(docs[index]) == POLLING
    assert inotify_descriptors(view.process.pid) == 0
    for step in (4, 5):
        set_workflow_step(project, "pm-planning", step)
        written = time.monotonic()
        docs, index = wait_documents(view.stdout, lambda doc, step=step: workflow_step(doc, "pm-planning") == step,
                                     start=index + 1)
        assert time.monotonic() - written < SHORT_INTERVAL_S + 1.0  # one interval, and slack for a loaded machine
    assert inotify_descriptors(view.process.pid) == 0


@linux_only
@pytest.mark.parametrize("how", ["flag", "environment"])
def test_watcher_poll_makes_the_offline_fallback_poll_every_interval(project, watch, how):
    port = free_port()
    flags = ["--watcher", "poll"] if how == "flag" else []
    env = clean_env(COLUMNS="120", **({"MADACE_STATUS_WATCHER": "poll"} if how == "environment" else {}))
    view = watch("-f", "json", "--root", project, "--server", "ws://127.0.0.1:%d" % port,
                 "--interval", str(SHORT_INTERVAL_S), *flags, env=env)
    docs, index = wait_documents(view.stdout, lambda doc: True)
    assert mode(docs[index]) == POLLING
    set_workflow_step(project, "pm-planning", 4)
    written = time.monotonic()
    docs, index = wait_documents(view.stdout, lambda doc: workflow_step(doc, "pm-planning") == 4, start=index + 1)
    assert time.monotonic() - written < SHORT_INTERVAL_S + 1.0  # one interval, and slack for a loaded machine
    assert inotify_descriptors(view.process.pid) == 0  # inotify works here (see above), but poll was asked for


@linux_only
def test_watcher_inotify_by_the_flag_opens_the_descriptor_offline(project, watch):
    view = watch("-f", "json", "--root", project, "--server", "ws://127.0.0.1:%d" % free_port(),
                 "--interval", str(LONG_INTERVAL_S), "--watcher", "inotify",
                 env=clean_env(COLUMNS="120", MADACE_STATUS_WATCHER="poll"))  # the flag wins over the variable
    docs, index = wait_documents(view.stdout, lambda doc: True)
    assert mode(docs[index]) == POLLING
    wait_until(lambda: inotify_descriptors(view.process.pid) == 1, what="one inotify descriptor while offline")
