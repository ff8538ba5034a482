"""diff_projects on projects the sync service assembles: records it did not read again are the same objects,
so a change of one state file costs no to_dict() of the stories or epics (2,000 stories: 13.6 → 2.2 ms a poll)."""
import json
import os
import shutil

from madace_status.project.loader import ProjectPaths
from madace_status.project.model import Epic, Story
from madace_status.sync.events import diff_projects
from madace_status.sync.detect.sources import ProjectSources

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sample-project")
STATE = os.path.join("madace-data", "workflow-states", ".pm-planning.state.json")
STORY_FILE = os.path.join("docs", "workflow-status.md")


def _sources(tmp_path):
    root = str(tmp_path / "project")
    shutil.copytree(SAMPLE, root)
    sources = ProjectSources(ProjectPaths(root=root))
    return root, sources, sources.load_all()


def _count_to_dict(monkeypatch, record_class):
    calls = []
    original = record_class.to_dict
    monkeypatch.setattr(record_class, "to_dict", lambda self: calls.append(self) or original(self))
    return calls


def test_a_state_file_change_diffs_without_serialising_a_story_or_an_epic(tmp_path, monkeypatch):
    root, sources, before = _sources(tmp_path)
    path = os.path.join(root, STATE)
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    document["currentStep"] = 4
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    sources.reload([path], False, False)
    after = sources.build_project(before.sources)
    story_calls, epic_calls = _count_to_dict(monkeypatch, Story), _count_to_dict(monkeypatch, Epic)
    events = diff_projects(before, after)
    assert [event[0] for event in events] == ["state_updated"]
    assert events[0][1]["workflow"]["currentStep"] == 4
    assert story_calls == [] and epic_calls == []


def test_a_story_file_change_still_compares_every_story_by_content(tmp_path):
    root, sources, before = _sources(tmp_path)
    path = os.path.join(root, STORY_FILE)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    sources.reload([], True, False)  # read again, unchanged: new objects, equal content → no event
    same = sources.build_project(before.sources)
    assert same.stories[0] is not before.stories[0] and diff_projects(before, same) == []
    first = before.stories[0]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text.replace(first.title, first.title + " (renamed)", 1))
    sources.reload([], True, False)
    after = sources.build_project(before.sources)
    events = diff_projects(same, after)
    assert [event[0] for event in events] == ["stories_updated"]
    renamed = [story for story in events[0][1]["stories"] if story["id"] == first.id]
    assert renamed[0]["title"] == first.title + " (renamed)"


def test_notices_that_change_with_no_record_are_carried_by_a_notices_updated_to_every_client(tmp_path):
    # The state directory gone after its last file: no workflow event is left to carry the new warning.
    root, sources, before = _sources(tmp_path)
    states = os.path.dirname(os.path.join(root, STATE))
    for name in os.listdir(states):
        os.remove(os.path.join(states, name))
    sources.reload(None, False, False)
    emptied = sources.build_project(before.sources)
    os.rmdir(states)
    sources.reload(None, False, False)
    gone = sources.build_project(before.sources)
    events = diff_projects(emptied, gone)
    assert [(kind, topic) for kind, _, topic, _ in events] == [("notices_updated", None)]
    assert any("no workflow state directory" in warning for warning in events[0][1]["warnings"])
    assert events[0][1]["errors"] == gone.errors
    assert diff_projects(gone, gone) == []


def test_notices_that_change_with_a_record_ride_on_its_event(tmp_path):
    root, sources, before = _sources(tmp_path)
    path = os.path.join(root, STATE)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("{ not json")
    sources.reload([path], False, False, grace=False)
    events = diff_projects(before, sources.build_project(before.sources))
    assert [kind for kind, _, _, _ in events] == ["state_updated"]
    assert events[0][1]["errors"] and "warnings" in events[0][1]


def test_an_event_type_is_its_wire_string_in_json_in_logs_and_in_lookups():
    from madace_status.project.render.envelope import compact_json
    from madace_status.sync.events import EVENT_TYPES, EventType
    for event_type in EventType:
        wire = event_type.value
        assert compact_json({"type": event_type}) == '{"type":"%s"}' % wire
        assert json.dumps({event_type: [event_type]}, ensure_ascii=False) == '{"%s": ["%s"]}' % (wire, wire)
        assert "%s" % event_type == "{}".format(event_type) == str(event_type) == wire
        assert wire in EVENT_TYPES and {wire: 1}[event_type] == 1 and event_type == wire
    assert "snapshot" not in EVENT_TYPES and "pong" not in EVENT_TYPES
