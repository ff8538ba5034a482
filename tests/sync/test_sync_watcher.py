"""Change detection by kernel events (`--watcher`): a real `serve` on a copy of the sample project, its files
written as engines and editors write them, the watcher in use and its fallback shown by /api/sync and /metrics."""

import json
import os
import shutil
import sys

import pytest

from sync_helpers import STATE_DIR, fence, kinds, recv_events, recv_json, recv_until, recv_welcome, run, ws_connect

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="inotify is Linux's; the poller is tested everywhere")
NO_INOTIFY_ENV = "MADACE_STATUS_TEST_NO_INOTIFY"
# A long poll interval: what arrives quickly was brought by an event or the safety rescan, not by the poller.
SLOW_POLL = "30"


def test_auto_uses_inotify_and_says_so(project, serve):
    server = serve(project.root, poll=SLOW_POLL)
    sync = server.get_json("/api/sync")
    assert (sync["watcher"], sync["watcherRequested"], sync["watcherFallback"]) == ("inotify", "auto", None)
    metrics = server.metrics()
    assert metrics["madace_watcher_inotify"] == 1 and metrics["madace_watcher_fallback"] == 0
    assert "change detection: inotify" in server.stderr_text


@pytest.mark.parametrize("flags", [("--watcher", "inotify"), ()])
def test_unavailable_inotify_falls_back_to_polling_with_the_reason(project, serve, flags):
    server = serve(project.root, *flags, env={NO_INOTIFY_ENV: "1"})
    sync = server.get_json("/api/sync")
    assert sync["watcher"] == "poll" and NO_INOTIFY_ENV in sync["watcherFallback"]
    assert server.metrics()["madace_watcher_fallback"] == 1
    assert "fallback: inotify disabled" in server.stderr_text

    async def scenario():  # and polling works
        async with ws_connect(server.ws_url()) as ws:
            await recv_welcome(ws)
            document = project.read_state("pm-planning")
            document["currentStep"] = 1
            project.write_state("pm-planning", document)
            (updated,) = await recv_events(ws, 1)
            assert kinds([updated]) == [("state_updated", "pm-planning")]

    run(scenario)


def test_explicit_poll_is_polling_without_a_fallback(project, serve):
    sync = serve(project.root, "--watcher", "poll").get_json("/api/sync")
    assert (sync["watcher"], sync["watcherFallback"]) == ("poll", None)


def _truncate_then_write(project, document):
    path = project.state_path("pm-planning")
    with open(path, "r+") as handle:
        handle.truncate(0)
        handle.flush()
        handle.write(json.dumps(document))


WRITES = {
    "in_place": lambda project, document: project.write_state("pm-planning", document),
    "atomic_rename": lambda project, document: project.write_state("pm-planning", document, atomic=True),
    "truncate_then_write": _truncate_then_write,
}


@pytest.mark.parametrize("how", sorted(WRITES))
def test_each_way_of_writing_a_state_file_is_one_update(project, serve, how):
    server = serve(project.root, poll=SLOW_POLL)

    async def scenario():
        async with ws_connect(server.ws_url()) as ws:
            await recv_welcome(ws)
            document = project.read_state("pm-planning")
            document["currentStep"] = 1
            WRITES[how](project, document)
            messages = await recv_until(ws, lambda m: m["type"] == "state_updated")
            assert kinds(messages[-1:]) == [("state_updated", "pm-planning")]
            assert messages[-1]["data"]["state"]["currentStep"] == 1
            assert all(m["type"] != "workflow_invalid" for m in messages)

    run(scenario)


def test_delete_and_recreate_a_state_file(project, serve):
    server = serve(project.root, poll=SLOW_POLL)

    async def scenario():
        async with ws_connect(server.ws_url()) as ws:
            await recv_welcome(ws)
            document = project.read_state("code-review")
            project.remove_state("code-review")
            removed = await recv_json(ws)
            assert kinds([removed]) == [("workflow_removed", "code-review")]
            project.write_state("code-review", document, atomic=True)
            messages = await recv_until(ws, lambda m: m["type"] == "state_updated")
            assert kinds(messages[-1:]) == [("state_updated", "code-review")]

    run(scenario)


def test_state_directory_deleted_and_recreated_is_watched_again(project, serve):
    server = serve(project.root, poll=SLOW_POLL)
    state_dir = project.path(STATE_DIR)
    saved = project.read_state("pm-planning")

    async def scenario():
        async with ws_connect(server.ws_url()) as ws:
            await recv_welcome(ws)
            shutil.rmtree(state_dir)
            removed = []
            await recv_until(ws, lambda m: removed.append(m["type"]) or removed.count("workflow_removed") == 5)
            os.makedirs(state_dir)
            project.write_state("pm-planning", saved)
            messages = await recv_until(ws, lambda m: m["type"] == "state_updated")
            assert kinds(messages[-1:]) == [("state_updated", "pm-planning")]
            saved["currentStep"] = 1
            project.write_state("pm-planning", saved)  # the new directory is watched, not only polled
            messages = await recv_until(ws, lambda m: m["type"] == "state_updated")
            assert messages[-1]["data"]["state"]["currentStep"] == 1

    run(scenario)


def test_a_symlinked_state_directory_is_watched_through_the_link(project, serve, tmp_path):
    real = project.path("data", "real-states")  # inside the root: a link leading out is refused (test below)
    os.makedirs(os.path.dirname(real))
    shutil.move(project.path(STATE_DIR), real)
    os.symlink(real, project.path(STATE_DIR))
    server = serve(project.root, poll=SLOW_POLL)

    async def scenario():
        async with ws_connect(server.ws_url()) as ws:
            await recv_welcome(ws)
            with open(os.path.join(real, ".pm-planning.state.json"), encoding="utf-8") as handle:
                document = json.load(handle)
            document["currentStep"] = 1
            with open(os.path.join(real, ".pm-planning.state.json"), "w", encoding="utf-8") as handle:
                json.dump(document, handle)
            messages = await recv_until(ws, lambda m: m["type"] == "state_updated")
            assert kinds(messages[-1:]) == [("state_updated", "pm-planning")]
            assert messages[-1]["data"]["state"]["currentStep"] == 1

    run(scenario)


def test_a_state_directory_linked_out_of_the_root_is_refused_by_a_running_serve(project, serve, tmp_path):
    outside = str(tmp_path / "outside-states")
    shutil.move(project.path(STATE_DIR), outside)
    os.symlink(outside, project.path(STATE_DIR))
    server = serve(project.root, poll=SLOW_POLL)
    summary = server.get_json("/api/status")
    assert summary["data"]["workflows"] == []
    assert any("symlink points outside the project root" in e for e in summary["errors"]), summary["errors"]
    with open(os.path.join(outside, ".pm-planning.state.json"), "a", encoding="utf-8") as handle:
        handle.write(" ")  # a change beyond the link is never read either
    server.wait_polls(2)
    assert server.get_json("/api/status")["data"]["workflows"] == []


def test_story_file_replaced_by_an_editor_and_epics_added_and_removed(project, serve):
    server = serve(project.root, poll=SLOW_POLL)

    async def scenario():
        async with ws_connect(server.ws_url()) as ws:
            await recv_welcome(ws)
            text = project.read_stories().replace("## BACKLOG", "## BACKLOG\n\n- [ ] **[WATCH-001]** watched story | 1 points", 1)
            project.write_stories(text, atomic=True)
            messages = await recv_until(ws, lambda m: m["type"] == "stories_updated")
            assert "WATCH-001" in json.dumps(messages[-1]["data"])
            epic = project.read_epic("EPIC-MAM.md")
            project.write_epic("EPIC-NEW.md", epic.replace("EPIC-MAM", "EPIC-NEW"))
            messages = await recv_until(ws, lambda m: m["type"] == "epics_updated")
            assert "EPIC-NEW" in json.dumps(messages[-1]["data"])
            os.remove(project.epic_path("EPIC-NEW.md"))
            messages = await recv_until(ws, lambda m: m["type"] == "epics_updated")
            assert messages[-1]["data"]["removed"] == ["EPIC-NEW"]

    run(scenario)


BURST_FILES = 100
BURST_ROUNDS = 10  # 1,000 writes in all
BURST_CLIENTS = 5


def _burst_document(name, step):
    return {"workflowName": name, "currentStep": step, "completed": False, "variables": {"_TOTAL_STEPS": 20}}


def test_a_burst_of_writes_converges_on_every_client_without_invalid_events(project, serve):
    names = ["burst-%03d" % index for index in range(BURST_FILES)]
    for name in names:
        project.write_state(name, _burst_document(name, 0))
    server = serve(project.root)

    async def client(ready, go):
        async with ws_connect(server.ws_url()) as ws:
            await recv_welcome(ws)
            ready.append(True)
            await go.wait()
            latest = {}
            seen_types = set()

            def done(message):
                seen_types.add(message["type"])
                assert message["type"] not in ("workflow_invalid", "snapshot"), message["type"]
                if message["type"] == "state_updated":
                    latest[message["data"]["workflowName"]] = message["data"]["state"]["currentStep"]
                return all(latest.get(name) == BURST_ROUNDS for name in names)
            await recv_until(ws, done, timeout=30)
            return seen_types

    async def scenario():
        import asyncio
        ready, go = [], asyncio.Event()
        tasks = [asyncio.ensure_future(client(ready, go)) for _ in range(BURST_CLIENTS)]
        while len(ready) < BURST_CLIENTS:
            await asyncio.sleep(0.01)
        go.set()
        for step in range(1, BURST_ROUNDS + 1):  # in place (truncate, then write), as fast as the disk allows
            for name in names:
                project.write_state(name, _burst_document(name, step))
            await asyncio.sleep(0.05)  # let the clients read: ~1 s for the whole burst on a loaded machine
        for types in await asyncio.gather(*tasks):
            assert "workflow_invalid" not in types

    run(scenario, timeout=60)
