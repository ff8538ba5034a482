"""Every route of README, "HTTP API", over real HTTP against a `serve` process: answers, the error envelope, the
headers, /metrics as Prometheus text, and POST /api/sync start/stop/restart."""

import datetime
import json
import re
import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed

from madace_status.websocket import HandshakeError
from madace_status.websocket import connect as madace_connect
from sync_helpers import (
    ProjectFiles, ServeProcess, client_for, free_port, parse_prometheus, raw_http, recv_json,
    recv_welcome, run, serve_args, upgrade_request, ws_connect)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One server for the read-only route tests of this module."""
    project = ProjectFiles.copy_of_sample(tmp_path_factory.mktemp("api") / "project")
    server = ServeProcess(serve_args(project.root)).wait_started()
    yield server
    server.stop()


def assert_api_headers(response):
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


def assert_error(response, status, code):
    assert response.status == status, response
    assert_api_headers(response)
    document = response.json()
    assert document["success"] is False
    assert document["code"] == code
    assert isinstance(document["error"], str) and document["error"]
    return document


def iso_age_s(text):
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return time.time() - moment.timestamp()


# -- pages ---------------------------------------------------------------------------------------------------------

def test_root_redirects_to_the_dashboard_keeping_the_query(api):
    response = api.get("/")
    assert response.status == 302 and response.headers["location"] == "/status"
    assert api.get("/?token=abc").headers["location"] == "/status?token=abc"


@pytest.mark.parametrize("path", ["/status", "/sync-status"])
def test_pages_are_html_with_a_self_only_csp_that_allows_the_websocket(api, path):
    response = api.get(path)
    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    csp = response.headers["content-security-policy"]
    directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self' ws://127.0.0.1:%d" % api.ws_port
    assert "http" not in directives["script-src"] and "http" not in directives["style-src"]
    assert b"{{" not in response.body  # every placeholder filled


def test_healthz_answers_ok(api):
    response = api.get("/healthz")
    assert response.status == 200
    assert response.body.strip() == b"ok"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/static/status.html", "/web/static/status.html",
                                  "/../../etc/passwd", "/status/../../pyproject.toml", "/api"])
def test_unknown_routes_are_a_404_json_envelope_and_no_file_is_served(api, path):
    assert_error(api.get(path), 404, "NOT_FOUND")


@pytest.mark.parametrize("method,path", [("POST", "/api/status"), ("PUT", "/api/sync"), ("DELETE", "/api/sync"),
                                         ("POST", "/healthz")])
def test_wrong_method_is_a_405_json_envelope(api, method, path):
    assert_error(api.http(method, path, b"{}"), 405, "METHOD_NOT_ALLOWED")


# -- /api/status ---------------------------------------------------------------------------------------------------

def test_api_status_is_the_summary_envelope(api):
    response = api.get("/api/status")
    assert response.status == 200
    assert_api_headers(response)
    document = response.json()
    assert set(document) == {"entityType", "entityId", "data", "timestamp", "warnings", "errors"}
    assert document["entityType"] == "summary"
    assert document["data"]["total"] == {"count": 11, "points": 32}
    assert document["data"]["workflowCount"] == 5 and document["data"]["epicCount"] == 3
    assert iso_age_s(document["timestamp"]) < 60


@pytest.mark.parametrize("path,entity_type,entity_id", [
    ("story/STORY-V3-020", "story", "STORY-V3-020"),
    ("story/story-v3-020", "story", "STORY-V3-020"),
    ("story/US-014", "story", "US-014"),
    ("epic/EPIC-MAM", "epic", "EPIC-MAM"),
    ("epic/epic-v3-002", "epic", "EPIC-V3-002"),
    ("workflow/pm-planning", "workflow", "pm-planning"),
    ("workflow/code-review", "workflow", "code-review"),
    ("state-machine/current", "summary", None),
])
def test_api_entity_answers_each_type(api, path, entity_type, entity_id):
    response = api.get("/api/status/" + path)
    assert response.status == 200, response
    assert_api_headers(response)
    document = response.json()
    assert document["success"] is True
    assert document["result"]["entityType"] == entity_type
    assert document["result"]["entityId"] == entity_id
    if entity_type == "workflow":
        assert document["result"]["data"]["name"] == entity_id


@pytest.mark.parametrize("path,suggested", [
    ("story/STORY-V3-02", "STORY-V3-020"),
    ("epic/EPIC-V3-00", "EPIC-V3-002"),
    ("workflow/pm-plan", "pm-planning"),
    ("epic/STORY-V3-020", None),  # the type is honoured: a story id is no epic
    ("workflow/STORY-V3-020", None),
    ("story/EPIC-MAM", None),
])
def test_api_entity_not_found_is_404_with_suggestions(api, path, suggested):
    document = assert_error(api.get("/api/status/" + path), 404, "ENTITY_NOT_FOUND")
    assert isinstance(document["suggestions"], list)
    if suggested:
        assert suggested in document["suggestions"]


@pytest.mark.parametrize("path", ["/api/status/bogus/x", "/api/status/stories/STORY-V3-020",
                                  "/api/status/summary/x", "/api/status/Story/STORY-V3-020"])
def test_api_entity_unknown_type_is_400_invalid_type(api, path):
    document = assert_error(api.get(path), 400, "INVALID_TYPE")
    assert document["validTypes"] == ["epic", "state-machine", "story", "workflow"]


@pytest.mark.parametrize("entity_id", [
    "A" * 201, "a%2Fb", "a%2fb", "a%5Cb", "a\\b", "..", "a..b", "%2E%2E", "%00", "a%00b", "a%01b", "%1F", "%7F",
    "a%0Ab", "a%0D%0Ab", "a%C2%85b", "%FF",
])
def test_api_entity_bad_id_is_400_validation_error(api, entity_id):
    assert_error(api.get("/api/status/story/" + entity_id), 400, "VALIDATION_ERROR")


def test_api_entity_missing_id_is_400_and_200_chars_is_looked_up(api):
    assert_error(api.get("/api/status/story/"), 400, "VALIDATION_ERROR")
    assert_error(api.get("/api/status/story"), 400, "VALIDATION_ERROR")
    assert_error(api.get("/api/status/story/" + "A" * 200), 404, "ENTITY_NOT_FOUND")


# -- /api/sync and /metrics ----------------------------------------------------------------------------------------

def test_api_sync_reports_the_running_service_and_its_clients(api):
    async def scenario():
        async with ws_connect(api.ws_url("source=cli&topics=stories,epics")) as ws:
            welcome, _ = await recv_welcome(ws)
            response = api.get("/api/sync")
            assert response.status == 200
            assert_api_headers(response)
            info = response.json()
            for key in ("running", "wsPort", "wsUrl", "runId", "seq", "uptimeSeconds", "startedAt", "clientCount",
                        "clients"):
                assert key in info, key
            assert info["running"] is True
            assert info["wsPort"] == api.ws_port
            assert info["wsUrl"] == "ws://127.0.0.1:%d/ws" % api.ws_port
            assert info["runId"] == welcome["data"]["runId"] and re.match(r"\A[0-9a-f]{16}\Z", info["runId"])
            assert info["seq"] == 0
            assert 0 <= info["uptimeSeconds"] < 120  # seconds since start, not the time of day
            assert 0 <= iso_age_s(info["startedAt"]) < 120
            assert abs(iso_age_s(info["startedAt"]) - info["uptimeSeconds"]) < 2
            assert info["clientCount"] == 1
            client = info["clients"][0]
            assert client["id"] == welcome["data"]["clientId"]
            assert client["source"] == "cli"
            assert client["topics"] == ["epics", "stories"]
            assert client["remote"].startswith("127.0.0.1:")
            assert 0 <= iso_age_s(client["connectedAt"]) < 60 and 0 <= iso_age_s(client["lastSeen"]) < 60
            later = api.get_json("/api/sync")["uptimeSeconds"]
            assert later >= info["uptimeSeconds"]

    run(scenario)


def test_host_header_names_the_websocket_url(api):
    info = api.get_json("/api/sync", headers={"Host": "localhost:%d" % api.http_port})
    assert info["wsUrl"] == "ws://localhost:%d/ws" % api.ws_port


def test_metrics_are_prometheus_text_with_every_required_family(api):
    response = api.get("/metrics")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples, types = parse_prometheus(response.body.decode("utf-8"))
    for name in ("madace_connections", "madace_messages_sent_total", "madace_bytes_sent_total", "madace_events_total",
                 "madace_events_dropped_total", "madace_resyncs_total", "madace_poll_duration_seconds",
                 "madace_broadcast_duration_seconds"):
        assert name in types, name
    assert types["madace_messages_sent_total"] == "counter"
    assert types["madace_connections"] == "gauge"
    assert samples["madace_poll_duration_seconds_count"] >= 1
    assert samples["madace_sync_running"] == 1


def test_metrics_count_connections_messages_and_events(live, project):
    before = live.metrics()

    async def scenario():
        async with ws_connect(live.ws_url()) as ws:
            await recv_welcome(ws)
            assert live.metrics()["madace_connections"] == before["madace_connections"] + 1
            document = project.read_state("pm-planning")
            document["currentStep"] = 4
            project.write_state("pm-planning", document)
            await recv_json(ws)

    run(scenario)
    after = live.metrics()
    assert after["madace_connections_total"] == before["madace_connections_total"] + 1
    assert after["madace_events_total"] == before["madace_events_total"] + 1
    assert after["madace_messages_sent_total"] == before["madace_messages_sent_total"] + 3  # ping, snapshot, event
    assert after["madace_bytes_sent_total"] > before["madace_bytes_sent_total"] + 1000
    assert after["madace_broadcast_duration_seconds_count"] == before["madace_broadcast_duration_seconds_count"] + 1
    assert after["madace_seq"] == 1


# -- /api/activity -------------------------------------------------------------------------------------------------

def test_activity_is_the_real_event_log_newest_first_with_a_clamped_limit(live, project):
    for index in range(13):  # 26 events: state_updated + workflow_started each
        project.write_state("flow-%02d" % index, {"workflow": "flow-%02d" % index, "status": "in_progress",
                                                  "currentStep": 1, "totalSteps": 2}, atomic=True)
    live.wait_seq(26)
    default = live.get("/api/activity")
    assert default.status == 200
    assert_api_headers(default)
    document = default.json()
    assert document["success"] is True and document["count"] == 20
    assert [e["seq"] for e in document["events"]] == list(range(26, 6, -1))
    newest = document["events"][0]
    assert set(newest) == {"type", "timestamp", "seq", "data"}
    assert (newest["type"], newest["data"]["workflowName"]) == ("workflow_started", "flow-12")
    assert [e["seq"] for e in live.get_json("/api/activity?limit=1")["events"]] == [26]
    assert live.get_json("/api/activity?limit=2000")["count"] == 26  # 2000 is clamped to 1024; 26 exist
    for bad in ("abc", "0", "-1", "1.5", "", "%201"):
        assert_error(live.get("/api/activity?limit=" + bad), 400, "VALIDATION_ERROR")


def test_activity_brief_drops_the_story_list_and_keeps_what_the_feed_shows(live, project):
    project.write_stories(project.read_stories().replace("[STORY-V3-020]", "[STORY-V3-020-MOVED]", 1))
    live.wait_seq(1)
    full = live.get_json("/api/activity")["events"][0]
    brief = live.get_json("/api/activity?brief=1")["events"][0]
    assert full["type"] == brief["type"] == "stories_updated"
    assert "stories" not in brief["data"] and brief["data"]["storyCount"] == len(full["data"]["stories"]) > 0
    assert brief["data"]["changes"] == full["data"]["changes"] and brief["data"]["summary"] == full["data"]["summary"]
    assert (brief["seq"], brief["timestamp"]) == (full["seq"], full["timestamp"])
    assert live.get_json("/api/activity?brief=0")["events"][0] == full
    for bad in ("2", "yes", "", "%201"):
        assert_error(live.get("/api/activity?brief=" + bad), 400, "VALIDATION_ERROR")


# -- POST /api/sync ------------------------------------------------------------------------------------------------

def post_action(server, document, status=200):
    response = server.post_json("/api/sync", document)
    assert response.status == status, response
    assert_api_headers(response)
    return response.json()


def test_post_sync_stop_start_and_restart(live, project):
    ws_port = live.ws_port
    first_run = live.get_json("/api/sync")["runId"]

    async def scenario():
        async with client_for("own", live.ws_url()) as own, ws_connect(live.ws_url()) as library:
            await recv_welcome(own)
            await recv_welcome(library)
            stopped = post_action(live, {"action": "stop"})
            assert stopped == {"success": True, "message": stopped["message"], "running": False, "wsPort": ws_port,
                               "clientCount": 0}
            try:
                await recv_json(library)
                raise AssertionError("still open after stop")
            except ConnectionClosed as closed:
                assert closed.rcvd.code == 1001
            assert (await own.wait_closed()) is None and own.close_code == 1001

        # While stopped the port answers every handshake 503 with the reason (README, "The WebSocket protocol"), for
        # both clients.
        refusal = raw_http(ws_port, upgrade_request(ws_port))
        assert refusal.status == 503 and b"sync service is stopped" in refusal.body
        with pytest.raises(HandshakeError) as refused:
            await madace_connect(live.ws_url())
        assert refused.value.status == 503 and "stopped" in str(refused.value)
        info = live.get_json("/api/sync")
        assert (info["running"], info["runId"], info["uptimeSeconds"], info["startedAt"]) == (False, None, 0, None)
        assert info["clientCount"] == 0
        assert live.metrics()["madace_sync_running"] == 0
        again = post_action(live, {"action": "stop"})
        assert again["success"] is True and again["running"] is False and "already" in again["message"]
        # The project is still served from the files while the sync service is stopped.
        document = project.read_state("pm-planning")
        document["currentStep"] = 4
        project.write_state("pm-planning", document)
        assert live.get_json("/api/status/workflow/pm-planning")["result"]["data"]["currentStep"] == 4

        started = post_action(live, {"action": "start"})
        assert started["success"] is True and started["running"] is True and started["wsPort"] == ws_port
        second_run = live.get_json("/api/sync")["runId"]
        assert second_run != first_run
        async with ws_connect(live.ws_url("since=0&runId=%s" % first_run)) as ws:
            await recv_welcome(ws, reason="resync")  # the run changed: resync
            restarted = post_action(live, {"action": "restart"})
            assert restarted["running"] is True and restarted["wsPort"] == ws_port
            try:
                await recv_json(ws)
                raise AssertionError("still open after restart")
            except ConnectionClosed as closed:
                assert closed.rcvd.code == 1001 and "restart" in closed.rcvd.reason
        third_run = live.get_json("/api/sync")["runId"]
        assert third_run not in (first_run, second_run)
        async with ws_connect(live.ws_url("since=0&runId=%s" % second_run)) as ws:
            await recv_welcome(ws, reason="resync")
        again = post_action(live, {"action": "start"})
        assert again["running"] is True and "already" in again["message"]

    run(scenario)


def test_post_sync_start_on_a_busy_port_fails_and_reports_not_running(live):
    post_action(live, {"action": "stop"})
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        failed = post_action(live, {"action": "start", "wsPort": port}, status=409)
        assert failed["success"] is False and failed["running"] is False
        assert failed["code"] == "SYNC_ACTION_FAILED" and str(port) in failed["error"]
        info = live.get_json("/api/sync")
        assert info["running"] is False and info["lastError"]
    port = free_port()
    started = post_action(live, {"action": "start", "wsPort": port})
    assert started["running"] is True and started["wsPort"] == port
    conflict = post_action(live, {"action": "start", "wsPort": live.ws_port}, status=409)
    assert conflict["running"] is True and "restart" in conflict["error"]

    async def scenario():
        async with ws_connect(live.ws_url(port=port)) as ws:
            await recv_welcome(ws)

    run(scenario)


@pytest.mark.parametrize("body,code", [
    (b"{not json", "INVALID_JSON"), (b"[1]", "INVALID_JSON"), (b"\xff\xfe", "INVALID_JSON"),
    (json.dumps({"action": "reboot"}).encode(), "INVALID_ACTION"), (b"{}", "INVALID_ACTION"),
    (json.dumps({"action": 1}).encode(), "INVALID_ACTION"),
    (json.dumps({"action": "start", "wsPort": "3001"}).encode(), "VALIDATION_ERROR"),
    (json.dumps({"action": "start", "wsPort": 70000}).encode(), "VALIDATION_ERROR"),
    (json.dumps({"action": "start", "wsPort": True}).encode(), "VALIDATION_ERROR"),
])
def test_post_sync_bad_request_is_400(api, body, code):
    response = api.http("POST", "/api/sync", body, {"Content-Type": "application/json"})
    assert_error(response, 400, code)
    assert api.get_json("/api/sync")["running"] is True


def test_activity_outlives_a_stopped_sync_service(live, project):
    project.remove_state("route-workflow")
    live.wait_seq(1)
    post_action(live, {"action": "stop"})
    events = live.get_json("/api/activity")["events"]
    assert [(e["type"], e["seq"]) for e in events] == [("workflow_removed", 1)]
    assert live.metrics()["madace_events_total"] == 1  # and the counters of the run are still shown
    with socket.socket() as busy:  # a start that fails does not lose them either
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        post_action(live, {"action": "start", "wsPort": busy.getsockname()[1]}, status=409)
    assert [e["seq"] for e in live.get_json("/api/activity")["events"]] == [1]


def test_activity_outlives_a_restart_and_a_failed_start_and_new_events_come_first(live, project):
    project.remove_state("route-workflow")
    live.wait_seq(1)
    first_run = live.get_json("/api/sync")["runId"]
    post_action(live, {"action": "restart"})
    assert live.get_json("/api/sync")["runId"] != first_run and live.get_json("/api/sync")["seq"] == 0
    events = live.get_json("/api/activity")["events"]
    assert [(e["type"], e["seq"]) for e in events] == [("workflow_removed", 1)]  # the last run's, kept

    project.remove_state("code-review")
    live.wait_seq(1)  # the new run's first event
    events = live.get_json("/api/activity")["events"]
    assert [(e["type"], e["data"]["workflowName"]) for e in events] == [
        ("workflow_removed", "code-review"), ("workflow_removed", "route-workflow")]
    assert events[0]["timestamp"] >= events[1]["timestamp"]  # newest first, across runs

    post_action(live, {"action": "stop"})
    with socket.socket() as busy:  # a start that fails keeps both runs' events
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        post_action(live, {"action": "start", "wsPort": busy.getsockname()[1]}, status=409)
    post_action(live, {"action": "start"})
    assert len(live.get_json("/api/activity")["events"]) == 2


@pytest.mark.parametrize("request_bytes,status,code", [
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414, "URI_TOO_LONG"),
    (b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431, "HEADERS_TOO_LARGE"),
    (b"POST /api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n", 413, "PAYLOAD_TOO_LARGE"),
    (b"POST /api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 411, "VALIDATION_ERROR"),
], ids=["uri-too-long", "header-too-large", "body-too-large", "no-content-length"])
def test_oversized_or_incomplete_requests_get_the_json_envelope(api, request_bytes, status, code):
    response = raw_http(api.http_port, request_bytes)
    assert response.status == status, response
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(response.body)["code"] == code


def test_head_answers_the_headers_without_a_body(api):
    response = raw_http(api.http_port, b"HEAD /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert response.status == 200 and response.body == b""
    assert int(response.headers["content-length"]) > 100
