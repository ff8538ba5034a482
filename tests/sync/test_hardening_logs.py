"""Issue 10 §7 against a real `serve`: terminal escapes and newlines a peer puts in the request path, the
User-Agent, Origin, Host, the WebSocket `source` or a close reason reach the log escaped, one line per event."""

import re
import time

from madace_status.logsafe import escape
from sync_helpers import WAIT_S, RawWebSocket, close_payload, raw_http, recv_welcome, run, upgrade_request, ws_connect

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
LOG_LINE = re.compile(r"\A\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) [.\w]+: ")
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_escape_turns_every_control_character_into_text():
    assert escape(TITLE + CLEAR + "\nforged\r\x85\x9b\u202e") == \
        "\\x1b]0;pwned\\x07\\x1b[2J\\x0aforged\\x0d\\x85\\x9b\\u202e"
    assert escape("a\\x1b") == "a\\\\x1b"  # a literal backslash stays distinguishable from an escape
    assert escape("é ü 漢字 ok") == "é ü 漢字 ok"
    assert escape("x" * 1000).endswith("…(cut)") and len(escape("x" * 1000)) < 320


def test_peer_chosen_values_reach_the_log_escaped_on_one_line(project, serve):
    server = serve(project.root, "--log-level", "debug")
    http_port, ws_port = server.http_port, server.ws_port
    marker = "forged-%d" % time.monotonic_ns()
    # The request path (raw bytes in the request line) and a bad request line.
    raw_http(http_port, ("GET /%s%s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: ua%s%s\r\n\r\n"
                         % (TITLE, CLEAR, marker, TITLE, CLEAR)).encode("latin-1"))
    raw_http(http_port, ("GET /a\rb%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % marker).encode("latin-1"))
    # A refused Host and a refused Origin on HTTP.
    raw_http(http_port, ("GET /api/status HTTP/1.1\r\nHost: evil%s%s\r\n\r\n" % (TITLE, marker)).encode("latin-1"))
    raw_http(http_port, ("POST /api/sync HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil%s%s\r\n"
                         "Content-Length: 2\r\n\r\n{}" % (CLEAR, marker)).encode("latin-1"))
    # A refused Origin and Host on the WebSocket handshake.
    raw_http(ws_port, upgrade_request(ws_port, extra_lines=["Origin: http://evil%s%s" % (TITLE, marker)]))
    raw_http(ws_port, upgrade_request(ws_port, omit=("Host",), extra_lines=["Host: evil%s%s" % (CLEAR, marker)]))

    async def scenario():
        # A `source` with a newline and terminal escapes.
        query = "source=%1B%5D0%3Bpwned%07%0A" + marker + "%1B%5B2J"
        async with ws_connect(server.ws_url(query)) as ws:
            await recv_welcome(ws)

    run(scenario)
    # The User-Agent names the source when there is no `source`; a close reason may hold a newline.
    peer = RawWebSocket(ws_port, extra_lines=["User-Agent: ua%s%s%s/1.0" % (TITLE, CLEAR, marker)])
    try:
        peer.read_message()
        peer.send_frame(8, b"\x03\xe8" + ("bye%s\n%s" % (TITLE, marker)).encode())
        opcode, payload = peer.read_frame()
        while opcode != 8:  # the snapshot, maybe a ping, before the close answer
            opcode, payload = peer.read_frame()
        assert close_payload(payload)[0] == 1000
    finally:
        peer.close()

    # Every event that carried the marker is logged, escaped, on one line of its own.
    deadline = time.monotonic() + WAIT_S
    while server.stderr_text.count(marker) < 8:
        assert time.monotonic() < deadline, "expected 8 logged events with the marker, got:\n" + server.stderr_text
        time.sleep(0.05)
    for line in server.stderr_lines:
        assert not RAW_CONTROL.search(line), "a raw control character reached the log: %r" % line
        assert LOG_LINE.match(line), "not one line per event: %r" % line
    text = server.stderr_text
    assert "\\x1b]0;pwned\\x07" in text and "\\x1b[2J" in text and "\\x0a" + marker in text
    assert "Traceback" not in text
