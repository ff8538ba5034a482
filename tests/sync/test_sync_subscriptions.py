"""Subscriptions (README, "The WebSocket protocol"): a client only receives the events of the topics (and workflows) it
subscribed to, from the `topics` query parameter or a `subscribe` message, and its snapshot is filtered the same way."""

import json

from sync_helpers import (
    client_for, fence, kinds, raw_http, recv_json, recv_welcome, run, send_text, upgrade_request, ws_connect)


def advance(project, name, step):
    document = project.read_state(name)
    document["currentStep"] = step
    project.write_state(name, document)


def test_topics_stories_gets_no_workflow_events_and_a_stories_only_snapshot(live, project):
    async def scenario():
        async with ws_connect(live.ws_url("topics=stories")) as stories_only, ws_connect(live.ws_url()) as everything:
            _, snapshot = await recv_welcome(stories_only)
            await recv_welcome(everything)
            assert "workflows" not in snapshot["data"] and "epics" not in snapshot["data"]
            assert len(snapshot["data"]["stories"]) == 11
            assert "summary" in snapshot["data"]

            advance(project, "pm-planning", 4)  # seq 1: a workflow event
            assert kinds([await recv_json(everything)]) == [("state_updated", "pm-planning")]
            project.write_epic("EPIC-MAM.md", project.read_epic("EPIC-MAM.md").replace("P1", "P0"))  # seq 2
            assert (await recv_json(everything))["type"] == "epics_updated"
            project.write_stories(project.read_stories().replace("## TODO", "## TODO\n\n- [TASK-090] Extra [Points: 1]",
                                                                 1))
            message = await recv_json(stories_only)  # seq 3: the first thing it receives
            assert (message["type"], message["seq"]) == ("stories_updated", 3)
            assert (await recv_json(everything))["seq"] == 3
            assert await fence(stories_only) == []

    run(scenario)


def test_topics_workflows_and_epics_get_only_their_events(live, project):
    async def scenario():
        async with ws_connect(live.ws_url("topics=epics")) as epics_only, \
                client_for("own", live.ws_url("topics=workflows,stories")) as no_epics:
            _, epics_snapshot = await recv_welcome(epics_only)
            _, other_snapshot = await recv_welcome(no_epics)
            assert sorted(epics_snapshot["data"]) == ["epics", "errors", "reason", "summary", "warnings"]
            assert "epics" not in other_snapshot["data"]
            assert "workflows" in other_snapshot["data"] and "stories" in other_snapshot["data"]
            project.write_epic("EPIC-MAM.md", project.read_epic("EPIC-MAM.md").replace("P1", "P0"))  # seq 1
            message = await recv_json(epics_only)
            assert (message["type"], message["seq"]) == ("epics_updated", 1)
            advance(project, "pm-planning", 4)  # seq 2
            message = await recv_json(no_epics)
            assert (message["type"], message["seq"]) == ("state_updated", 2)
            assert await fence(epics_only) == []
            assert await fence(no_epics) == []

    run(scenario)


def test_subscribe_message_with_workflows_gets_only_that_workflows_events(live, project):
    async def scenario():
        async with ws_connect(live.ws_url()) as ws:
            await recv_welcome(ws)
            await send_text(ws, json.dumps({"type": "subscribe", "topics": ["workflows"],
                                            "workflows": ["code-review"]}))
            snapshot = await recv_json(ws)
            assert snapshot["type"] == "snapshot" and snapshot["data"]["reason"] == "subscribed"
            assert [w["name"] for w in snapshot["data"]["workflows"]] == ["code-review"]
            assert "stories" not in snapshot["data"] and "epics" not in snapshot["data"]

            advance(project, "pm-planning", 4)  # another workflow: 1 event
            project.write_stories(project.read_stories().replace("@dana", "@erin"))  # stories: 1 event
            advance(project, "code-review", 1)  # state_updated + workflow_started
            first, second = await recv_json(ws), await recv_json(ws)
            assert kinds([first, second]) == [("state_updated", "code-review"), ("workflow_started", "code-review")]
            assert second["seq"] == first["seq"] + 1
            live.wait_seq(4)  # all four published…
            assert await fence(ws) == []  # …and only those two sent to this client

            clients = live.get_json("/api/sync")["clients"]
            assert clients[0]["topics"] == ["workflows"]

            await send_text(ws, json.dumps({"type": "subscribe"}))  # back to everything
            snapshot = await recv_json(ws)
            assert snapshot["data"]["reason"] == "subscribed"
            assert len(snapshot["data"]["workflows"]) == 5 and len(snapshot["data"]["stories"]) == 11

    run(scenario)


def test_invalid_subscriptions_are_refused_and_the_old_one_kept(live, project):
    async def scenario():
        async with ws_connect(live.ws_url("topics=stories")) as ws:
            await recv_welcome(ws)
            for request in ({"type": "subscribe", "topics": ["weather"]},
                            {"type": "subscribe", "topics": 7},
                            {"type": "subscribe", "workflows": [1, 2]}):
                await send_text(ws, json.dumps(request))
                error = await recv_json(ws)
                assert error["type"] == "error" and error["data"]["code"] == "INVALID_SUBSCRIPTION", request
            advance(project, "pm-planning", 4)
            project.write_stories(project.read_stories().replace("@dana", "@erin"))
            message = await recv_json(ws)
            assert (message["type"], message["seq"]) == ("stories_updated", 2)  # still stories only

    run(scenario)
    refused = raw_http(live.ws_port, upgrade_request(live.ws_port, "/ws?topics=weather"))
    assert refused.status == 400
    assert b"weather" in refused.body


def test_workflows_query_and_resume_replay_are_filtered_like_live_events(live, project):
    async def scenario():
        async with ws_connect(live.ws_url("workflows=code-review")) as one_workflow:
            welcome, snapshot = await recv_welcome(one_workflow)
            run_id = welcome["data"]["runId"]
            assert [w["name"] for w in snapshot["data"]["workflows"]] == ["code-review"]
            assert len(snapshot["data"]["stories"]) == 11  # other topics are still all there
            advance(project, "pm-planning", 4)
            live.wait_seq(1)
            project.write_epic("EPIC-MAM.md", project.read_epic("EPIC-MAM.md").replace("P1", "P0"))
            message = await recv_json(one_workflow)
            assert (message["type"], message["seq"]) == ("epics_updated", 2)  # pm-planning's event skipped
            advance(project, "code-review", 1)
            assert kinds([await recv_json(one_workflow), await recv_json(one_workflow)]) == [
                ("state_updated", "code-review"), ("workflow_started", "code-review")]

        async with ws_connect(live.ws_url("topics=epics&since=0&runId=%s" % run_id)) as epics_only:
            assert (await recv_json(epics_only))["type"] == "ping"
            replayed = await recv_json(epics_only)
            assert (replayed["type"], replayed["seq"]) == ("epics_updated", 2)  # only its topic is replayed
            assert await fence(epics_only) == []

    run(scenario)
