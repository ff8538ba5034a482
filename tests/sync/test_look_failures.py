"""A look that fails never loses a change (README, "Live updates: what is guaranteed"): whatever raises inside a
look — a bug in a parser, an OSError, a MemoryError on a hostile file, a failure half-way through publishing —
the next look reads the whole project again, /metrics counts it, the log says so once, and every view settles on
a fresh read of the files. Each failure is injected into a real SyncService on real files, with a real
WebSocket client following it (tests/sync/settle_harness.py)."""

import logging
import os

import pytest

import settle_harness as harness
from madace_status.sync import service as service_module
from madace_status.sync.detect import sources as sources_module
from settle_harness import LiveServer, ProjectTree, ReplicaClient, settle, workflow_document


@pytest.fixture
def tree(tmp_path):
    tree = ProjectTree.copy_of_sample(tmp_path / "project")
    yield tree
    tree.cleanup()


@pytest.fixture(params=["inotify", "poll"])
def running(request, tree):
    server = LiveServer(tree.root, watcher=request.param)
    client = ReplicaClient(server)
    settle(server, [client], tree.root)
    yield server, client
    client.close()
    server.close()


class FailOnce:
    """Wraps `function`: the first call for which `matches(*args)` raises `error`; every other call goes through."""

    def __init__(self, function, error, matches=lambda *args: True, times=1):
        self.function = function
        self.error = error
        self.matches = matches
        self.left = times
        self.raised = 0

    def __call__(self, *args, **kwargs):
        if self.left and self.matches(*args):
            self.left -= 1
            self.raised += 1
            raise self.error
        return self.function(*args, **kwargs)


def sync_logs(caplog, level):
    return [record for record in caplog.records if record.name == "madace_status.sync" and record.levelno == level]


def assert_counted_and_logged_once(server, caplog, failures=1):
    metrics = server.metrics()
    assert metrics["madace_looks_failed_total"] == failures
    assert metrics["madace_rescans_total"] >= 1
    errors = sync_logs(caplog, logging.ERROR)
    assert len(errors) == 1 and errors[0].exc_info is not None, [r.getMessage() for r in errors]
    assert "reads the whole project again" in errors[0].getMessage()
    assert any("read again after %d failed look" % failures in r.getMessage() for r in sync_logs(caplog, logging.INFO))


def test_a_parser_bug_on_one_file_loses_no_change(running, tree, monkeypatch, caplog):
    server, client = running
    caplog.set_level(logging.INFO, "madace_status.sync")
    failing = FailOnce(sources_module.read_workflow_file, RuntimeError("a bug in the parser"),
                       lambda path, *rest: path.endswith(".alpha.state.json"))
    monkeypatch.setattr(sources_module, "read_workflow_file", failing)
    tree.write_state("alpha", workflow_document("alpha", "in_progress", 2, 4))
    tree.write_state("pm-planning", workflow_document("pm-planning", "completed", 5, 5))
    settle(server, [client], tree.root)
    assert failing.raised == 1
    assert client.replica.workflows["alpha"].current_step == 2
    assert_counted_and_logged_once(server, caplog)


def test_an_oserror_in_the_watcher_loses_no_change(running, tree, monkeypatch, caplog):
    server, client = running
    caplog.set_level(logging.INFO, "madace_status.sync")
    watcher = server.service._watcher
    failing = FailOnce(watcher.poll, OSError(5, "Input/output error"))
    monkeypatch.setattr(watcher, "poll", failing)
    tree.write_state("alpha", workflow_document("alpha", "failed", 3, 4))
    settle(server, [client], tree.root)
    assert failing.raised == 1 and client.replica.workflows["alpha"].status == "failed"
    assert_counted_and_logged_once(server, caplog)


def test_a_memory_error_reading_the_story_file_in_the_reader_thread_loses_no_change(running, tree, monkeypatch,
                                                                                      caplog):
    server, client = running
    caplog.set_level(logging.INFO, "madace_status.sync")
    failing = FailOnce(sources_module.load_stories, MemoryError())
    monkeypatch.setattr(sources_module, "load_stories", failing)
    tree.write_stories(harness.story_board(5, 20))
    settle(server, [client], tree.root)
    assert failing.raised == 1 and len(client.replica.stories) == 20
    assert_counted_and_logged_once(server, caplog)


def test_a_failure_half_way_through_publishing_resyncs_every_client(running, tree, monkeypatch, caplog):
    """Some events of the look went out, the rest did not: every client gets a resync snapshot."""
    server, client = running
    caplog.set_level(logging.INFO, "madace_status.sync")
    hub = server.service.hub
    failing = FailOnce(hub.publish, RuntimeError("a bug while publishing"),
                       lambda event_type, *rest: event_type == "stories_updated")
    monkeypatch.setattr(hub, "publish", failing)
    resyncs_before = server.metrics()["madace_resyncs_total"]
    tree.write_state("alpha", workflow_document("alpha", "completed", 4, 4))
    tree.write_stories(harness.story_board(9, 14))
    tree.remove_epic("EPIC-MAM")
    settle(server, [client], tree.root)
    assert failing.raised == 1
    assert server.metrics()["madace_resyncs_total"] > resyncs_before
    assert_counted_and_logged_once(server, caplog)


def test_a_failure_that_persists_is_retried_with_backoff_and_logged_once(running, tree, monkeypatch, caplog):
    server, client = running
    caplog.set_level(logging.INFO, "madace_status.sync")
    failing = FailOnce(server.service._sources.load_all, OSError(28, "No space left on device"), times=10 ** 6)
    monkeypatch.setattr(server.service._sources, "load_all", failing)
    monkeypatch.setattr(service_module, "RESCAN_RETRY_MAX_S", 0.2)
    trigger = FailOnce(sources_module.read_workflow_file, RuntimeError("first failure"))
    monkeypatch.setattr(sources_module, "read_workflow_file", trigger)
    tree.write_state("alpha", workflow_document("alpha", "in_progress", 1, 4))
    waited = harness.wait_until(lambda: failing.raised >= 5, timeout=10)
    assert waited < 5  # backoff from the poll interval doubling to 0.2 s: 5 attempts well within it
    assert len(sync_logs(caplog, logging.ERROR)) == 1
    failing.left = 0  # the cause is gone: the next attempt succeeds
    settle(server, [client], tree.root)
    assert client.replica.workflows["alpha"].current_step == 1
    metrics = server.metrics()
    assert metrics["madace_looks_failed_total"] == failing.raised + 1
    assert len(sync_logs(caplog, logging.ERROR)) == 1  # one traceback for the whole run of failures


def test_a_lost_event_queue_makes_the_next_look_read_everything(tree):
    """inotify's queue overflowed: the events that would have named the changes are gone."""
    server = LiveServer(tree.root, watcher="inotify")
    client = ReplicaClient(server)
    try:
        settle(server, [client], tree.root)
        rescans = server.metrics()["madace_rescans_total"]
        server.on_loop(server.service._watcher.request_full_read)
        tree.write_state("alpha", workflow_document("alpha", "in_progress", 3, 4))
        settle(server, [client], tree.root)
        assert server.metrics()["madace_rescans_total"] == rescans + 1
    finally:
        client.close()
        server.close()


def test_the_watcher_reports_what_it_was_told_to_forget(tmp_path):
    """After reset() the watcher reports every existing path again, as at its first poll."""
    from madace_status.project.loader import ProjectPaths
    from madace_status.sync.detect.watcher import project_watcher
    tree = ProjectTree.copy_of_sample(tmp_path / "project")
    watcher = project_watcher(ProjectPaths(root=tree.root))
    first = watcher.poll()
    assert watcher.poll() == {}
    watcher.reset()
    assert set(watcher.poll()) == set(first) and os.path.isdir(tree.state_dir)
    tree.cleanup()
