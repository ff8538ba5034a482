"""PollingWatcher: what a poll reports, for small directories (every file every poll) and large ones
(listing only on a directory change, idle files checked in turns), with real files and a fake clock."""

import os
import time

from madace_status.sync.detect import watcher as watcher_module
from madace_status.sync.detect.watcher import COLD_RECHECK_S, HOT_FOR_S, PollingWatcher


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def state_files_only(name):
    return name.endswith(".state.json")


def write(path, text, mtime_ns=None):
    with open(path, "w") as handle:
        handle.write(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


# These tests set the files' times themselves: seen from a wall clock a day ahead, no signature is racy (read
# within its clock tick), so no racy re-check is reported. The racy tests below give their own wall clock.
A_DAY_AHEAD_NS = lambda: time.time_ns() + 86400 * 10 ** 9  # noqa: E731


def make_watcher(directory, clock, wall_clock_ns=A_DAY_AHEAD_NS):
    return PollingWatcher(directories=[(str(directory), state_files_only)], clock=clock,
                          wall_clock_ns=wall_clock_ns)


def test_first_poll_reports_every_existing_matching_file(tmp_path):
    write(str(tmp_path / ".a.state.json"), "{}")
    write(str(tmp_path / "notes.txt"), "x")
    changes = make_watcher(tmp_path, FakeClock()).poll()
    assert list(changes) == [str(tmp_path / ".a.state.json")]


def test_in_place_write_atomic_rename_and_removal_are_reported(tmp_path):
    clock = FakeClock()
    path = str(tmp_path / ".a.state.json")
    write(path, "{}", mtime_ns=1)
    watcher = make_watcher(tmp_path, clock)
    watcher.poll()
    clock.now += 0.1
    assert watcher.poll() == {}
    write(path, '{"x": 1}', mtime_ns=2)
    clock.now += 0.1
    assert list(watcher.poll()) == [path]
    replacement = str(tmp_path / ".tmp")
    write(replacement, '{"x": 1}', mtime_ns=2)  # same size and time: only the inode tells
    os.replace(replacement, path)
    clock.now += 0.1
    assert list(watcher.poll()) == [path]
    os.remove(path)
    clock.now += 0.1
    assert watcher.poll() == {path: None}


def test_a_directory_created_after_the_first_poll_is_picked_up(tmp_path):
    clock = FakeClock()
    directory = tmp_path / "later"
    watcher = make_watcher(directory, clock)
    assert watcher.poll() == {}
    directory.mkdir()
    write(str(directory / ".w.state.json"), "{}")
    clock.now += 0.1
    # The directory itself is reported too: that it exists now changes what the project says of it.
    assert sorted(watcher.poll()) == [str(directory), str(directory / ".w.state.json")]


def large_directory(tmp_path, count):
    paths = []
    for index in range(count):
        path = str(tmp_path / (".w%04d.state.json" % index))
        write(path, "{}", mtime_ns=1)
        paths.append(path)
    return paths


def test_large_directory_stats_idle_files_in_turns_and_each_within_the_recheck_time(tmp_path, monkeypatch):
    clock = FakeClock()
    paths = large_directory(tmp_path, 200)
    watcher = make_watcher(tmp_path, clock)
    watcher.poll()
    clock.now += HOT_FOR_S + 1  # every file is idle now
    watcher.poll()
    stats = []
    real_signature = watcher_module.file_signature
    monkeypatch.setattr(watcher_module, "file_signature", lambda path: stats.append(path) or real_signature(path))
    polls = int(COLD_RECHECK_S / 0.1)
    for _ in range(polls):
        clock.now += 0.1
        watcher.poll()
    file_stats = [path for path in stats if path != str(tmp_path)]
    assert set(file_stats) == set(paths)  # every idle file got its turn within COLD_RECHECK_S
    assert len(file_stats) < 1.2 * len(paths)  # ...and about once, not at every poll


def test_large_directory_sees_a_write_to_an_idle_file_within_the_recheck_time(tmp_path):
    clock = FakeClock()
    paths = large_directory(tmp_path, 200)
    watcher = make_watcher(tmp_path, clock)
    watcher.poll()
    clock.now += HOT_FOR_S + 1
    watcher.poll()
    write(paths[123], '{"changed": true}', mtime_ns=5)
    seen = {}
    for _ in range(int(COLD_RECHECK_S / 0.1) + 1):
        clock.now += 0.1
        seen.update(watcher.poll())
    assert seen == {paths[123]: watcher_module.file_signature(paths[123])}


def test_large_directory_sees_a_recently_changed_file_at_every_poll(tmp_path):
    clock = FakeClock()
    paths = large_directory(tmp_path, 200)
    watcher = make_watcher(tmp_path, clock)
    watcher.poll()
    clock.now += HOT_FOR_S + 1
    write(paths[7], "{ }", mtime_ns=2)
    while paths[7] not in watcher.poll():
        clock.now += 0.1
    for mtime in range(3, 8):  # now hot: each write is seen at the very next poll
        write(paths[7], "{  }" + " " * mtime, mtime_ns=mtime)
        clock.now += 0.1
        assert paths[7] in watcher.poll()


def test_large_directory_sees_new_and_removed_files_at_the_next_poll(tmp_path):
    clock = FakeClock()
    paths = large_directory(tmp_path, 200)
    watcher = make_watcher(tmp_path, clock)
    watcher.poll()
    clock.now += HOT_FOR_S + 1
    watcher.poll()
    new_path = str(tmp_path / ".new.state.json")
    write(new_path, "{}")
    os.remove(paths[0])
    clock.now += 0.1
    changes = watcher.poll()
    assert changes[new_path] is not None and changes[paths[0]] is None


def test_with_events_a_look_stats_the_named_files_and_one_slice_not_the_whole_large_directory(tmp_path, monkeypatch):
    clock = FakeClock()
    paths = large_directory(tmp_path, 1000)
    watcher = make_watcher(tmp_path, clock)
    watcher.cold_recheck_s = watcher.full_rescan_s = 60.0  # as an event backend sets them
    watcher.poll()
    clock.now += HOT_FOR_S + 1
    watcher.poll()
    write(paths[500], '{"named": 1}', mtime_ns=7)  # reported by an event
    write(paths[900], '{"unnamed": 1}', mtime_ns=7)  # a missed event: only the safety turns find it
    watcher.mark_hot([paths[500]])
    stats = []
    real_signature = watcher_module.file_signature
    monkeypatch.setattr(watcher_module, "file_signature", lambda path: stats.append(path) or real_signature(path))
    clock.now += 0.01
    changes = watcher.poll()
    assert changes == {paths[500]: real_signature(paths[500])}  # only the named file is read again
    file_stats = [path for path in stats if path != str(tmp_path)]
    assert paths[500] in file_stats and len(file_stats) <= 3  # the named file and a one-file slice
    seen = {}
    for _ in range(int(60.0 / 2.0) + 1):  # safety looks every 2 s: the missed write is found within 60 s
        clock.now += 2.0
        seen.update(watcher.poll())
    assert paths[900] in seen and paths[500] not in seen


def test_cares_about_the_files_a_project_reads_their_directories_and_ancestors_not_temporary_files(tmp_path):
    from madace_status.project.loader import ProjectPaths
    from madace_status.sync.detect.watcher import project_watcher
    root = str(tmp_path)
    cares = project_watcher(ProjectPaths(root)).cares_about
    states = os.path.join(root, "madace-data", "workflow-states")
    epics = os.path.join(root, "docs", "v3-planning", "epics")
    for path in (os.path.join(states, ".pm-planning.state.json"), states, os.path.join(root, "madace-data"),
                 os.path.join(root, "docs", "workflow-status.md"), os.path.join(epics, "EPIC-V3-001.md"), root):
        assert cares(path), path
    for path in (os.path.join(states, ".pm-planning.state.json.tmp"), os.path.join(states, ".x.state.json.swp"),
                 os.path.join(states, "notes.txt"), os.path.join(epics, ".EPIC-V3-001.md.swp"),
                 os.path.join(root, "README.md"), os.path.join(root, "docs", "other.md")):
        assert not cares(path), path


def test_with_events_a_small_directory_is_stat_ed_in_full_only_at_each_full_pass(tmp_path, monkeypatch):
    clock = FakeClock()
    paths = large_directory(tmp_path, 10)
    watcher = make_watcher(tmp_path, clock)
    watcher.full_pass_s = 2.0  # as an event backend sets it
    watcher.poll()
    write(paths[3], '{"named": 1}', mtime_ns=7)
    write(paths[8], '{"unnamed": 1}', mtime_ns=7)  # a missed event
    watcher.mark_hot([paths[3]])
    stats = []
    real_signature = watcher_module.file_signature
    monkeypatch.setattr(watcher_module, "file_signature", lambda path: stats.append(path) or real_signature(path))
    clock.now += 0.5
    assert watcher.poll() == {paths[3]: real_signature(paths[3])}
    assert [path for path in stats if path != str(tmp_path)] == [paths[3]]  # no listing, no other file
    clock.now += 1.5  # the full pass: every file of the small directory, so the missed write is found
    assert list(watcher.poll()) == [paths[8]]


def test_a_new_file_an_event_names_is_listed_even_when_the_directory_looks_unchanged(tmp_path, monkeypatch):
    # Two creations within one tick of the kernel's coarse clock leave the directory's signature as it was
    # after the first: the event naming the second file is what makes the watcher list the directory again.
    real_signature = watcher_module.file_signature
    for count in (1000, 10):
        directory = tmp_path / str(count)
        directory.mkdir()
        clock = FakeClock()
        large_directory(directory, count)
        watcher = make_watcher(directory, clock)
        watcher.full_pass_s = watcher.full_rescan_s = 60.0
        watcher.cold_recheck_s = 60.0
        watcher.poll()
        clock.now += 0.01
        watcher.poll()  # the poll after a change has listed again too: the directory is settled now
        before = real_signature(str(directory))
        new_path = str(directory / ".new.state.json")
        write(new_path, "{}")
        monkeypatch.setattr(watcher_module, "file_signature",  # the same tick: the directory's times unchanged
                            lambda path, d=str(directory), b=before: b if path == d else real_signature(path))
        clock.now += 0.01
        assert new_path not in watcher.poll()  # no event: found only by a full pass
        watcher.mark_hot([new_path])
        clock.now += 0.01
        assert new_path in watcher.poll(), count


# -- nothing stale (issue 18) ----------------------------------------------------------------------------------------

def test_a_large_directory_emptied_at_once_reports_every_file_gone(tmp_path):
    # The cold-slice cursor of a large directory whose listing became empty divided by zero, and the look's
    # changes were dropped.
    clock = FakeClock()
    paths = large_directory(tmp_path, 100)
    watcher = make_watcher(tmp_path, clock)
    watcher.poll()
    clock.now += 0.1
    watcher.poll()
    for path in paths:
        os.remove(path)
    clock.now += 0.1
    assert watcher.poll() == {path: None for path in paths}
    clock.now += 0.1
    assert watcher.poll() == {}


def test_a_racy_signature_is_reported_once_more_after_its_window(tmp_path):
    # A second write of the same size within the clock tick of the first leaves the signature as it was: a
    # signature read within the window of its change time is read again once the window has passed.
    clock = FakeClock()
    path = str(tmp_path / ".a.state.json")
    write(path, '{"x": 1}')
    changed_ns = os.stat(path).st_ctime_ns
    watcher = make_watcher(tmp_path, clock, wall_clock_ns=lambda: changed_ns + 1000)  # read 1 µs after the change
    assert list(watcher.poll()) == [path]
    clock.now += watcher_module.RACY_WINDOW_S / 2
    assert watcher.poll() == {}  # still within the window
    clock.now += watcher_module.RACY_WINDOW_S
    assert list(watcher.poll()) == [path]  # once more: its content is read again
    clock.now += 1.0
    assert watcher.poll() == {}
    watcher.racy_recheck = False  # with an event backend every write is named instead
    write(path, '{"x": 2}')
    clock.now += 1.0
    assert list(watcher.poll()) == [path]
    clock.now += 1.0
    assert watcher.poll() == {}


def test_a_change_time_in_whole_seconds_has_a_window_as_wide_as_its_tick():
    signature = (0, 1, 1, 1700000000 * 10 ** 9)  # a file system with one-second times
    assert watcher_module.racy_window_ns(signature, 1700000000 * 10 ** 9 + 10 ** 9) == 2 * 10 ** 9
    assert watcher_module.racy_window_ns(signature, 1700000000 * 10 ** 9 + 3 * 10 ** 9) == 0
    fine = (0, 1, 1, 1700000000 * 10 ** 9 + 123456789)
    assert watcher_module.racy_window_ns(fine, fine[3] + 10 ** 6) == int(watcher_module.RACY_WINDOW_S * 10 ** 9)
    assert watcher_module.racy_window_ns(fine, fine[3] + 10 ** 9) == 0


def test_a_file_an_event_names_is_reported_even_with_the_same_signature(tmp_path, monkeypatch):
    clock = FakeClock()
    path = str(tmp_path / ".a.state.json")
    write(path, '{"x": 1}')
    watcher = make_watcher(tmp_path, clock)
    watcher.full_pass_s = 60.0
    watcher.poll()
    write(path, '{"x": 2}')  # same size; the signature below is made to look the same
    old = watcher._signatures[path]
    real_signature = watcher_module.file_signature
    monkeypatch.setattr(watcher_module, "file_signature", lambda p: old if p == path else real_signature(p))
    clock.now += 0.01
    assert watcher.poll() == {}  # no event: the same signature says nothing changed
    watcher.mark_hot([path])
    clock.now += 0.01
    assert list(watcher.poll()) == [path]


def test_a_name_an_event_gives_that_the_watcher_never_saw_is_reported_gone(tmp_path):
    # Made and removed between two polls, after the reader listed it: the reader decides.
    clock = FakeClock()
    watcher = make_watcher(tmp_path, clock)
    watcher.full_pass_s = 60.0
    watcher.poll()
    ghost = str(tmp_path / ".ghost.state.json")
    watcher.mark_hot([ghost, str(tmp_path / "notes.txt")])
    clock.now += 0.01
    assert watcher.poll() == {ghost: None}  # a name the directory does not accept is not reported


def test_a_watched_directory_replaced_or_gone_is_reported_itself(tmp_path):
    clock = FakeClock()
    directory = tmp_path / "states"
    directory.mkdir()
    watcher = make_watcher(directory, clock)
    watcher.poll()
    os.rmdir(str(directory))
    clock.now += 0.1
    assert watcher.poll() == {str(directory): None}
    directory.mkdir()
    clock.now += 0.1
    assert list(watcher.poll()) == [str(directory)]
    os.rename(str(directory), str(tmp_path / "elsewhere"))
    directory.mkdir()  # a new directory (a new inode) at the same path, still empty
    clock.now += 0.1
    assert list(watcher.poll()) == [str(directory)]


def test_a_directory_swapped_for_a_symlink_to_the_same_files_is_reported(tmp_path):
    # The files keep their signatures (the same inodes), but whether they may be read changed: report it.
    clock = FakeClock()
    directory = tmp_path / "states"
    directory.mkdir()
    write(str(directory / ".a.state.json"), "{}")
    watcher = make_watcher(directory, clock)
    watcher.poll()
    os.rename(str(directory), str(tmp_path / "moved"))
    os.symlink(str(tmp_path / "moved"), str(directory))
    clock.now += 0.1
    assert str(directory) in watcher.poll()
