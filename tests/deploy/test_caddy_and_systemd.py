"""The shipped Caddyfile in front of a real `serve` over TLS, and the shipped systemd units: checked by
`systemd-analyze verify` where it runs, their hardening read back, and their ExecStart run as the real command
(README, "Behind a reverse proxy" and "Running it as a service")."""

import asyncio
import json
import os
import shlex
import shutil
import subprocess

import pytest
import websockets

from proxies import BASE_PATH, PUBLIC_NAME, client_ssl_context, free_port, shipped_config
from story_edits import move_story
from sync_helpers import ServeProcess, WAIT_S, clean_env, run
from test_nginx import https_get

HARDENING = {"DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "read-only", "NoNewPrivileges": "yes",
             "PrivateTmp": "yes", "CapabilityBoundingSet": ""}


def test_caddy_passes_the_api_and_the_websocket_under_the_base_path(proxied_serve, caddy_in_front, certificate,
                                                                   project):
    server = proxied_serve()
    proxy = caddy_in_front("127.0.0.1:%d" % server.http_port)
    status, _, body = https_get(proxy.port, BASE_PATH + "/api/sync", certificate[0],
                                host="%s:%d" % (PUBLIC_NAME, proxy.port))
    assert status == 200, (body, proxy.log()[-2000:])
    assert json.loads(body)["wsUrl"] == "wss://%s:%d%s/ws" % (PUBLIC_NAME, proxy.port, BASE_PATH)

    async def scenario():
        # Caddy answers only its site's name: madace.test, reached at 127.0.0.1 (TLS checks the name too).
        url = "wss://%s:%d%s/ws?source=cli" % (PUBLIC_NAME, proxy.port, BASE_PATH)
        async with websockets.connect(url, host="127.0.0.1", port=proxy.port, ssl=client_ssl_context(certificate[0]),
                                      additional_headers={"Origin": "https://%s:%d" % (PUBLIC_NAME, proxy.port)}) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["type"] == "ping"
            assert json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))["type"] == "snapshot"
            remotes = [client["remote"] for client in server.get_json(BASE_PATH + "/api/sync")["clients"]]
            move_story(str(project.root), "STORY-V3-020")
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
                if event["type"] == "stories_updated":
                    return remotes, event["data"]["changes"]

    remotes, changes = run(scenario)
    assert remotes == ["127.0.0.1"]  # Caddy's X-Forwarded-For, believed from the trusted peer
    assert [(change["id"], change["to"]) for change in changes] == [("STORY-V3-020", "DONE")]


def unit_settings(text):
    """The unit's Key=Value lines (every value of each key), comments and sections aside; a line ending in a
    backslash goes on in the next, as systemd reads it."""
    settings = {}
    for line in text.replace("\\\n", " ").splitlines():
        key, equals, value = line.partition("=")
        if equals and not line.startswith(("#", "[")):
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.mark.parametrize("name", ["systemd", "systemd-replica"])
def test_the_systemd_units_are_hardened_and_their_command_serves(name, project, tmp_path):
    port = free_port()
    values = dict(PROJECT=str(project.root), SERVER_NAME=PUBLIC_NAME)
    if name == "systemd":
        values["PORT"] = str(port)  # the replica template takes its port from the instance name (%i)
    text = shipped_config(name, **values)
    settings = unit_settings(text)
    for key, value in HARDENING.items():
        assert settings[key] == [value], key
    assert settings["ReadOnlyPaths"] == [str(project.root)]
    assert settings["CacheDirectory"] == ["madace-status"] and settings["KillSignal"] == ["SIGTERM"]
    # The command as systemd would run it: %i is the instance (the port), %C the cache root.
    command = settings["ExecStart"][0].replace("%i", str(port))
    environment = dict(item.split("=", 1) for item in settings["Environment"])
    environment["XDG_CACHE_HOME"] = environment["XDG_CACHE_HOME"].replace("%C", str(tmp_path / "cache"))
    argv = shlex.split(command)
    assert argv[1:4] == ["-m", "madace_status", "serve"]
    env = clean_env(**environment)
    server = ServeProcess(argv[4:] + ["--ws-port", "0"], env=env).wait_started()
    try:
        assert server.http_port == port and server.dashboard_url.endswith("/madace/status")
        info = server.get_json(BASE_PATH + "/api/sync")
        assert info["running"] and info["history"]["persisted"], info["history"]
        assert os.listdir(str(tmp_path / "cache" / "madace-status" / "madace_status"))  # its own cache only
    finally:
        server.stop()
    assert server.process.returncode == 0  # SIGTERM, the unit's KillSignal: a clean stop
    unit = tmp_path / ("madace-status@.service" if name == "systemd-replica" else "madace-status.service")
    unit.write_text(text)
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing (tests/run.sh installs Debian's systemd)"
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    # Offline, systemd-analyze may complain about the machine (no running manager); never about the unit.
    assert not [line for line in result.stderr.splitlines() if unit.name in line], result.stderr
