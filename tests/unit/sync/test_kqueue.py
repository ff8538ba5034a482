"""The kqueue backend: its sans-I/O kevent mapping driven by recorded kevent sequences, and its I/O part on real
files with a scripted stand-in for `select.kqueue` (this suite also runs on Linux, where there is no kqueue: the
stand-in checks what is registered and closed; the kernel's side is not exercised here)."""

import os
import select
import sys

import pytest

from madace_status.sync.detect import kqueue_events as kq
from madace_status.sync.detect.kqueue_events import (
    BudgetExceeded, descriptor_budget, files_by_directory, interpret, paths_to_recheck, plan_watches)


class KEvent:
    """What `kqueue.control` returns: only the fields the mapping reads."""

    def __init__(self, ident, fflags, filter=kq.EVFILT_VNODE, flags=0):
        self.ident, self.fflags, self.filter, self.flags = ident, fflags, filter, flags


STATES, STORY, EPICS = "/p/states", "/p/docs/story.md", "/p/epics"
WATCHES = {
    3: (STATES, True), 4: ("/p/docs", True), 5: (EPICS, True), 6: ("/p", True),
    7: (STORY, False), 8: (EPICS + "/epic-1.md", False), 9: (STATES + "/.a.state.json", False),
    10: (STATES + "/.b.state.json", False),
}
PLAN = sorted(WATCHES.values(), key=lambda watch: (not watch[1], watch[0]))
BY_DIRECTORY = files_by_directory(PLAN, os.path.dirname)


def _summary(changes):
    return [(change.path, change.fflags, change.needs_rearm) for change in changes]


def test_a_chunked_in_place_write_is_one_change_of_that_file_without_rearm():
    recorded = [KEvent(9, kq.NOTE_WRITE | kq.NOTE_EXTEND), KEvent(9, kq.NOTE_WRITE),
                KEvent(9, kq.NOTE_WRITE | kq.NOTE_EXTEND)]
    changes = interpret(recorded, WATCHES)
    assert _summary(changes) == [(STATES + "/.a.state.json", kq.NOTE_WRITE | kq.NOTE_EXTEND, False)]
    assert paths_to_recheck(changes, BY_DIRECTORY) == [STATES + "/.a.state.json"]


def test_truncate_then_write_and_a_touch_are_changes_of_the_file():
    changes = interpret([KEvent(10, kq.NOTE_ATTRIB), KEvent(10, kq.NOTE_WRITE | kq.NOTE_EXTEND),
                         KEvent(8, kq.NOTE_ATTRIB)], WATCHES)
    assert _summary(changes) == [
        (STATES + "/.b.state.json", kq.NOTE_ATTRIB | kq.NOTE_WRITE | kq.NOTE_EXTEND, False),
        (EPICS + "/epic-1.md", kq.NOTE_ATTRIB, False)]


def test_an_editor_save_by_rename_rearms_and_rechecks_the_story_file_and_its_directory():
    # vim / os.replace: a temporary file written and renamed over story.md. The directory's entries change
    # (NOTE_WRITE); the old story.md vnode loses its last link (NOTE_DELETE); the descriptor now stands for
    # nothing, so the file must be opened again.
    recorded = [KEvent(4, kq.NOTE_WRITE), KEvent(4, kq.NOTE_WRITE), KEvent(7, kq.NOTE_DELETE)]
    changes = interpret(recorded, WATCHES)
    assert _summary(changes) == [("/p/docs", kq.NOTE_WRITE, True), (STORY, kq.NOTE_DELETE, True)]
    assert paths_to_recheck(changes, BY_DIRECTORY) == ["/p/docs", STORY]


def test_a_state_file_replaced_by_rename_is_rechecked_even_if_only_the_directory_reports_it():
    changes = interpret([KEvent(3, kq.NOTE_WRITE)], WATCHES)
    assert [change.needs_rearm for change in changes] == [True]
    assert paths_to_recheck(changes, BY_DIRECTORY) == [STATES, STATES + "/.a.state.json", STATES + "/.b.state.json"]


@pytest.mark.parametrize("fflags", [kq.NOTE_DELETE, kq.NOTE_RENAME, kq.NOTE_REVOKE, kq.NOTE_LINK])
def test_a_watched_directory_deleted_moved_revoked_or_given_a_subdirectory_asks_for_a_rearm(fflags):
    (change,) = interpret([KEvent(6, fflags)], WATCHES)
    assert change.needs_rearm and change.is_directory and change.path == "/p"


@pytest.mark.parametrize("fflags", [kq.NOTE_DELETE, kq.NOTE_RENAME, kq.NOTE_REVOKE])
def test_a_watched_file_that_went_asks_for_a_rearm_and_a_look(fflags):
    (change,) = interpret([KEvent(8, fflags)], WATCHES)
    assert change.gone and change.needs_rearm
    assert paths_to_recheck([change], BY_DIRECTORY) == [EPICS + "/epic-1.md"]


@pytest.mark.parametrize("fflags", [kq.NOTE_WRITE, kq.NOTE_EXTEND, kq.NOTE_ATTRIB, kq.NOTE_LINK])
def test_a_file_changing_in_place_does_not_ask_for_a_rearm(fflags):
    (change,) = interpret([KEvent(7, fflags)], WATCHES)
    assert not change.needs_rearm and not change.entries_changed


def test_kevents_of_closed_descriptors_or_other_filters_are_dropped_and_an_error_counts_as_gone():
    recorded = [KEvent(99, kq.NOTE_WRITE), KEvent(7, kq.NOTE_WRITE, filter=-1),
                KEvent(8, 0, flags=kq.EV_ERROR)]
    assert _summary(interpret(recorded, WATCHES)) == [(EPICS + "/epic-1.md", kq.NOTE_REVOKE, True)]
    assert interpret([], WATCHES) == []


def test_the_platform_filter_value_is_honoured():
    assert _summary(interpret([KEvent(7, kq.NOTE_WRITE, filter=-7)], WATCHES, vnode_filter=-7)) == [
        (STORY, kq.NOTE_WRITE, False)]


def test_a_plan_lists_directories_first_each_path_once():
    plan = plan_watches(["/p/b", "/p/a", "/p/b"], ["/p/a/x", "/p/a/x", "/p/a", "/p/b/y"], budget=10)
    assert plan == [("/p/b", True), ("/p/a", True), ("/p/a/x", False), ("/p/b/y", False)]
    assert files_by_directory(plan, os.path.dirname) == {"/p/a": ["/p/a/x"], "/p/b": ["/p/b/y"]}


def test_a_plan_beyond_the_budget_is_refused_with_the_counts():
    plan_watches(["/d"], ["/d/%d" % index for index in range(3)], budget=4)
    with pytest.raises(BudgetExceeded) as raised:
        plan_watches(["/d"], ["/d/%d" % index for index in range(4)], budget=4)
    assert str(raised.value) == ("5 paths to watch (1 directories, 4 files) exceed the kqueue descriptor "
                                 "budget of 4")


def test_the_budget_is_the_named_maximum_capped_at_a_share_of_the_descriptor_limit():
    assert descriptor_budget(None) == kq.MAX_DESCRIPTORS == 256
    assert descriptor_budget(-1) == kq.MAX_DESCRIPTORS
    assert descriptor_budget(256) == 256 // kq.FD_LIMIT_SHARE_DIVISOR  # macOS's default soft limit
    assert descriptor_budget(1 << 20) == kq.MAX_DESCRIPTORS
    assert descriptor_budget(2) == 0


# --- The I/O part, with a scripted stand-in for the kernel's kqueue ---------------------------------------------

class FakeKqueue:
    """Records registrations; `control(None, n, 0)` hands out the scripted kevents, at most n at a time."""

    instances = []

    def __init__(self):
        self.registered = {}  # fd → fflags
        self.log = []  # every fd registered, in order
        self.pending = []
        self.closed = False
        self._pipe = os.pipe()
        FakeKqueue.instances.append(self)

    def fileno(self):
        return self._pipe[0]

    def control(self, changes, max_events, timeout):
        assert timeout == 0 and not self.closed
        if changes is not None:
            for change in changes:
                assert change.filter == select.KQ_FILTER_VNODE
                assert change.flags == select.KQ_EV_ADD | select.KQ_EV_CLEAR
                os.fstat(change.ident)  # an open descriptor
                self.registered[change.ident] = change.fflags
                self.log.append(change.ident)
            return []
        batch, self.pending = self.pending[:max_events], self.pending[max_events:]
        return batch

    def close(self):
        self.closed = True
        for fd in self._pipe:
            os.close(fd)


class FakeKevent(KEvent):
    def __init__(self, ident, filter=0, flags=0, fflags=0):
        KEvent.__init__(self, ident, fflags, filter, flags)


@pytest.fixture
def fake_kqueue(monkeypatch):
    monkeypatch.setattr(select, "kqueue", FakeKqueue, raising=False)
    monkeypatch.setattr(select, "kevent", FakeKevent, raising=False)
    monkeypatch.setattr(select, "KQ_FILTER_VNODE", kq.EVFILT_VNODE, raising=False)
    monkeypatch.setattr(select, "KQ_EV_ADD", 0x1, raising=False)
    monkeypatch.setattr(select, "KQ_EV_CLEAR", 0x20, raising=False)
    FakeKqueue.instances = []
    return FakeKqueue


def _project(tmp_path):
    from madace_status.project.loader import ProjectPaths
    return ProjectPaths(str(tmp_path))


def _open(tmp_path):
    from madace_status.sync.detect import watch_select
    return watch_select.open_backend("kqueue", _project(tmp_path))


def _closed(fd):
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def test_the_sample_layout_watches_directories_and_files_and_closes_them_all(fake_kqueue, tmp_path):
    from madace_status.sync.detect.watch_select import watched_directories
    backend, active, reason = _open(tmp_path)
    try:
        assert (active, reason) == ("kqueue", None)
        kqueue = fake_kqueue.instances[-1]
        watched = {path for path, _ in backend._watches.values()}
        # Nothing exists but the root: every missing directory is watched through it, once.
        assert watched == {str(tmp_path)} and len(kqueue.registered) == 1
        assert all(fflags == kq.VNODE_FFLAGS for fflags in kqueue.registered.values())
        directories = [d for d in watched_directories(_project(tmp_path)) if d != str(tmp_path)]
        os.makedirs(directories[0])
        state_file = os.path.join(directories[0], ".x.state.json")
        with open(state_file, "w") as handle:
            handle.write("{}")
        old_fds = list(backend._watches)
        root_fd = old_fds[0]
        kqueue.pending = [FakeKevent(root_fd, filter=kq.EVFILT_VNODE, fflags=kq.NOTE_WRITE | kq.NOTE_LINK)]
        events = backend.read_events()
        assert [event.needs_rearm for event in events] == [True]
        assert backend.paths_of(events) == [str(tmp_path)]
        backend.rearm()
        assert all(_closed(fd) or fd in backend._watches for fd in old_fds)  # closed (or its number reused)
        watched = {path: is_directory for path, is_directory in backend._watches.values()}
        assert watched.get(directories[0]) is True
        from madace_status.project.workflows import workflow_name
        assert (watched.get(state_file) is False) == (workflow_name(".x.state.json") is not None)
        fds = list(backend._watches)
        assert set(kqueue.registered) >= set(fds)
    finally:
        backend.close()
    assert all(_closed(fd) for fd in fds) and kqueue.closed


def test_the_sample_project_watches_its_directories_story_file_epics_and_state_files(fake_kqueue, tmp_path):
    import shutil
    sample = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sample-project")
    root = tmp_path / "project"
    shutil.copytree(sample, str(root))
    backend, active, reason = _open(root)
    try:
        assert (active, reason) == ("kqueue", None)
        watched = {path: is_directory for path, is_directory in backend._watches.values()}
        states = str(root / "madace-data" / "workflow-states")
        epics = str(root / "docs" / "v3-planning" / "epics")
        state_files = sorted(os.path.join(states, name) for name in os.listdir(states))
        epic_files = sorted(os.path.join(epics, name) for name in os.listdir(epics))
        # .madace/workflow-states does not exist: the root stands in for it (watched once, like the others). The
        # directories between the root and a watched one are watched too (a directory replaced is their entry).
        expected = {str(root): True, str(root / "docs"): True, states: True, epics: True,
                    str(root / "madace-data"): True, str(root / "docs" / "v3-planning"): True,
                    str(root / ".madace"): None, str(root / "docs" / "workflow-status.md"): False}
        assert {path: watched.get(path) for path in expected} == expected
        assert all(watched.get(path) is False for path in state_files + epic_files)
        assert len(watched) == 6 + 1 + len(state_files) + len(epic_files)
        story_fd = next(fd for fd, watch in backend._watches.items() if watch[0].endswith("workflow-status.md"))
        fake_kqueue.instances[-1].pending = [FakeKevent(story_fd, filter=kq.EVFILT_VNODE, fflags=kq.NOTE_RENAME)]
        events = backend.read_events()
        assert backend.paths_of(events) == [str(root / "docs" / "workflow-status.md")] and events[0].needs_rearm
        states_fd = next(fd for fd, watch in backend._watches.items() if watch[0] == states)
        fake_kqueue.instances[-1].pending = [FakeKevent(states_fd, filter=kq.EVFILT_VNODE, fflags=kq.NOTE_WRITE)]
        assert backend.paths_of(backend.read_events()) == [states] + state_files
    finally:
        backend.close()


def test_a_rearm_keeps_what_still_stands_and_reopens_what_was_replaced_or_reported_gone(fake_kqueue, tmp_path):
    import shutil
    sample = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sample-project")
    root = tmp_path / "project"
    shutil.copytree(sample, str(root))
    backend, active, _ = _open(root)
    try:
        kqueue = fake_kqueue.instances[-1]
        by_path = {watch[0]: fd for fd, watch in backend._watches.items()}
        story = str(root / "docs" / "workflow-status.md")
        epics = str(root / "docs" / "v3-planning" / "epics")
        epic = os.path.join(epics, sorted(os.listdir(epics))[0])
        with open(story + ".tmp", "w") as handle:  # an editor's save: a new file renamed over the old one
            handle.write("# Status\n")
        os.replace(story + ".tmp", story)
        kqueue.pending = [FakeKevent(by_path[epic], filter=kq.EVFILT_VNODE, flags=kq.EV_ERROR)]
        assert [event.gone for event in backend.read_events()] == [True]
        registered_before = len(kqueue.log)
        backend.rearm()
        after = {watch[0]: fd for fd, watch in backend._watches.items()}
        assert set(after) == set(by_path)
        unchanged = [path for path in by_path if path not in (story, epic)]
        assert all(after[path] == by_path[path] for path in unchanged)  # kept, not reopened
        assert os.fstat(after[story]).st_ino == os.stat(story).st_ino  # the new file is watched
        # Exactly the replaced story file and the epic reported gone were opened and registered again.
        assert sorted(kqueue.log[registered_before:]) == sorted([after[story], after[epic]])
        assert backend._gone == set()
        os.remove(story)
        backend.rearm()
        assert story not in {watch[0] for watch in backend._watches.values()}
    finally:
        backend.close()
    assert all(_closed(fd) for fd in after.values())


def test_more_kevents_than_one_read_takes_are_all_read(fake_kqueue, tmp_path):
    from madace_status.sync.detect.kqueue import MAX_EVENTS_PER_READ
    backend, active, _ = _open(tmp_path)
    try:
        (fd,) = backend._watches
        kqueue = fake_kqueue.instances[-1]
        kqueue.pending = [FakeKevent(fd, filter=kq.EVFILT_VNODE, fflags=kq.NOTE_ATTRIB)] * (2 * MAX_EVENTS_PER_READ)
        kqueue.pending.append(FakeKevent(fd, filter=kq.EVFILT_VNODE, fflags=kq.NOTE_WRITE))
        (event,) = backend.read_events()
        assert event.fflags == kq.NOTE_ATTRIB | kq.NOTE_WRITE and kqueue.pending == []
        assert backend.read_events() == []
    finally:
        backend.close()


def test_a_project_beyond_the_descriptor_budget_is_polled_with_the_reason(fake_kqueue, tmp_path, monkeypatch):
    from madace_status.sync.detect import kqueue as kqueue_module
    monkeypatch.setattr(kqueue_module, "descriptor_budget", lambda soft_limit: 3)
    epics = _project(tmp_path).epics_dir_path()[0]
    os.makedirs(epics)
    for index in range(3):
        with open(os.path.join(epics, "epic-%d.md" % index), "w") as handle:
            handle.write("# Epic\n")
    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    backend, active, reason = _open(tmp_path)
    assert backend is None and active == "poll"
    assert "exceed the kqueue descriptor budget of 3" in reason, reason
    assert fake_kqueue.instances[-1].closed
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before  # nothing left open


def test_regular_files_are_the_accepted_regular_entries_only(tmp_path):
    from madace_status.sync.detect.kqueue import regular_files
    (tmp_path / "a.md").write_text("")
    (tmp_path / ".hidden.md").write_text("")
    os.mkdir(str(tmp_path / "sub.md"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(str(tmp_path / "fifo.md"))  # opening it would block: never watched
    story = tmp_path / "story.md"
    story.write_text("")
    files = regular_files([str(story), str(tmp_path / "missing.md"), str(tmp_path / "sub.md")],
                          [(str(tmp_path), lambda name: not name.startswith(".")),
                           (str(tmp_path / "nowhere"), lambda name: True)])
    assert files == [str(story), str(tmp_path / "a.md"), str(story)]


def test_kqueue_where_there_is_none_falls_back_to_polling_with_the_reason(tmp_path, monkeypatch):
    from madace_status.sync.detect import watch_select
    monkeypatch.delattr(select, "kqueue", raising=False)
    backend, active, reason = watch_select.open_backend("kqueue", _project(tmp_path))
    assert (backend, active, reason) == (None, "poll", "no select.kqueue on this platform")
    monkeypatch.setattr(sys, "platform", "sunos5")
    backend, active, reason = watch_select.open_backend("auto", _project(tmp_path))
    assert backend is None and active == "poll" and "sunos5" in reason


def test_auto_picks_kqueue_where_it_exists_and_the_test_switch_disables_it(fake_kqueue, tmp_path, monkeypatch):
    from madace_status.sync.detect import watch_select
    from madace_status.sync.detect.kqueue import FORCE_UNAVAILABLE_ENV
    monkeypatch.setattr(sys, "platform", "darwin")
    backend, active, reason = watch_select.open_backend("auto", _project(tmp_path))
    try:
        assert (active, reason, backend.name) == ("kqueue", None, "kqueue")
    finally:
        backend.close()
    monkeypatch.setenv(FORCE_UNAVAILABLE_ENV, "1")
    assert watch_select.open_backend("auto", _project(tmp_path)) == (
        None, "poll", "kqueue disabled by %s" % FORCE_UNAVAILABLE_ENV)


# --- The service's glue (SyncService._open_backend → watch_select.ChangeSignal) with the stand-in ------------

def _kqueue_service(tmp_path):
    import asyncio
    import shutil
    from madace_status.project.loader import ProjectPaths
    from madace_status.sync.service import SyncService
    from madace_status.sync.detect.watcher import project_watcher
    root = str(tmp_path / "project")
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "sample-project"), root)
    service = SyncService(ProjectPaths(root=root), ws_port=0, poll_interval=0.05, watcher="kqueue")
    service.loop = asyncio.new_event_loop()  # only for add_reader / remove_reader: never run
    asyncio.set_event_loop(service.loop)  # Python 3.9's asyncio.Event binds to the current loop when made
    service._watcher = project_watcher(service.paths)
    service._watcher.poll()
    service._open_backend()
    return root, service


def _stop(service):
    import asyncio
    service._close_backend()
    service.loop.close()
    asyncio.set_event_loop(None)


def test_the_service_marks_the_named_file_hot_and_wakes_on_a_kevent(fake_kqueue, tmp_path):
    root, service = _kqueue_service(tmp_path)
    try:
        assert (service.watcher_active, service.watcher_fallback) == ("kqueue", None)
        states = os.path.join(root, "madace-data", "workflow-states")
        path = os.path.join(states, sorted(os.listdir(states))[0])
        fd = next(fd for fd, watch in service._signal.backend._watches.items() if watch[0] == path)
        fake_kqueue.instances[-1].pending = [FakeKevent(fd, filter=kq.EVFILT_VNODE, fflags=kq.NOTE_WRITE)]
        service._signal._on_readable()
        # A write has no close under kqueue: the look waits WRITE_SETTLE_S for the rest of it.
        assert path in service._watcher._changed_at
        assert not service._signal._pending and service._signal._settle is not None
        fake_kqueue.instances[-1].pending = [FakeKevent(fd, filter=kq.EVFILT_VNODE, fflags=kq.NOTE_DELETE)]
        service._signal._on_readable()
        assert service._signal._pending  # a finished change: at once
    finally:
        _stop(service)


def test_a_backend_that_breaks_hands_over_to_polling_with_the_reason(fake_kqueue, tmp_path, monkeypatch):
    root, service = _kqueue_service(tmp_path)
    try:
        def broken():
            raise OSError("kevent: bad file descriptor")
        monkeypatch.setattr(service._signal.backend, "read_events", broken)
        kqueue = fake_kqueue.instances[-1]
        service._signal._on_readable()
        assert service._signal.backend is None and kqueue.closed
        assert (service.watcher_active, service.watcher_fallback) == ("poll", "kevent: bad file descriptor")
    finally:
        _stop(service)
