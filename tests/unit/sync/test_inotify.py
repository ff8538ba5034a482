"""The inotify record parser (sans-I/O) driven by recorded event streams, and the ctypes watcher on real
directories (Linux only; elsewhere only the parser runs)."""

import os
import sys

import pytest

from madace_status.sync.detect import inotify_events as ev
from madace_status.sync.detect.inotify_events import InotifyParser, encode_event

# A recorded stream: an editor's save by rename into a watched directory, then the directory deleted.
RECORDED = [
    (1, ev.IN_CREATE, 0, ".story.md.swp"),
    (1, ev.IN_MODIFY, 0, ".story.md.swp"),
    (1, ev.IN_CLOSE_WRITE, 0, ".story.md.swp"),
    (1, ev.IN_MOVED_FROM, 7, ".story.md.swp"),
    (1, ev.IN_MOVED_TO, 7, "story.md"),
    (1, ev.IN_DELETE_SELF, 0, ""),
    (1, ev.IN_IGNORED, 0, ""),
]


def _stream(records):
    return b"".join(encode_event(*record) for record in records)


def _tuples(events):
    return [(event.wd, event.mask, event.cookie, event.name) for event in events]


def test_a_recorded_stream_parses_to_its_events():
    events = InotifyParser().feed(_stream(RECORDED))
    assert _tuples(events) == RECORDED
    assert [event.needs_rearm for event in events] == [False] * 5 + [True, True]


@pytest.mark.parametrize("chunk", [1, 3, 15, 16, 17, 31, 100])
def test_records_split_across_reads_at_any_byte_come_out_whole_and_once(chunk):
    data = _stream(RECORDED)
    parser = InotifyParser()
    events = []
    for start in range(0, len(data), chunk):
        events.extend(parser.feed(data[start:start + chunk]))
    assert _tuples(events) == RECORDED


def test_overflow_and_move_self_ask_for_a_rearm_and_overflow_is_flagged():
    events = InotifyParser().feed(_stream([(-1, ev.IN_Q_OVERFLOW, 0, ""), (2, ev.IN_MOVE_SELF, 0, ""),
                                           (3, ev.IN_CREATE | ev.IN_ISDIR, 0, "workflow-states"),
                                           (3, ev.IN_CREATE, 0, "file")]))
    assert [event.overflow for event in events] == [True, False, False, False]
    assert [event.needs_rearm for event in events] == [True, True, True, False]


def test_names_that_are_not_utf8_survive_as_surrogates():
    raw = b"caf\xe9".decode("utf-8", "surrogateescape")
    (event,) = InotifyParser().feed(encode_event(1, ev.IN_MODIFY, 0, raw))
    assert event.name == raw and "\\udce9" in repr(event)


def test_a_stream_out_of_step_is_an_error_not_unbounded_memory():
    parser = InotifyParser()
    header = encode_event(1, ev.IN_MODIFY, 0, "")[:12] + (2 ** 31).to_bytes(4, sys.byteorder)
    parser.feed(header)
    with pytest.raises(ValueError):
        parser.feed(b"\0" * (ev.MAX_PENDING_BYTES + 1))


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def _drain_until(watcher, predicate, timeout=10.0):
    import select
    import time
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        select.select([watcher.fileno()], [], [], 0.2)
        seen.extend(watcher.read_events())
        if predicate(seen):
            return seen
    raise AssertionError("events not seen: %r" % seen)


@linux_only
def test_a_missing_directory_is_watched_through_its_ancestor_and_rearmed_on_delete_and_recreate(tmp_path):
    from madace_status.sync.detect.inotify import InotifyWatcher
    target = tmp_path / "data" / "states"
    watcher = InotifyWatcher([str(target)])
    try:
        assert set(watcher._watches) == {str(tmp_path)}
        os.makedirs(str(target))
        events = _drain_until(watcher, lambda seen: any(event.needs_rearm for event in seen))
        watcher.rearm()
        assert set(watcher._watches) == {str(target)}
        (target / "a.json").write_text("{}")
        events = _drain_until(watcher, lambda seen: any(event.name == "a.json" for event in seen))
        assert str(target / "a.json") in watcher.paths_of(events)
        os.remove(str(target / "a.json"))
        os.rmdir(str(target))
        _drain_until(watcher, lambda seen: any(event.mask & ev.IN_IGNORED for event in seen))
        watcher.rearm()
        assert set(watcher._watches) == {str(tmp_path / "data")}
    finally:
        watcher.close()


def test_forced_unavailable_inotify_falls_back_to_polling_with_the_reason(monkeypatch, tmp_path):
    from madace_status.project.loader import ProjectPaths
    from madace_status.sync.detect import watch_select
    from madace_status.sync.detect.inotify import FORCE_UNAVAILABLE_ENV
    monkeypatch.setenv(FORCE_UNAVAILABLE_ENV, "1")
    paths = ProjectPaths(str(tmp_path))
    for kind in ("auto", "inotify"):
        backend, active, reason = watch_select.open_backend(kind, paths)
        assert backend is None and active == "poll"
        assert FORCE_UNAVAILABLE_ENV in reason if sys.platform.startswith("linux") or kind == "inotify" else reason
    assert watch_select.open_backend("poll", paths) == (None, "poll", None)


def test_the_detectors_are_the_watcher_backends_and_show_as_their_names():
    import json
    from madace_status.choices import WATCHER_BACKENDS
    from madace_status.sync.detect.watch_select import Detector
    assert tuple(Detector) == WATCHER_BACKENDS  # the same names, in the order `auto` tries them
    assert json.dumps(list(Detector)) == json.dumps(list(WATCHER_BACKENDS))
    assert ["%s" % detector for detector in Detector] == ["{}".format(d) for d in Detector] == list(WATCHER_BACKENDS)


def test_a_c_library_without_inotify_falls_back_with_the_reason(monkeypatch, tmp_path):
    import ctypes
    from madace_status.project.loader import ProjectPaths
    from madace_status.sync.detect import watch_select

    def no_library(*args, **kwargs):
        raise OSError("no libc here")
    monkeypatch.setattr(ctypes, "CDLL", no_library)
    backend, active, reason = watch_select.open_backend("inotify", ProjectPaths(str(tmp_path)))
    assert (backend, active) == (None, "poll") and "no libc here" in reason


@linux_only
def test_the_change_signal_wakes_on_a_write_or_an_interrupt_and_close_releases_the_descriptor(tmp_path):
    import asyncio
    from madace_status.project.loader import ProjectPaths
    from madace_status.sync.detect.watch_select import ChangeSignal, EVENT_COLD_RECHECK_S
    from madace_status.sync.detect.watcher import COLD_RECHECK_S, project_watcher
    paths = ProjectPaths(str(tmp_path))
    long_s = 60.0  # no wait below may end by its timeout

    async def scenario():
        loop = asyncio.get_running_loop()
        files = project_watcher(paths)
        signal = ChangeSignal(loop, "auto", paths, files)
        assert signal.active == "inotify" and files.cold_recheck_s == EVENT_COLD_RECHECK_S
        fd = signal.backend.fileno()
        files.poll()
        loop.call_later(0.05, lambda: (tmp_path / "docs").mkdir())
        await asyncio.wait_for(signal.wait(long_s, long_s), long_s / 2)  # woken by the event
        interrupt = asyncio.Event()
        loop.call_later(0.05, interrupt.set)
        await asyncio.wait_for(signal.wait(long_s, long_s, interrupts=(interrupt,)), long_s / 2)
        signal.close()
        signal.close()  # idempotent
        assert signal.backend is None and files.cold_recheck_s == COLD_RECHECK_S
        with pytest.raises(OSError):
            os.fstat(fd)
        interrupt.clear()
        loop.call_later(0.05, interrupt.set)  # polling: only the interrupt (or polling_s) ends the wait
        await asyncio.wait_for(signal.wait(long_s, long_s, interrupts=(interrupt,)), long_s / 2)

    asyncio.run(scenario())


def test_a_write_is_in_progress_until_its_close_and_directory_events_never_are():
    def event(mask):
        return ev.InotifyEvent(1, mask, 0, "x")
    assert event(ev.IN_MODIFY).write_in_progress and event(ev.IN_CREATE).write_in_progress
    for mask in (ev.IN_CLOSE_WRITE, ev.IN_MOVED_TO, ev.IN_MOVED_FROM, ev.IN_DELETE, ev.IN_ATTRIB,
                 ev.IN_CREATE | ev.IN_ISDIR, ev.IN_Q_OVERFLOW, ev.IN_DELETE_SELF):
        assert not event(mask).write_in_progress, hex(mask)


def _state_dir_project(tmp_path):
    """(its state directory, its ProjectPaths): an empty project with a state directory."""
    from madace_status.project.loader import ProjectPaths
    states = tmp_path / "madace-data" / "workflow-states"
    states.mkdir(parents=True)
    return states, ProjectPaths(str(tmp_path))


def _inotify_signal(paths):
    """On the running loop: the project's PollingWatcher, its first poll done, and the inotify ChangeSignal."""
    import asyncio
    from madace_status.sync.detect.watch_select import ChangeSignal
    from madace_status.sync.detect.watcher import project_watcher
    files = project_watcher(paths)
    signal = ChangeSignal(asyncio.get_running_loop(), "inotify", paths, files)
    files.poll()
    return files, signal


@linux_only
def test_a_write_wakes_the_signal_at_its_close_and_one_left_open_after_the_settle_time(tmp_path, monkeypatch):
    import asyncio
    from madace_status.sync.detect import watch_select
    states, paths = _state_dir_project(tmp_path)
    long_s = 60.0

    async def scenario():
        loop = asyncio.get_running_loop()
        _, signal = _inotify_signal(paths)
        try:
            monkeypatch.setattr(watch_select, "WRITE_SETTLE_S", long_s)  # no look before the close, however slow
            handle = open(str(states / ".a.state.json"), "w")
            handle.write("{")
            handle.flush()  # IN_CREATE and IN_MODIFY, no close: the look waits for the rest
            deadline = loop.time() + long_s / 2
            while signal._settle is None and loop.time() < deadline:
                await asyncio.sleep(0.001)
            assert signal._settle is not None and not signal._pending
            handle.write("}")
            handle.close()  # IN_CLOSE_WRITE: at once
            await asyncio.wait_for(signal.wait(long_s, long_s), long_s / 2)
            assert signal._settle is None  # the look covers the write: no second look for it
            monkeypatch.setattr(watch_select, "WRITE_SETTLE_S", 0.05)
            with open(str(states / ".a.state.json"), "a") as kept_open:
                kept_open.write(" ")
                kept_open.flush()
                started = loop.time()
                await asyncio.wait_for(signal.wait(long_s, long_s), long_s / 2)  # by the settle timer
                assert loop.time() - started >= 0.05 / 2
        finally:
            signal.close()

    asyncio.run(scenario())


@linux_only
def test_a_temporary_file_beside_a_state_file_wakes_no_look_and_its_rename_over_the_file_wakes_one(tmp_path):
    import asyncio
    states, paths = _state_dir_project(tmp_path)
    target = states / ".a.state.json"
    target.write_text("{}")
    timeout_s = 10.0

    async def scenario():
        loop = asyncio.get_running_loop()
        files, signal = _inotify_signal(paths)
        batches = []
        read_events = signal.backend.read_events
        signal.backend.read_events = lambda: batches.append(read_events()) or batches[-1]
        try:
            async def delivered(name):  # until the loop has handed an event naming `name` to the signal
                deadline = loop.time() + timeout_s
                while not any(event.name == name for batch in batches for event in batch):
                    assert loop.time() < deadline, "no inotify event for %s" % name
                    await asyncio.sleep(0.001)
            temporary = states / ".a.state.json.tmp"
            temporary.write_text('{"status": "completed"}')  # IN_CREATE, IN_MODIFY, IN_CLOSE_WRITE: all ignored
            (states / ".a.state.json.swp").write_text("x")
            await delivered(".a.state.json.swp")
            assert not signal._pending and signal._settle is None
            os.replace(str(temporary), str(target))  # IN_MOVED_FROM (ignored), IN_MOVED_TO (the state file)
            await delivered(".a.state.json")
            assert signal._pending
            await asyncio.wait_for(signal.wait(timeout_s * 2, timeout_s * 2), timeout_s)
            assert list(files.poll()) == [str(target)]
        finally:
            signal.close()

    asyncio.run(scenario())


@linux_only
def test_a_directory_replaced_is_a_structural_change_and_the_new_one_is_watched(tmp_path):
    """A state directory removed and made again, or swapped for a symlink: the watch on the old directory would
    see nothing more. The parent's watch names the entry; the watched directory's own deletion names itself."""
    from madace_status.sync.detect.inotify import InotifyWatcher
    parent = tmp_path / "data"
    target = parent / "states"
    os.makedirs(str(target))
    watcher = InotifyWatcher([str(target), str(parent)])
    is_structure = {str(target), str(parent)}.__contains__
    try:
        old_wd = watcher._watches[str(target)]
        os.rename(str(target), str(tmp_path / "moved"))
        os.symlink(str(tmp_path / "moved"), str(target))
        events = _drain_until(watcher, lambda seen: any(event.name == "states" and event.mask & ev.IN_CREATE
                                                        for event in seen))
        structural = watcher.structural_paths(events, is_structure)
        assert str(target) in structural  # the symlink made in the parent: not an IN_ISDIR event
        watcher.rearm()
        os.remove(str(target))
        os.mkdir(str(target))
        events = _drain_until(watcher, lambda seen: any(event.name == "states" and event.mask & ev.IN_CREATE
                                                        for event in seen))
        assert str(target) in watcher.structural_paths(events, is_structure)
        watcher.rearm()
        assert watcher._watches[str(target)] != old_wd  # the new directory is watched, the moved one no more
        (target / "a.json").write_text("{}")
        events = _drain_until(watcher, lambda seen: any(event.name == "a.json" for event in seen))
        assert str(target / "a.json") in watcher.paths_of(events)
        assert watcher.structural_paths(events, is_structure) == []  # a file written is no structural change
        os.remove(str(target / "a.json"))
        os.rmdir(str(target))
        events = _drain_until(watcher, lambda seen: any(event.mask & ev.IN_DELETE_SELF for event in seen))
        assert str(target) in watcher.structural_paths(events, is_structure)
    finally:
        watcher.close()
