"""The watch view's parts, in process: the replica renders exactly what one-shot `status` renders, the backoff
schedule, the subscription per entity kind, the argument checks, and the keyboard mode restored on an exception."""

import argparse
import os
import pty
import termios

import pytest

from madace_status.project.loader import ProjectPaths, load_project
from madace_status.project.registry import WORKFLOW, EntityError, resolve
from madace_status.project.render.envelope import envelope
from madace_status.project.render.markdown import render_markdown
from madace_status.project.render.table import TableStyle, render_table
from madace_status.console import UsageError
from madace_status.sync.events import diff_projects, snapshot_data
from madace_status.sync.clients.hub import TOPICS
from madace_status.sync.replica import Replica
from madace_status.watch.backoff import Backoff
from madace_status.watch.keyboard import KeyboardMode
from madace_status.watch.settings import WatchSettings, initial_query, subscription, subscription_url

from watch_helpers import STATE_DIR, copy_project, set_story_title, set_workflow_step, write_atomically

ENTITIES = ["", "summary", "stories", "epics", "workflows", "STORY-V3-020", "story:V3-022", "US-014", "EPIC-MAM",
            "epic:V3-002", "pm-planning", "workflow:PM-Planning", "weird-status", "broken", "code-review", "STORY-404",
            "EPIC-NOPE", "no-such-flow"]


def messy_project(root):
    """The sample project plus every kind of notice: invalid and odd state files, a duplicate workflow, a
    violated WIP limit, a duplicate story, a stray file among the epics and an epic that is not UTF-8."""
    copy_project(root)
    states = os.path.join(root, STATE_DIR)
    write_atomically(os.path.join(states, ".broken.state.json"), "{not json")
    write_atomically(os.path.join(states, ".weird-status.state.json"),
                     '{"workflow": "weird-status", "currentStep": "two", "totalSteps": 3, "status": "paused"}')
    other = os.path.join(root, ".madace", "workflow-states")
    os.makedirs(other)
    write_atomically(os.path.join(other, ".pm-planning.state.json"), '{"workflow": "pm-planning", "status": "done"}')
    status_file = os.path.join(root, "docs", "workflow-status.md")
    with open(status_file, encoding="utf-8") as handle:
        text = handle.read()
    text = text.replace("## IN PROGRESS\n", "## IN PROGRESS\n\n"
                        "- [ ] **[STORY-V3-030]** Second one in progress | 1 points\n"
                        "- [ ] **[STORY-V3-022]** Duplicate of a backlog story | 1 points\n")
    write_atomically(status_file, text)
    epics = os.path.join(root, "docs", "v3-planning", "epics")
    write_atomically(os.path.join(epics, "notes.txt"), "not an epic\n")
    with open(os.path.join(epics, "EPIC-V3-009-latin1.md"), "wb") as handle:
        handle.write(b"# EPIC-V3-009: Caf\xe9 latin-1\n\n**Priority:** P2\n")
    return root


def one_shot(project, text):
    try:
        return resolve(project, text)
    except EntityError as error:
        return str(error)


def through_replica(project, text, paths, events=(), current=None):
    """What the watch view shows for `text`: a snapshot filtered to its subscription, then `events` (which turn
    `project` into `current`). A workflow not found under its exact name is looked for among all of them, as
    the live view does by subscribing again without the name."""
    query = initial_query(text, paths)
    topics, workflows = subscription(text, query)
    topics = TOPICS if topics is None else topics
    replica = Replica(paths.root, "docs/v3-planning/epics")
    replica.load_snapshot(snapshot_data(project, topics, workflows))
    for event_type, data, topic, workflow in events:
        if topic in topics and (workflow is None or workflows is None or workflow in workflows):
            replica.apply(event_type, data)
    if query.kind == WORKFLOW and workflows is not None and replica.project().workflow(query.key) is None:
        replica.load_snapshot(snapshot_data(current or project, topics, None))
    return one_shot(replica.project(), text)


def assert_same_view(expected, actual):
    if isinstance(expected, str):
        assert actual == expected
        return
    assert not isinstance(actual, str), actual
    timestamp = "2026-01-01T00:00:00.000Z"
    assert envelope(actual, timestamp) == envelope(expected, timestamp)
    style = TableStyle(width=100)
    assert render_table(actual, style) == render_table(expected, style)
    assert render_markdown(actual) == render_markdown(expected)


@pytest.mark.parametrize("builder", [copy_project, messy_project, os.makedirs], ids=["sample", "messy", "empty"])
def test_replica_from_a_snapshot_shows_what_one_shot_status_shows(tmp_path, builder):
    root = str(tmp_path / "p")
    builder(root)
    paths = ProjectPaths(root=root)
    project = load_project(paths)
    if builder is messy_project:
        assert project.warnings and project.errors and project.violations  # every kind of notice is exercised
    for text in ENTITIES:
        assert_same_view(one_shot(project, text), through_replica(project, text, paths))


def test_replica_follows_events_to_what_one_shot_status_shows(tmp_path):
    root = messy_project(str(tmp_path / "p"))
    paths = ProjectPaths(root=root)
    before = load_project(paths)
    set_workflow_step(root, "pm-planning", 4)
    os.remove(os.path.join(root, STATE_DIR, ".route-workflow.state.json"))
    write_atomically(os.path.join(root, STATE_DIR, ".new-flow.state.json"),
                     '{"workflow": "new-flow", "currentStep": 1, "totalSteps": 2, "status": "in_progress"}')
    set_story_title(root, "STORY-V3-020", "Retitled while watching")
    os.remove(os.path.join(root, "docs", "v3-planning", "epics", "EPIC-MAM.md"))
    epic = os.path.join(root, "docs", "v3-planning", "epics", "EPIC-V3-001-scale-assessment.md")
    with open(epic, encoding="utf-8") as handle:
        write_atomically(epic, handle.read().replace("**Priority:**", "**Priority:** P3 (changed)\n**Old:**"))
    after = load_project(paths)
    events = diff_projects(before, after)
    assert {e[0] for e in events} >= {"state_updated", "workflow_removed", "stories_updated", "epics_updated"}
    for text in ENTITIES + ["new-flow", "route-workflow", "EPIC-V3-001"]:
        assert_same_view(one_shot(after, text), through_replica(before, text, paths, events, after))


def test_replica_shows_a_notice_that_arrives_with_a_workflow_event_only(tmp_path):
    # Only the workflow changes (no story event follows): the state_updated itself must bring the new error.
    root = copy_project(str(tmp_path / "p"))
    paths = ProjectPaths(root=root)
    before = load_project(paths)
    write_atomically(os.path.join(root, STATE_DIR, ".pm-planning.state.json"),
                     '{"workflow": "pm-planning", "currentStep": 2, "totalSteps": 5, "status": "paused-by-hand"}')
    after = load_project(paths)
    events = diff_projects(before, after)
    assert [e[0] for e in events] == ["state_updated"]
    assert after.warnings and not before.warnings  # the unknown status: a warning no record carries
    for text in ("summary", "pm-planning", "workflows"):
        assert_same_view(one_shot(after, text), through_replica(before, text, paths, events, after))


def test_backoff_is_full_jitter_doubling_from_half_a_second_to_30_s_and_resets_after_10_s_connected():
    top = Backoff(rand=lambda: 1.0)
    assert [top.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    top.connection_lasted(9.9)
    assert top.next_delay() == 30  # a short connection does not reset it
    top.connection_lasted(10.0)
    assert top.next_delay() == 0.5
    jittered = Backoff()
    for ceiling in (0.5, 1, 2, 4, 8, 16, 30, 30):
        assert 0 <= jittered.next_delay() <= ceiling
    assert Backoff(rand=lambda: 0.0).next_delay() == 0  # "full" jitter: anywhere from zero


@pytest.mark.parametrize("text, topics, workflows", [
    ("", None, None), ("summary", None, None), ("stories", ("stories",), None), ("story:US-014", ("stories",), None),
    ("STORY-V3-020", ("stories", "workflows"), ("STORY-V3-020",)), ("EPIC-MAM", ("epics",), None),
    ("epics", ("epics",), None), ("workflows", ("workflows",), None), ("pm-planning", ("workflows",), ("pm-planning",)),
    ("workflow:dev-implementation", ("workflows",), ("dev-implementation",)),
])
def test_each_view_subscribes_only_to_what_it_shows(tmp_path, text, topics, workflows):
    assert subscription(text, initial_query(text, ProjectPaths(root=str(tmp_path)))) == (topics, workflows)


def test_subscription_url_carries_topics_source_and_resume_point():
    url = subscription_url("ws://127.0.0.1:3001", ("workflows",), ("pm-planning",), "abc", 41)
    assert url == "ws://127.0.0.1:3001/?source=cli&topics=workflows&workflows=pm-planning&runId=abc&since=41"
    assert subscription_url("wss://h/ws?x=1&since=3", None, None) == "wss://h/ws?x=1&source=cli"


def _args(**values):
    return argparse.Namespace(**dict({"interval": None, "server": None, "token": None}, **values))


def test_settings_come_from_the_environment_when_not_given():
    settings = WatchSettings.from_args(_args(), {"MADACE_STATUS_INTERVAL": "0.5", "MADACE_STATUS_SERVER": "ws://h:9",
                                                 "MADACE_STATUS_TOKEN": "t"})
    assert (settings.interval, settings.server, settings.token) == (0.5, "ws://h:9", "t")
    settings = WatchSettings.from_args(_args(interval=3.0, server="ws://x:1", token="u"), {"MADACE_STATUS_TOKEN": "t"})
    assert (settings.interval, settings.server, settings.token) == (3.0, "ws://x:1", "u")
    assert WatchSettings.from_args(_args(), {}).server == "ws://127.0.0.1:3001"
    with pytest.raises(UsageError):
        WatchSettings.from_args(_args(), {"MADACE_STATUS_INTERVAL": "soon"})


def test_the_watcher_comes_from_the_flag_then_the_environment_and_is_checked():
    assert WatchSettings.from_args(_args(), {}).watcher == "auto"
    assert WatchSettings.from_args(_args(), {"MADACE_STATUS_WATCHER": "poll"}).watcher == "poll"
    assert WatchSettings.from_args(_args(watcher="inotify"), {"MADACE_STATUS_WATCHER": "poll"}).watcher == "inotify"
    with pytest.raises(UsageError) as raised:
        WatchSettings.from_args(_args(), {"MADACE_STATUS_WATCHER": "fanotify\x1b[2J"})
    assert "\x1b" not in str(raised.value) and "auto, inotify, kqueue, poll" in str(raised.value)


def test_keyboard_mode_is_restored_when_the_view_raises():
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)

        class Stream:
            def isatty(self):
                return True

            def fileno(self):
                return slave

        with pytest.raises(RuntimeError):
            with KeyboardMode(Stream()) as keyboard:
                assert keyboard.active
                during = termios.tcgetattr(slave)
                assert not during[3] & (termios.ICANON | termios.ECHO)
                raise RuntimeError("a bug in the view")
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(slave)
        os.close(master)


def test_the_header_names_a_server_of_another_project_with_and_without_emoji():
    from madace_status.watch.screen import POLLING, WEBSOCKET, Link
    note = "the server at ws://127.0.0.1:3001 serves another project (acme)"
    with_emoji = Link(POLLING, retry_in_s=4, note=note).words(emoji=True)
    assert with_emoji == "\U0001f534 Polling (retry in 4 s) | \u26a0 " + note
    assert Link(POLLING, retry_in_s=4, note=note).words(emoji=False) == "Polling (retry in 4 s) | " + note
    assert Link(WEBSOCKET, rtt_s=0.002).words(emoji=False) == "WebSocket (rtt 2 ms)"
    assert Link(WEBSOCKET, note="x").to_dict()["note"] == "x" and Link(WEBSOCKET).to_dict()["note"] is None
