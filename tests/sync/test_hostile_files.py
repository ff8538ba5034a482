"""Issue 10 §5/§6 against a real `serve`: a state file holding NaN is `invalid` over the API and the WebSocket,
with every message strict JSON; a multi-megabyte backtracking line does not freeze /healthz."""
import asyncio
import json
import time

from sync_helpers import WAIT_S, run, ws_connect

HOSTILE_LINE_CHARS = 3 * 1024 * 1024
HEALTHZ_PROMPT_S = 5   # generous on a loaded machine; before the fix the server froze for hours on such a line


def strict(text):
    def refuse(name):
        raise AssertionError("non-standard JSON constant %s" % name)
    return json.loads(text, parse_constant=refuse)


def test_nan_state_file_is_invalid_over_api_and_websocket(live, project):
    async def scenario():
        async with ws_connect(live.ws_url()) as ws:
            strict(await asyncio.wait_for(ws.recv(), WAIT_S))   # welcome
            project.write_state("hostile", '{"workflow": "hostile", "status": "failed", "progress": NaN}')
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                message = strict(await asyncio.wait_for(ws.recv(), WAIT_S))
                if "hostile" in json.dumps(message) and "NaN is not a JSON number" in json.dumps(message):
                    return message
            raise AssertionError("no invalid event for the NaN state file")
    run(scenario)
    response = live.get("/api/status")
    assert response.status == 200
    body = strict(response.body.decode("utf-8"))
    assert "NaN is not a JSON number" in json.dumps(body)
    assert "invalid" in json.dumps(body)


def test_healthz_answers_promptly_while_a_hostile_epic_is_parsed(project, serve):
    project.write_epic("EPIC-V3-099-hostile.md",
                       "# EPIC-V3-099: Hostile\n\n**Owner:** a" + "-" * HOSTILE_LINE_CHARS + "b\n")
    server = serve(project.root)
    project.write_stories(project.read_stories() + "\n## TODO\n- [ ] **[STORY-999]** x"
                          + " " * HOSTILE_LINE_CHARS + "y - **Done**\n")
    for _ in range(5):
        start = time.monotonic()
        response = server.get("/healthz")
        assert response.status == 200
        assert time.monotonic() - start < HEALTHZ_PROMPT_S
    epic = server.get_json("/api/status/epic/EPIC-V3-099")
    assert "Hostile" in json.dumps(epic)
