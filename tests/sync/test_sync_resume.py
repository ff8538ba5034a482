"""Nothing is lost (README, "Live updates: what is guaranteed"): a client that comes back with the `runId` it saw
and `since=<last seq>` gets exactly the events it missed, in order, and no snapshot; when the run changed or the
events were evicted from the 1024-event ring buffer it gets a `snapshot` with reason "resync" instead."""

import json

from sync_helpers import (
    client_for, fence, kinds, recv_events, recv_json, recv_welcome, run, send_text, seqs, ws_connect)


def make_three_changes(project):
    """state_updated + workflow_started (code-review), then workflow_removed (route-workflow): 3 events."""
    document = project.read_state("code-review")
    document["currentStep"] = 1
    project.write_state("code-review", document)
    project.remove_state("route-workflow")


def test_reconnect_with_since_and_run_id_replays_exactly_the_missed_events(live, project):
    async def scenario():
        async with ws_connect(live.ws_url()) as witness:  # stays connected and sees everything live
            await recv_welcome(witness)
            async with ws_connect(live.ws_url()) as first:
                welcome, _ = await recv_welcome(first)
                run_id = welcome["data"]["runId"]
                document = project.read_state("pm-planning")
                document["currentStep"] = 4
                project.write_state("pm-planning", document)
                seen = await recv_json(first)
                assert seen["seq"] == 1
            make_three_changes(project)  # while disconnected
            live_events = await recv_events(witness, 4)
            assert seqs(live_events) == [1, 2, 3, 4]
            live.wait_seq(4)

            async with ws_connect(live.ws_url("since=1&runId=%s" % run_id)) as again:
                welcome = await recv_json(again)
                assert welcome["type"] == "ping" and welcome["data"]["runId"] == run_id
                replayed = await recv_events(again, 3)
                assert replayed == live_events[1:]  # the very same messages, in order
                assert kinds(replayed) == [("state_updated", "code-review"), ("workflow_started", "code-review"),
                                           ("workflow_removed", "route-workflow")]
                assert await fence(again) == []  # no snapshot, nothing more
                project.write_epic("EPIC-MAM.md", project.read_epic("EPIC-MAM.md").replace("P1", "P0"))
                live_again = await recv_json(again)  # then it is live
                assert live_again["type"] == "epics_updated" and live_again["seq"] == 5
                assert live_again == await recv_json(witness)

    run(scenario)


def test_resume_message_replays_exactly_the_events_after_since_without_snapshot(live, project):
    async def scenario():
        async with client_for("own", live.ws_url()) as ws:
            welcome, _ = await recv_welcome(ws)
            run_id = welcome["data"]["runId"]
            make_three_changes(project)
            live_events = await recv_events(ws, 3)
            assert seqs(live_events) == [1, 2, 3]
            await send_text(ws, json.dumps({"type": "resume", "runId": run_id, "since": 1}))
            replayed = await recv_events(ws, 2)
            assert replayed == live_events[1:]
            assert await fence(ws) == []
            await send_text(ws, json.dumps({"type": "resume", "runId": run_id, "since": 3}))  # up to date
            assert await fence(ws) == []

    run(scenario)


def test_unknown_run_id_or_future_seq_gets_a_resync_snapshot(live, project):
    async def scenario():
        make_three_changes(project)
        live.wait_seq(3)
        resyncs = live.metrics()["madace_resyncs_total"]
        async with ws_connect(live.ws_url("since=1&runId=0123456789abcdef")) as ws:
            welcome = await recv_json(ws)
            assert welcome["type"] == "ping"
            snapshot = await recv_json(ws)
            assert snapshot["type"] == "snapshot" and snapshot["data"]["reason"] == "resync"
            assert snapshot["seq"] == 3
            assert "route-workflow" not in [w["name"] for w in snapshot["data"]["workflows"]]
            assert await fence(ws) == []
            run_id = welcome["data"]["runId"]
            for request in ({"type": "resume", "runId": "not-this-run", "since": 2},
                            {"type": "resume", "runId": run_id, "since": 999}):
                await send_text(ws, json.dumps(request))
                snapshot = await recv_json(ws)
                assert (snapshot["type"], snapshot["data"]["reason"]) == ("snapshot", "resync"), request
                assert await fence(ws) == []
        async with ws_connect(live.ws_url("since=999&runId=%s" % run_id)) as ahead:
            await recv_welcome(ahead, reason="resync")
        assert live.metrics()["madace_resyncs_total"] == resyncs + 4

    run(scenario)


def test_resume_after_a_server_restart_gets_a_resync_snapshot(project, serve):
    first = serve(project.root)

    async def before_restart():
        async with ws_connect(first.ws_url()) as ws:
            welcome, _ = await recv_welcome(ws)
            make_three_changes(project)
            events = await recv_events(ws, 3)
            return welcome["data"]["runId"], events[-1]["seq"]

    old_run, last_seq = run(before_restart)
    first.send_signal()
    assert first.wait(timeout=5) == 0
    second = serve(project.root)

    async def after_restart():
        async with ws_connect(second.ws_url("since=%d&runId=%s" % (last_seq, old_run))) as ws:
            welcome = await recv_json(ws)
            assert welcome["type"] == "ping"
            assert welcome["data"]["runId"] != old_run  # a new run
            snapshot = await recv_json(ws)
            assert (snapshot["type"], snapshot["data"]["reason"]) == ("snapshot", "resync")
            assert snapshot["seq"] == 0  # seq starts again with the run
            names = [w["name"] for w in snapshot["data"]["workflows"]]
            assert "route-workflow" not in names and "code-review" in names
            assert await fence(ws) == []

    run(after_restart)


def test_events_evicted_from_the_ring_buffer_get_a_resync_and_kept_ones_replay(live, project):
    """1,200 events (600 new workflows appearing) overflow the 1,024-event ring buffer."""
    run_id = live.get_json("/api/sync")["runId"]
    for index in range(600):
        project.write_state("bulk-%03d" % index, {"workflow": "bulk-%03d" % index, "currentStep": 1,
                                                  "totalSteps": 2, "status": "in_progress"}, atomic=True)
    live.wait_seq(1200, timeout=20)
    oldest_kept = 1200 - 1024 + 1

    async def scenario():
        async with ws_connect(live.ws_url("since=0&runId=%s" % run_id)) as evicted:
            _, snapshot = await recv_welcome(evicted, reason="resync")
            assert snapshot["seq"] == 1200
            assert len(snapshot["data"]["workflows"]) == 605
            assert await fence(evicted) == []

            await send_text(evicted, json.dumps({"type": "resume", "runId": run_id, "since": oldest_kept - 2}))
            snapshot = await recv_json(evicted)  # one event short of complete: resync
            assert (snapshot["type"], snapshot["data"]["reason"]) == ("snapshot", "resync")
            assert await fence(evicted) == []

            await send_text(evicted, json.dumps({"type": "resume", "runId": run_id, "since": oldest_kept - 1}))
            replayed = await recv_events(evicted, 1024, timeout=10)  # exactly everything kept
            assert seqs(replayed) == list(range(oldest_kept, 1201))
            assert await fence(evicted) == []

        async with ws_connect(live.ws_url("since=1190&runId=%s" % run_id)) as recent:
            assert (await recv_json(recent))["type"] == "ping"
            replayed = await recv_events(recent, 10)
            assert seqs(replayed) == list(range(1191, 1201))
            assert await fence(recent) == []

    run(scenario)

    everything = live.get_json("/api/activity?limit=2000")  # clamped to the ring's 1,024
    assert everything["count"] == 1024
    assert [event["seq"] for event in everything["events"]] == list(range(1200, oldest_kept - 1, -1))
    assert [event["seq"] for event in live.get_json("/api/activity")["events"]] == list(range(1200, 1180, -1))
    assert [event["seq"] for event in live.get_json("/api/activity?limit=1")["events"]] == [1200]
