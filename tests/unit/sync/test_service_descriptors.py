"""Issue 10 §3 (watcher part): a state file or status file that cannot be opened for lack of descriptors
(EMFILE/ENFILE) is not a broken file: the last good state is kept and the file is read again at the next poll."""
import errno
import json
import os
import shutil

import pytest

from madace_status.project import files
from madace_status.project.loader import ProjectPaths
from madace_status.sync import service as service_module
from madace_status.sync.detect import sources as sources_module
from madace_status.sync.service import SyncService
from madace_status.sync.detect.watcher import project_watcher

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sample-project")
STATES = os.path.join("madace-data", "workflow-states")


def _service(tmp_path):
    root = str(tmp_path / "project")
    shutil.copytree(SAMPLE, root)
    service = SyncService(ProjectPaths(root=root), ws_port=0, poll_interval=0.05)
    # what start() does, without sockets: the watcher's baseline, the first read, and a hub that records events
    service._watcher = project_watcher(service.paths)
    service._watcher.poll()
    service.project = service._load_all()
    service.hub = _RecordingHub()
    return root, service


class _RecordingHub:
    def __init__(self):
        self.events = []

    def project_changed(self):
        pass

    def publish(self, event_type, data, topic, workflow):
        self.events.append((event_type, data))


def _out_of_descriptors(monkeypatch, code, matching):
    real_open = os.open

    def fake_open(path, *args, **kwargs):
        if matching(str(path)):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(files.os, "open", fake_open)


def _status(service, name):
    return {w.name: w for w in service.project.workflows}[name]


def test_emfile_on_a_state_file_keeps_the_last_good_record_then_recovers(tmp_path, monkeypatch):
    root, service = _service(tmp_path)
    path = os.path.join(root, STATES, ".busy.state.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"workflow": "busy", "status": "in_progress"}, handle)
    service.poll_once()
    assert _status(service, "busy").status == "in_progress"
    monkeypatch.setattr(sources_module, "INVALID_GRACE_S", 0)   # no mid-write grace: only the EMFILE rule
    for code in (errno.EMFILE, errno.ENFILE):
        with pytest.MonkeyPatch.context() as patch:
            _out_of_descriptors(patch, code, lambda p: p.endswith(".busy.state.json"))
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({"workflow": "busy", "status": "failed"}, handle)
            os.utime(path, (1, 1))   # a certain change for the watcher, whatever the clock's resolution
            service.poll_once()
            service.poll_once()
            assert _status(service, "busy").status == "in_progress"   # not "invalid: Too many open files"
            assert not any(os.strerror(code) in json.dumps(data, default=str) for _, data in service.hub.events)
        service.poll_once()   # no new change: the retry alone reads it now
        assert _status(service, "busy").status == "failed"
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"workflow": "busy", "status": "in_progress"}, handle)
        os.utime(path, (2, 2))
        service.poll_once()


def test_emfile_on_the_story_file_keeps_the_last_good_stories(tmp_path, monkeypatch):
    root, service = _service(tmp_path)
    monkeypatch.setattr(sources_module, "INVALID_GRACE_S", 0)
    before = [s.id for s in service.project.stories]
    assert before
    with pytest.MonkeyPatch.context() as patch:
        _out_of_descriptors(patch, errno.EMFILE, lambda p: p.endswith("workflow-status.md"))
        status_file = os.path.join(root, "docs", "workflow-status.md")
        with open(status_file, "a", encoding="utf-8") as handle:
            handle.write("\n## TODO\n- [ ] **[STORY-777]** new one\n")
        os.utime(status_file, (3, 3))
        service.poll_once()
        service.poll_once()
        assert [s.id for s in service.project.stories] == before
        assert not any("Too many open files" in e for e in service.project.errors)
    service.poll_once()
    assert "STORY-777" in [s.id for s in service.project.stories]


def test_emfile_on_an_epic_file_keeps_the_last_good_epics_then_recovers(tmp_path, monkeypatch):
    root, service = _service(tmp_path)
    path = os.path.join(root, "docs", "v3-planning", "epics", "EPIC-MAM.md")
    with open(path, encoding="utf-8") as handle:
        original = handle.read()
    before = {e.id: e.status for e in service.project.epics}
    with pytest.MonkeyPatch.context() as patch:
        _out_of_descriptors(patch, errno.EMFILE, lambda p: p.endswith("EPIC-MAM.md"))
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(original.replace("**Status:**", "**Status:** Done <!--") + "-->")
        os.utime(path, (1, 1))
        service.poll_once()
        service.poll_once()
        assert {e.id: e.status for e in service.project.epics} == before
        assert all(e.error is None for e in service.project.epics)   # no "Too many open files" record
        assert not any(os.strerror(errno.EMFILE) in json.dumps(data, default=str) for _, data in service.hub.events)
    service.poll_once()   # no new change: the retry alone reads it now
    mam = {e.id: e for e in service.project.epics}["EPIC-MAM"]
    assert mam.error is None and mam.status.startswith("Done")
