"""The replica's position rules (madace_status/sync/replica.py): the welcome's runId, seq from snapshots and
events, events already applied skipped, and a message it cannot apply forgetting the position."""

import json
import os

import pytest

from madace_status.project.loader import ProjectPaths, load_project
from madace_status.sync.events import snapshot_data
from madace_status.sync.replica import Replica, ReplicaOutOfStep, parse_message

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SAMPLE_PROJECT = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")
TOPICS = ("workflows", "stories", "epics")


@pytest.fixture
def project():
    return load_project(ProjectPaths(SAMPLE_PROJECT))


@pytest.fixture
def replica(project):
    replica = Replica(SAMPLE_PROJECT)
    replica.receive("ping", {"runId": "run-1"}, 0)
    assert replica.receive("snapshot", snapshot_data(project, TOPICS), 7) is True
    return replica


def test_welcome_and_snapshot_set_the_position_to_resume_from(replica, project):
    assert replica.position() == ("run-1", 7)
    assert [s.id for s in replica.project().stories] == [s.id for s in project.stories]


def test_an_event_at_or_below_the_last_seq_is_skipped_and_a_new_one_applied(replica, project):
    first = project.stories[0].to_dict()
    renamed = dict(first, title="Renamed")
    data = {"summary": {}, "changes": [], "stories": [renamed]}
    assert replica.receive("stories_updated", data, 7) is False
    assert replica.project().stories[0].title == first["title"]
    assert replica.receive("stories_updated", data, 8) is True
    assert [s.title for s in replica.project().stories] == ["Renamed"]
    assert replica.position() == ("run-1", 8)


def test_a_lifecycle_event_moves_the_seq_but_changes_nothing(replica):
    assert replica.receive("workflow_completed", {"workflowName": "pm-planning", "message": "done"}, 8) is False
    assert replica.position() == ("run-1", 8)


def test_pong_error_and_unknown_types_neither_change_nor_move_the_seq(replica):
    for kind in ("pong", "error", "something_new"):
        assert replica.receive(kind, {"timestamp": 1}, 99) is False
    assert replica.position() == ("run-1", 7)


def test_an_event_it_cannot_apply_forgets_the_position(replica):
    with pytest.raises(ReplicaOutOfStep):
        replica.receive("state_updated", {"workflowName": "x"}, 8)  # no record
    assert replica.position() == (None, None)


def test_parse_message_ignores_what_is_not_a_protocol_message():
    assert parse_message(json.dumps({"type": "snapshot", "seq": 3, "data": {"a": 1}})) == ("snapshot", {"a": 1}, 3)
    assert parse_message(json.dumps({"type": "ping"})) == ("ping", {}, None)
    for text in ("not json", "[1, 2]", '"text"', json.dumps({"data": {}})):
        assert parse_message(text) is None


def test_epic_file_notices_are_told_apart_in_linear_time():
    import time
    from madace_status.sync.replica import _is_epic_file_notice
    assert _is_epic_file_notice("docs/epics/EPIC-MAM.md: contains bytes that are not valid UTF-8")
    assert _is_epic_file_notice("EPIC-V3-001-x.md: line 3 is longer than 4,096 characters and was skipped")
    assert not _is_epic_file_notice("docs/EPIC-dir/notes.md: something")      # EPIC not in the file name
    assert not _is_epic_file_notice("docs/workflow-status.md: line 4: duplicate story id")
    assert _is_epic_file_notice("EPIC.md: x")                                  # nothing after EPIC is fine
    assert _is_epic_file_notice("EPICx.md: x")
    assert not _is_epic_file_notice("my EPIC-1.md: x")                        # a space before the colon
    hostile = "EPIC" * 50000 + "/x: y"
    started = time.perf_counter()
    assert not _is_epic_file_notice(hostile)
    assert time.perf_counter() - started < 1.0  # the regex it replaces took minutes on this input


def test_notices_updated_replaces_the_notices_and_moves_the_seq(replica):
    assert replica.receive("notices_updated", {"warnings": ["no workflow state directory (looked for x)"],
                                               "errors": []}, 8) is True
    assert replica.warnings == ["no workflow state directory (looked for x)"] and replica.errors == []
    assert replica.position() == ("run-1", 8)
    assert "no workflow state directory (looked for x)" in replica.project().warnings


def test_a_workflow_removed_it_did_not_hold_still_brings_its_notices(replica):
    assert replica.receive("workflow_removed", {"workflowName": "never-held", "warnings": ["w"], "errors": []},
                           8) is True
    assert replica.warnings == ["w"]
