"""The `serve` process as a user runs it (README, "`madace-status serve`"): --no-sync, shutdown on SIGTERM/SIGINT with
close 1001 to every client, a busy port, a non-loopback bind without a token, usage errors, and --demo."""

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sync_helpers import (
    OP_CLOSE, REPO_ROOT, RawWebSocket, ServeProcess, clean_env, client_for, close_payload, free_port, port_refuses,
    recv_json, recv_welcome, run, ws_connect)


def run_serve(*args, env=None, timeout=20):
    """Run serve to completion (it must exit by itself); returns (returncode, stdout, stderr)."""
    completed = subprocess.run([sys.executable, "-m", "madace_status", "serve"] + list(args), cwd=REPO_ROOT,
                               env=env or clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=timeout)
    return completed.returncode, completed.stdout.decode("utf-8"), completed.stderr.decode("utf-8")


# -- --no-sync -----------------------------------------------------------------------------------------------------

def test_no_sync_serves_only_http_until_post_start_opens_the_websocket_port(project, serve):
    ws_port = free_port()
    server = serve(project.root, "--no-sync", "--ws-port", str(ws_port), sync=False)
    assert any(line.startswith("WebSocket:  not started") for line in server.stdout_lines)
    assert port_refuses(ws_port)
    info = server.get_json("/api/sync")
    assert info["running"] is False and info["wsPort"] == ws_port and info["clientCount"] == 0
    assert server.get_json("/api/status")["data"]["workflowCount"] == 5  # read from the files
    assert server.get_json("/api/activity")["events"] == []
    assert server.get("/healthz").status == 200

    started = server.post_json("/api/sync", {"action": "start"})
    assert started.status == 200 and started.json()["running"] is True and started.json()["wsPort"] == ws_port

    async def scenario():
        async with ws_connect(server.ws_url(port=ws_port)) as ws:
            await recv_welcome(ws)
            document = project.read_state("pm-planning")
            document["currentStep"] = 4
            project.write_state("pm-planning", document)
            event = await recv_json(ws)
            assert (event["type"], event["seq"]) == ("state_updated", 1)

    run(scenario)


# -- shutdown ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_every_client_with_1001_and_exits_0_within_2_s(project, serve, signum):
    server = serve(project.root)

    async def scenario():
        async with ws_connect(server.ws_url()) as library, client_for("own", server.ws_url()) as own:
            await recv_welcome(library)
            await recv_welcome(own)
            silent = RawWebSocket(server.ws_port)  # reads, but never answers the close
            try:
                signalled = time.monotonic()
                server.send_signal(signum)
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await recv_json(library, timeout=3)
                assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "server shutting down")
                await asyncio.wait_for(own.wait_closed(), 3)
                assert (own.close_code, own.close_reason) == (1001, "server shutting down")

                def silent_close():
                    while True:
                        opcode, payload = silent.read_frame(timeout=3)
                        if opcode == OP_CLOSE:
                            return close_payload(payload)

                assert await asyncio.to_thread(silent_close) == (1001, "server shutting down")
                returncode = await asyncio.to_thread(server.wait, 3)
                elapsed = time.monotonic() - signalled
            finally:
                silent.close()
            assert returncode == 0, server.stderr_text
            assert elapsed <= 2.0, "exited %.2f s after the signal" % elapsed

    run(scenario)
    assert "Traceback" not in server.stderr_text
    assert "shutting down" in server.stderr_text


def test_sigterm_right_after_the_urls_are_printed_still_shuts_down_cleanly(project, serve):
    """A supervisor may stop the server as soon as it has announced itself."""
    for _ in range(3):
        server = serve(project.root)
        server.send_signal(signal.SIGTERM)
        assert server.wait(5) == 0, server.stderr_text


# -- refusing to start ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--port", "--ws-port"])
def test_busy_port_is_one_clear_line_naming_the_port_and_flag_and_exit_1(project, flag):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        other = "--ws-port" if flag == "--port" else "--port"
        code, out, err = run_serve("--root", project.root, flag, str(port), other, "0")
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(port) in lines[0] and flag in lines[0] and "in use" in lines[0]
    assert "Traceback" not in err


def test_non_loopback_host_without_token_is_refused_with_a_clear_message(project):
    code, out, err = run_serve("--root", project.root, "--host", "0.0.0.0", "--port", "0", "--ws-port", "0")
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "0.0.0.0" in lines[0] and "--token" in lines[0] and "--insecure" in lines[0]
    assert out == ""


@pytest.mark.parametrize("flags,env", [(["--insecure"], {}), (["--token", "t0ken"], {}),
                                       ([], {"MADACE_STATUS_TOKEN": "t0ken"})],
                         ids=["insecure", "token", "token-from-env"])
def test_non_loopback_host_starts_with_insecure_or_a_token(project, serve, flags, env):
    server = serve(project.root, "--host", "0.0.0.0", *flags, env=clean_env(**env))
    assert server.dashboard_url.startswith("http://0.0.0.0:")
    response = server.get("/api/status" + ("?token=t0ken" if "--insecure" not in flags else ""))
    assert response.status == 200
    if "--insecure" not in flags:
        assert server.get("/api/status").status == 401

        async def scenario():
            with pytest.raises(InvalidStatus):
                async with ws_connect(server.ws_url()):
                    pass

        run(scenario)


@pytest.mark.parametrize("flags,needle", [
    (["--poll-interval", "0"], "--poll-interval"),
    (["--heartbeat", "0"], "--heartbeat"),
    (["--port", "70000"], "--port"),
    (["--ws-port", "-1"], "--ws-port"),
    (["--log-level", "chatty"], "log level"),
])
def test_usage_errors_exit_2_with_one_line(project, flags, needle):
    code, out, err = run_serve("--root", project.root, "--port", "0", "--ws-port", "0", *flags)
    assert code == 2, (out, err)
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_unreadable_root_exits_3(tmp_path):
    code, out, err = run_serve("--root", str(tmp_path / "missing"), "--port", "0", "--ws-port", "0")
    assert code == 3, (out, err)
    assert "Traceback" not in err


def test_a_root_without_any_madace_source_is_a_warning_in_the_log_and_a_project_root_is_not(project, serve, tmp_path):
    empty = tmp_path / "not-a-project"
    empty.mkdir()
    servers = {"empty": serve(str(empty)), "project": serve(project.root)}
    for server in servers.values():
        assert server.get("/healthz").status == 200
        server.stop()  # SIGTERM, then every line of its log read
        assert server.process.returncode == 0, server.stderr_text
    warnings = [line for line in servers["empty"].stderr_lines if "WARNING" in line]
    assert len(warnings) == 1 and "nothing to show: no MADACE sources under %s" % empty in warnings[0], warnings
    assert "no story status file (looked for docs/workflow-status.md" in warnings[0] and "check --root" in warnings[0]
    assert "nothing to show" not in servers["project"].stderr_text


# -- --demo --------------------------------------------------------------------------------------------------------

def test_demo_serves_a_changing_sample_project_and_removes_it_on_sigterm(serve):
    server = serve(None, "--demo")
    demo_lines = [line for line in server.stdout_lines if line.startswith("Demo:")]
    assert len(demo_lines) == 1, server.stdout_lines
    directory = next(word for word in demo_lines[0].split() if word.startswith(os.sep))
    assert os.path.isdir(directory)

    async def scenario():
        async with ws_connect(server.ws_url()) as ws:
            _, snapshot = await recv_welcome(ws)
            assert snapshot["data"]["workflows"] and snapshot["data"]["stories"] and snapshot["data"]["epics"]
            started = time.monotonic()
            event = await recv_json(ws, timeout=7)  # the simulator changes something every few seconds
            assert event["type"] in ("state_updated", "workflow_removed", "stories_updated", "epics_updated"), event
            assert event["seq"] >= 1
            return time.monotonic() - started

    run(scenario)
    server.send_signal(signal.SIGTERM)
    assert server.wait(5) == 0, server.stderr_text
    assert not os.path.exists(directory)


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_ipv6_loopback_host_serves_http_and_websocket(project, serve, host):
    server = serve(project.root, "--host", host)
    assert server.dashboard_url == "http://[::1]:%d/status" % server.http_port
    connection = http.client.HTTPConnection("::1", server.http_port, timeout=5)
    try:
        connection.request("GET", "/api/sync")
        info = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert info["running"] is True and info["wsUrl"].startswith("ws://[::1]:")

    async def scenario():
        url = "ws://[::1]:%d/ws" % server.ws_port
        async with ws_connect(url, origin="http://[::1]:%d" % server.http_port) as ws:
            await recv_welcome(ws)
        async with client_for("own", url) as ws:
            await recv_welcome(ws)

    run(scenario)


def test_serve_options_come_from_madace_status_environment_variables(project):
    ws_port = free_port()
    env = clean_env(MADACE_STATUS_ROOT=project.root, MADACE_STATUS_WS_PORT=str(ws_port), MADACE_STATUS_NO_SYNC="1",
                    MADACE_STATUS_HEARTBEAT="5", MADACE_STATUS_POLL_INTERVAL="0.05",
                    MADACE_STATUS_ALLOW_ORIGIN="http://a.example:1, http://b.example:2")
    server = ServeProcess(["--port", "0"], env=env).wait_started(sync=False)
    try:
        assert port_refuses(ws_port)  # NO_SYNC
        assert server.post_json("/api/sync", {"action": "start"}).json()["wsPort"] == ws_port
        assert server.get_json("/api/sync")["pollIntervalMs"] == 50

        async def scenario():
            for origin in ("http://a.example:1", "http://b.example:2"):
                async with ws_connect(server.ws_url(port=ws_port), origin=origin) as ws:
                    welcome, _ = await recv_welcome(ws)
                    assert welcome["data"]["heartbeatMs"] == 5000
            with pytest.raises(InvalidStatus):
                async with ws_connect(server.ws_url(port=ws_port), origin="http://c.example:3"):
                    pass

        run(scenario)
    finally:
        server.stop()
