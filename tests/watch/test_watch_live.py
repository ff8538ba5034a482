"""`status --watch` end to end: a real `serve` process, the watch command as a subprocess through pipes (NDJSON,
markdown, plain tables) or under a pseudo-terminal (in-place redraw, keys, terminal mode), real files changed on
disk. Every wait is on a condition with a deadline."""

import io
import json
import os
import re
import signal
import socket
import termios
import time
from unittest import mock

import pytest

from madace_status import cli, status_command

from watch_helpers import (ESCAPE, CuttableProxy, clean_env, copy_project, documents, free_port, mode,
                           set_story_title, set_workflow_step, visible, wait_documents, wait_until, workflow_step)

UPDATE_DEADLINE_S = 0.3
WEBSOCKET, POLLING = "websocket", "polling"
HEADER = re.compile(r"Last updated: \d\d:\d\d:\d\d \| Connection: (.*)")


def one_shot(root, entity, fmt="json"):
    """What one-shot `status` prints, run in this process as `status --root ROOT -f FMT ENTITY` at 120 columns."""
    buffer = io.BytesIO()
    stdout = io.TextIOWrapper(buffer, encoding="utf-8")
    args = cli.build_parser().parse_args(["status", "-f", fmt, "--root", root] + ([entity] if entity else []))
    with mock.patch.dict(os.environ, {"COLUMNS": "120"}):
        assert status_command.run(args, stdout=stdout, stderr=io.StringIO(), environ={}) == 0
    stdout.flush()
    return buffer.getvalue().decode("utf-8")


def comparable(doc):
    return {key: value for key, value in doc.items() if key not in ("timestamp", "connection")}


def story_title(doc, story_id):
    data = doc["data"]
    if data.get("id") == story_id:
        return data["title"]
    return next((s["title"] for s in data.get("stories") or () if s["id"] == story_id), None)


# -- first render, updates, every entity kind ---------------------------------------------------------------

def test_first_render_is_written_once_and_a_file_write_shows_within_300_ms(project, start_server, watch):
    server = start_server(project)
    view = watch("-f", "json", "--root", project, "--server", server.url)
    docs, first = wait_documents(view.stdout, lambda doc: True, what="the first document")
    assert (first, mode(docs[0]), workflow_step(docs[0], "pm-planning")) == (0, WEBSOCKET, 3)
    assert docs[0]["connection"]["rttMs"] is not None

    written = time.monotonic()
    set_workflow_step(project, "pm-planning", 4)
    docs, updated = wait_documents(view.stdout, lambda doc: workflow_step(doc, "pm-planning") == 4)
    latency = time.monotonic() - written
    assert latency < UPDATE_DEADLINE_S, "the update took %.0f ms" % (latency * 1000)
    assert (updated, len(docs)) == (1, 2)  # the first render was not repeated before the update
    assert mode(docs[1]) == WEBSOCKET


KINDS = ["", "stories", "epics", "workflows", "STORY-V3-020", "EPIC-MAM", "pm-planning", "workflow:PM-Planning"]
TABLE_KINDS = ["", "STORY-V3-020", "workflow:PM-Planning"]  # every kind's table is compared in test_watch_parts
POLLED_KINDS = ["", "stories", "EPIC-MAM", "pm-planning"]  # polling renders what load_project() read, as one-shot


@pytest.mark.parametrize("connected", [True, False], ids=["websocket", "polling"])
def test_every_entity_kind_shows_what_one_shot_status_shows(project, start_server, watch, connected):
    url = start_server(project).url if connected else "ws://127.0.0.1:%d" % free_port()
    views = {kind: watch("-f", "json", "--root", project, "--server", url, *([kind] if kind else []))
             for kind in (KINDS if connected else POLLED_KINDS)}
    tables = {}
    if connected:
        tables = {kind: watch("--root", project, "--server", url, *([kind] if kind else [])) for kind in TABLE_KINDS}
    for kind, view in views.items():
        docs, _ = wait_documents(view.stdout, lambda doc: True, what="the first document of %r" % kind)
        assert mode(docs[0]) == (WEBSOCKET if connected else POLLING), kind
        assert comparable(docs[0]) == comparable(json.loads(one_shot(project, kind))), kind
    for kind, view in tables.items():
        expected = one_shot(project, kind, "table")
        text = view.stdout.wait_for(lambda text: text.endswith(expected) and text, what="the table of %r" % kind)
        header, _, body = text.partition("\n\n")
        assert HEADER.fullmatch(header) and body == expected, kind


def test_a_change_to_something_else_does_not_redraw_the_view(project, start_server, watch):
    server = start_server(project)
    story = watch("-f", "json", "--root", project, "--server", server.url, "STORY-V3-020")
    workflow = watch("-f", "json", "--root", project, "--server", server.url, "pm-planning")
    for view in (story, workflow):
        wait_documents(view.stdout, lambda doc: mode(doc) == WEBSOCKET)
    clients = json.loads(server.get("/api/sync"))["clients"]
    subscriptions = sorted((c["source"], c["topics"], c["workflows"]) for c in clients)
    assert subscriptions == [("cli", ["stories", "workflows"], ["STORY-V3-020"]),  # a workflow of that name would win
                             ("cli", ["workflows"], ["pm-planning"])]
    assert all(c["compression"] for c in clients)  # status --watch offers permessage-deflate and gets it

    set_workflow_step(project, "code-review", 1)  # another workflow
    set_story_title(project, "US-014", "Another story retitled")  # another story, in the same file
    # state_updated and workflow_started for code-review, stories_updated for US-014:
    wait_until(lambda: server.metric("madace_events_total") >= 3, what="the unrelated events")
    set_workflow_step(project, "pm-planning", 4)
    set_story_title(project, "STORY-V3-020", "Retitled while watching")

    docs, index = wait_documents(story.stdout,
                                 lambda doc: story_title(doc, "STORY-V3-020") == "Retitled while watching")
    assert (index, len(docs)) == (1, 2)
    docs, index = wait_documents(workflow.stdout, lambda doc: workflow_step(doc, "pm-planning") == 4)
    assert (index, len(docs)) == (1, 2)


# -- losing and finding the server --------------------------------------------------------------------------

def test_killed_server_switches_to_polling_and_a_restart_switches_back_with_the_outage_change(
        project, start_server, watch):
    server = start_server(project)
    view = watch("-f", "json", "--root", project, "--server", server.url, "--interval", "0.2")
    wait_documents(view.stdout, lambda doc: mode(doc) == WEBSOCKET)

    server.kill()
    killed = time.monotonic()
    docs, index = wait_documents(view.stdout, lambda doc: mode(doc) == POLLING)
    assert time.monotonic() - killed < 2.0  # a dropped connection is noticed at once, not after a timeout
    retry = docs[index]["connection"]["retryInS"]
    assert retry is None or 0 <= retry <= 1

    set_workflow_step(project, "pm-planning", 5)  # during the outage: seen by polling the files
    docs, polled = wait_documents(view.stdout,
                                  lambda doc: mode(doc) == POLLING and workflow_step(doc, "pm-planning") == 5)

    start_server(project, ws_port=server.ws_port)
    docs, back = wait_documents(view.stdout, lambda doc: mode(doc) == WEBSOCKET, start=polled, timeout=20)
    assert workflow_step(docs[back], "pm-planning") == 5  # the replica has the change made while it was away
    assert all(workflow_step(doc, "pm-planning") == 5 for doc in docs[polled:])  # and never showed it undone


def test_reconnect_resumes_from_the_last_event_seen_without_a_snapshot(project, start_server, watch, tmp_path):
    server = start_server(project)
    proxy = CuttableProxy(server.ws_port)
    elsewhere = str(tmp_path / "elsewhere")  # polled while cut off: a root without the project, so only the
    os.mkdir(elsewhere)                      # server can tell this view about the change made meanwhile
    try:
        view = watch("-f", "json", "--root", elsewhere, "--server", "ws://127.0.0.1:%d/ws" % proxy.port,
                     "--interval", "0.2", "pm-planning")
        wait_documents(view.stdout, lambda doc: mode(doc) == WEBSOCKET and doc["data"]["currentStep"] == 3)

        proxy.cut_all()
        docs, cut = wait_documents(view.stdout, lambda doc: mode(doc) == POLLING)
        set_workflow_step(project, "pm-planning", 4)
        wait_until(lambda: server.metric("madace_events_total") >= 1, what="the event published while cut off")
        proxy.restore()

        docs, back = wait_documents(view.stdout, lambda doc: mode(doc) == WEBSOCKET, start=cut, timeout=20)
        assert docs[back]["data"]["currentStep"] == 4
        assert server.metric("madace_resyncs_total") == 0  # replayed from the ring buffer, not a new snapshot
        assert server.metric("madace_connections_total") >= 2
    finally:
        proxy.close()


@pytest.mark.parametrize("server_kind", ["refused", "silent"])
def test_an_unreachable_server_means_polling_within_one_interval(project, watch, server_kind):
    listener = None
    if server_kind == "silent":  # accepts TCP but never answers the handshake
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
    else:
        port = free_port()
    try:
        view = watch("-f", "json", "--root", project, "--server", "ws://127.0.0.1:%d" % port, "--interval", "0.5")
        docs, _ = wait_documents(view.stdout, lambda doc: True, timeout=5)
        assert mode(docs[0]) == POLLING
        if server_kind == "silent":
            assert docs[0]["connection"]["retryInS"] is None  # still waiting for the handshake (up to 10 s)
        assert time.monotonic() - view.started < 3.0
        set_workflow_step(project, "pm-planning", 4)
        written = time.monotonic()
        wait_documents(view.stdout, lambda doc: workflow_step(doc, "pm-planning") == 4)
        assert time.monotonic() - written < 0.5 + 1.0  # one interval, and slack for a loaded machine
    finally:
        if listener is not None:
            listener.close()


def test_a_refused_token_is_a_clear_message_and_exit_2_without_retrying(project, start_server, watch):
    server = start_server(project, args=["--token", "s3cret"])
    for args, words in ((["--token", "wrong"], "refused the token"), ([], "needs a token")):
        view = watch("-f", "json", "--root", project, "--server", server.url, *args)
        assert view.wait() == 2
        assert view.stdout.text == ""
        assert words in view.stderr.text and "403" in view.stderr.text, view.stderr.text
    good = watch("-f", "json", "--root", project,
                 env=clean_env(COLUMNS="120", MADACE_STATUS_SERVER=server.url, MADACE_STATUS_TOKEN="s3cret"))
    wait_documents(good.stdout, lambda doc: mode(doc) == WEBSOCKET)
    server.log.seek(0)
    assert server.log.read().decode().count("refused WebSocket handshake") == 2  # one attempt each, no retry loop


# -- arguments ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, env, words", [
    (["--interval", "0.05"], {}, "--interval"),
    (["--interval", "nan"], {}, "--interval"),
    ([], {"MADACE_STATUS_INTERVAL": "soon"}, "MADACE_STATUS_INTERVAL"),
    (["-f", "yaml"], {}, "invalid choice"),
    ([], {"MADACE_STATUS_FORMAT": "yaml"}, "MADACE_STATUS_FORMAT"),
    (["--server", "ftp://127.0.0.1:3001"], {}, "ws://"),
    (["--server", "ws://"], {}, "no host"),
    (["--server", "ws://127.0.0.1:99999"], {}, "malformed"),
    (["--server", "ws://127.0.0.1:3001/a b"], {}, "spaces"),
    ([], {"MADACE_STATUS_SERVER": "127.0.0.1:3001"}, "ws://"),
    (["not an entity!"], {}, "unrecognised ENTITY"),
], ids=["interval-small", "interval-nan", "interval-env", "format", "format-env", "scheme", "no-host", "port",
        "space", "server-env", "entity"])
def test_bad_arguments_are_a_clear_message_and_exit_2(project, watch, args, env, words):
    view = watch("--root", project, *args, env=clean_env(**env))
    assert view.wait() == 2
    assert view.stdout.text == ""
    assert words in view.stderr.text, view.stderr.text


# -- output without a terminal ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_piped_output_appends_each_update_without_escape_sequences(project, start_server, watch, fmt):
    server = start_server(project)
    view = watch("-f", fmt, "--root", project, "--server", server.url, "pm-planning")
    if fmt == "json":
        wait_documents(view.stdout, lambda doc: True)
    else:
        view.stdout.wait_for("Connection: \U0001f7e2 WebSocket \\(rtt \\d+ ms\\)")
    set_workflow_step(project, "pm-planning", 4)
    if fmt == "json":
        wait_documents(view.stdout, lambda doc: doc["data"]["currentStep"] == 4)
    else:
        view.stdout.wait_for("4/5")
    view.signal(signal.SIGTERM)
    assert view.wait() == 0
    assert view.stderr.text == "Watch mode stopped\n"
    text = view.stdout.text
    assert not ESCAPE.search(text)
    if fmt == "json":
        assert [doc["data"]["currentStep"] for doc in documents(text)] == [3, 4]
    elif fmt == "markdown":
        blocks = text.split("\n\n---\n\n")
        assert len(blocks) == 2
        for block, step in zip(blocks, ("3/5", "4/5")):
            assert HEADER.match(block) and "# Workflow pm-planning" in block and step in block
    else:
        assert len(HEADER.findall(text)) == 2 and text.index("3/5") < text.index("4/5")


@pytest.mark.parametrize("encoding, connection", [
    ("utf-8", "\U0001f534 Polling \\(retry in \\d+ s\\)"), ("ascii", "Polling \\(retry in \\d+ s\\)")])
def test_the_header_uses_words_without_emoji_where_the_encoding_cannot_show_them(project, watch, encoding, connection):
    view = watch("--root", project, "--server", "ws://127.0.0.1:%d" % free_port(),
                 env=clean_env(COLUMNS="120", PYTHONIOENCODING=encoding))
    header = view.stdout.wait_for(r"\A(.*)\n\n").group(1)
    assert re.fullmatch("Last updated: \\d\\d:\\d\\d:\\d\\d \\| Connection: " + connection, header), header
    if encoding == "ascii":
        view.stdout.wait_for("TOTAL")
        view.stdout.raw.decode("ascii")  # the whole output is plain ASCII, tables included


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_without_a_terminal_signals_stop_the_view_with_exit_0(project, watch, signum):
    view = watch("-f", "json", "--root", project, "--server", "ws://127.0.0.1:%d" % free_port())
    wait_documents(view.stdout, lambda doc: True)
    view.signal(signum)
    assert view.wait() == 0
    assert view.stderr.text == "Watch mode stopped\n"


# -- on a terminal --------------------------------------------------------------------------------------------

def _frame_count(tty):
    return tty.output.raw.count(b"\x1b[J")


def _last_frame(tty):
    """The text of the last whole frame (a header-only refresh may follow it)."""
    raw = tty.output.text
    end = raw.rindex("\x1b[J")
    return visible(raw[raw.rindex("\x1b[H", 0, end):end])


def test_on_a_terminal_the_view_is_drawn_once_then_redrawn_in_place(project, start_server, tty_watch):
    server = start_server(project)
    tty = tty_watch("--root", project, "--server", server.url, rows=50, columns=120)
    tty.output.wait_for("(?s)Connection: \U0001f7e2 WebSocket \\(rtt \\d+ ms\\).*\x1b\\[J", what="the first frame")
    assert _frame_count(tty) == 1
    attributes = tty.attributes()
    assert not attributes[3] & (termios.ICANON | termios.ECHO)  # keys arrive one by one, not echoed

    set_workflow_step(project, "pm-planning", 4)
    tty.output.wait_for(lambda text: "4/5" in visible(text), what="the redrawn frame")
    tty.output.wait_for(lambda text: text.count("\x1b[J") == 2)
    raw = tty.output.text
    assert raw.startswith("\x1b[?25l\x1b[H")  # cursor hidden, then home: the frame overwrites, nothing scrolls
    for frame in raw.split("\x1b[H")[1:]:
        lines = visible(frame).split("\n")
        assert len(lines) <= 50 and not frame.endswith("\n")
    for reset in ("\x1bc", "\x1b[2J", "\x1b[3J"):
        assert reset not in raw
    assert HEADER.match(_last_frame(tty))

    fcntl_resize(tty, rows=50, columns=70)  # the kernel sends SIGWINCH: the view is redrawn to the new width
    tty.output.wait_for(lambda text: text.count("\x1b[J") == 3, what="the frame after the resize")
    assert max(len(line.rstrip("\r")) for line in _last_frame(tty).split("\n")) <= 70

    tty.type(b"q")
    assert tty.wait() == 0
    tty.output.wait_for("Watch mode stopped\r?\n")
    assert tty.output.text.rstrip().endswith("\x1b[?25hWatch mode stopped")
    assert tty.attributes() == tty.attributes_before


def fcntl_resize(tty, rows, columns):
    import fcntl
    import struct
    fcntl.ioctl(tty.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def test_a_frame_taller_than_the_terminal_is_cut_to_fit(project, tty_watch):
    tty = tty_watch("--root", project, "--server", "ws://127.0.0.1:%d" % free_port(), rows=12, columns=100)
    tty.output.wait_for("\x1b\\[J", what="the first frame")
    lines = _last_frame(tty).split("\n")
    assert len(lines) == 12 and "more lines: make the terminal taller" in lines[-1]
    tty.type(b"q")
    assert tty.wait() == 0


@pytest.mark.parametrize("how", ["q", "ctrl-c", "SIGTERM"])
def test_on_a_terminal_q_ctrl_c_and_sigterm_stop_with_exit_0_and_restore_the_terminal(project, tty_watch, how):
    tty = tty_watch("--root", project, "--server", "ws://127.0.0.1:%d" % free_port())
    tty.output.wait_for("\x1b\\[J", what="the first frame")
    assert tty.attributes() != tty.attributes_before
    if how == "q":
        tty.type(b"q")
    elif how == "ctrl-c":
        tty.type(b"\x03")  # the line discipline turns it into SIGINT for the foreground process group
    else:
        tty.signal(signal.SIGTERM)
    assert tty.wait() == 0
    tty.output.wait_for("Watch mode stopped")
    assert tty.attributes() == tty.attributes_before


# -- the server's project and --root ---------------------------------------------------------------------------

DEFAULT_WS_PORT = 3001  # the port `status --watch` asks when no --server names one


def another_project(tmp_path):
    """A second copy of the sample project, told apart by pm-planning's step (5, where the first has 3)."""
    root = copy_project(str(tmp_path / "another"))
    set_workflow_step(root, "pm-planning", 5)
    return root


def test_the_default_server_serving_another_project_is_not_shown_and_the_header_says_why(
        project, start_server, watch, tmp_path):
    server = start_server(project, ws_port=DEFAULT_WS_PORT)  # a `serve` of project A on the default port
    mine = another_project(tmp_path)
    view = watch("-f", "json", "--root", mine, "--interval", "0.2", "pm-planning")
    docs, index = wait_documents(view.stdout, lambda doc: (doc["connection"]["note"] or "").startswith(
        "the server at ws://127.0.0.1:3001 serves another project (project)"))
    assert docs[index]["data"]["currentStep"] == 5  # --root's project, read from its files
    assert all(mode(doc) == POLLING for doc in docs)  # never the other project's data
    assert server.metric("madace_connections_total") >= 1  # it did ask, and heard whose project it is


def test_a_server_named_with_server_is_shown_even_for_another_project_with_a_note(project, start_server, watch,
                                                                                  tmp_path):
    server = start_server(project)
    url = "ws://127.0.0.1:%d" % server.ws_port
    view = watch("-f", "json", "--root", another_project(tmp_path), "--server", url, "pm-planning")
    docs, index = wait_documents(view.stdout, lambda doc: mode(doc) == WEBSOCKET)
    assert docs[index]["data"]["currentStep"] == 3  # the server's project
    assert docs[index]["connection"]["note"] == "the server's project is project, not --root"
    same_root = watch("-f", "json", "--root", project, "--server", url, "pm-planning")
    docs, index = wait_documents(same_root.stdout, lambda doc: mode(doc) == WEBSOCKET)
    assert docs[index]["connection"]["note"] is None


# -- the event stream: --server http://… ------------------------------------------------------------------------

def test_a_watch_over_the_http_ports_event_stream_is_pushed_and_resumes_without_a_snapshot(project, start_server,
                                                                                           watch, tmp_path):
    server = start_server(project)
    proxy = CuttableProxy(server.http_port)
    elsewhere = str(tmp_path / "elsewhere")  # polled while cut off: only the server can tell of the change
    os.mkdir(elsewhere)
    try:
        view = watch("-f", "json", "--root", elsewhere, "--server", "http://127.0.0.1:%d" % proxy.port,
                     "--interval", "0.2", "pm-planning")
        docs, index = wait_documents(view.stdout, lambda doc: mode(doc) == "stream")
        assert docs[index]["data"]["currentStep"] == 3
        assert docs[index]["connection"]["note"] == "the server's project is project, not --root"
        set_workflow_step(project, "pm-planning", 4)
        wait_documents(view.stdout, lambda doc: mode(doc) == "stream" and doc["data"]["currentStep"] == 4)

        proxy.cut_all()
        docs, cut = wait_documents(view.stdout, lambda doc: mode(doc) == POLLING)
        set_workflow_step(project, "pm-planning", 5)
        wait_until(lambda: server.metric("madace_events_total") >= 2, what="the event published while cut off")
        proxy.restore()
        docs, back = wait_documents(view.stdout, lambda doc: mode(doc) == "stream", start=cut, timeout=20)
        assert docs[back]["data"]["currentStep"] == 5
        assert server.metric("madace_resyncs_total") == 0  # Last-Event-ID: replayed from the ring buffer
    finally:
        proxy.close()


def test_a_token_the_event_stream_refuses_is_exit_2_with_one_line(project, start_server, watch):
    server = start_server(project, args=["--token", "right"])
    view = watch("--root", project, "--server", "http://127.0.0.1:%d" % server.http_port, "--token", "wrong")
    assert view.wait() == 2
    assert view.stderr.text == ("madace-status: the sync server at http://127.0.0.1:%d refused the token (HTTP 401): "
                                "check --token or MADACE_STATUS_TOKEN\n" % server.http_port)
