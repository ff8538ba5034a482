"""The flow history (madace_status/sync/history/: samples.py, store.py, files.py): samples, the line format, corrupt
lines, dedupe, the rotation bounds, corrupt / unreadable / missing files, an unwritable cache directory and where the
file lives."""

import errno
import json
import logging
import os
import stat
import subprocess
import sys

import pytest

from madace_status.project.model import Project, Story
from madace_status.sync.history.samples import (HISTORY_MAX_LINE_BYTES, HISTORY_READ_MAX_BYTES, HistoryLog,
                                                encode_sample, parse_history, parse_line, sample_of)
from madace_status.sync.history import files as history_files
from madace_status.sync.history import store as store_module
from madace_status.sync.history.store import HistoryStore, cache_directory, history_file_name

STATES = ("BACKLOG", "TODO", "IN_PROGRESS", "DONE")


def board(backlog=0, todo=0, in_progress=0, done=0, points=2):
    """A project with that many stories per state, each of `points` points."""
    stories = []
    for state, count in zip(STATES, (backlog, todo, in_progress, done)):
        stories += [Story("%s-%d" % (state, n), "story", state, points=points) for n in range(count)]
    return Project("/nowhere", [], stories, [])


def sample(done, at="2026-11-29T03:00:00.000Z"):
    return {"at": at, "counts": {"BACKLOG": 1, "TODO": 0, "IN_PROGRESS": 0, "DONE": done},
            "points": {"BACKLOG": 2, "TODO": 0, "IN_PROGRESS": 0, "DONE": 2.5 * done}}


@pytest.fixture
def environ(tmp_path):
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "project"
    path.mkdir()
    return str(path)


def open_store(root, environ, **bounds):
    return HistoryStore.open(root, environ=environ, **bounds)


def file_samples(store):
    assert store.flush(), "the writer did not finish within its timeout"
    with open(store.path, "rb") as handle:
        samples, skipped = parse_history(handle.read())
    assert skipped == 0
    return samples


def history_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "madace_status.history" and r.levelno >= logging.WARNING]


# -- sans-I/O ------------------------------------------------------------------------------------------------------

def test_a_sample_holds_counts_and_points_per_state():
    taken = sample_of(board(backlog=2, done=3, points=1.5), now=0)
    assert taken == {"at": "1970-01-01T00:00:00.000Z",
                     "counts": {"BACKLOG": 2, "TODO": 0, "IN_PROGRESS": 0, "DONE": 3},
                     "points": {"BACKLOG": 3, "TODO": 0, "IN_PROGRESS": 0, "DONE": 4.5}}


def test_no_sample_while_the_story_file_cannot_be_read():
    project = Project("/nowhere", [], [], [], story_errors=["docs/workflow-status.md: cannot read"])
    assert sample_of(project) is None


def test_a_line_round_trips_and_is_compact():
    line = encode_sample(sample(3))
    assert line.endswith(b"\n") and b" " not in line and len(line) < 250
    assert parse_line(line.rstrip(b"\n")) == sample(3)


@pytest.mark.parametrize("line", [
    b"garbage", b"\xff\xfe not utf-8", b"[1, 2]", b"{}", b'"a string"',
    b'{"at": "yesterday", "counts": {}, "points": {}}',
    json.dumps(dict(sample(1), counts={"BACKLOG": 1, "TODO": 0, "IN_PROGRESS": 0})).encode(),
    json.dumps(dict(sample(1), counts={"BACKLOG": True, "TODO": 0, "IN_PROGRESS": 0, "DONE": 1})).encode(),
    json.dumps(dict(sample(1), counts={"BACKLOG": -1, "TODO": 0, "IN_PROGRESS": 0, "DONE": 1})).encode(),
    json.dumps(dict(sample(1), counts={"BACKLOG": 1.5, "TODO": 0, "IN_PROGRESS": 0, "DONE": 1})).encode(),
    encode_sample(sample(1)).rstrip(b"\n").replace(b'"DONE":2.5', b'"DONE":NaN'),
    b'{"at": "2026-11-29T03:00:00.000Z", "counts": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    encode_sample(dict(sample(1), pad="x" * HISTORY_MAX_LINE_BYTES)).rstrip(b"\n"),
])
def test_a_corrupt_line_is_refused(line):
    assert parse_line(line) is None


def test_corrupt_lines_are_skipped_and_counted():
    data = encode_sample(sample(1)) + b"garbage\n\n" + encode_sample(sample(2)) + b'{"at": "2026-11-29T0'
    samples, skipped = parse_history(data)
    assert (samples, skipped) == ([sample(1), sample(2)], 2)


def test_the_log_skips_a_sample_with_the_same_flow_and_halves_past_its_cap():
    log = HistoryLog(max_samples=10)
    assert log.add(sample(0)) is True
    assert log.add(sample(0, at="2026-11-29T04:00:00.000Z")) is False
    for done in range(1, 11):
        assert log.add(sample(done))
    assert log.over
    log.halve()
    assert [s["counts"]["DONE"] for s in log.samples] == [6, 7, 8, 9, 10]
    assert log.newest(2) == [sample(9), sample(10)] and log.newest(0) == []


# -- the store and its file -----------------------------------------------------------------------------------------

def test_samples_reach_a_private_file_and_survive_a_reopen(root, environ):
    store = open_store(root, environ)
    assert store.record(board(backlog=3)) is True
    assert store.record(board(backlog=3)) is False  # the same flow: not kept
    assert store.record(board(backlog=2, todo=1)) is True
    assert [s["counts"]["TODO"] for s in file_samples(store)] == [0, 1]
    directory = os.path.dirname(store.path)
    assert directory == os.path.join(environ["XDG_CACHE_HOME"], "madace_status")
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    store.close()
    again = open_store(root, environ)
    assert again.samples() == store.samples() and len(again.samples()) == 2
    assert again.record(board(backlog=2, todo=1)) is False  # equal to the last stored sample: not kept at a restart
    assert again.samples(1) == store.samples()[-1:]
    again.close()


def test_rotation_keeps_the_newest_half_within_the_sample_cap(root, environ):
    store = open_store(root, environ, max_samples=10)
    for done in range(1, 26):
        store.record(board(done=done))
        assert len(store.samples()) <= 10
    on_disk = file_samples(store)
    assert on_disk == store.samples()
    assert on_disk[-1]["counts"]["DONE"] == 25 and len(on_disk) <= 10
    assert not [name for name in os.listdir(os.path.dirname(store.path)) if name.endswith(".tmp")]
    store.close()


def test_rotation_keeps_the_file_within_its_byte_cap(root, environ):
    line_bytes = len(encode_sample(sample_of(board(done=100))))
    cap = 20 * line_bytes
    store = open_store(root, environ, max_file_bytes=cap)
    for done in range(100, 160):
        store.record(board(done=done))
        assert store.flush()
        assert os.path.getsize(store.path) <= cap + line_bytes
    assert file_samples(store) == store.samples() and store.samples()[-1]["counts"]["DONE"] == 159
    store.close()


def test_corrupt_lines_in_the_file_are_skipped_with_one_warning_then_cleaned(root, environ, caplog):
    store = open_store(root, environ)
    store.record(board(done=1))
    store.record(board(done=2))
    store.close()
    with open(store.path, "ab") as handle:
        handle.write(b"garbage\x1b[2J\n{\"at\": 1}\n" + encode_sample(sample(9))[:30])
    caplog.set_level(logging.INFO, "madace_status.history")
    again = open_store(root, environ)
    assert [s["counts"]["DONE"] for s in again.samples()] == [1, 2]
    warnings = history_warnings(caplog)
    assert len(warnings) == 1 and "skipped 3 corrupt lines" in warnings[0] and "\x1b" not in warnings[0]
    again.record(board(done=3))
    assert [s["counts"]["DONE"] for s in file_samples(again)] == [1, 2, 3]  # rewritten without the bad lines
    again.close()


@pytest.mark.parametrize("kind", ["garbage", "too large", "symlink", "directory"])
def test_a_corrupt_or_unreadable_file_starts_again_with_one_warning(root, environ, caplog, tmp_path, kind):
    path = os.path.join(environ["XDG_CACHE_HOME"], "madace_status", history_file_name(root))
    os.makedirs(os.path.dirname(path), mode=0o700)
    target = tmp_path / "elsewhere.jsonl"
    target.write_bytes(encode_sample(sample(7)))
    if kind == "garbage":
        with open(path, "wb") as handle:
            handle.write(os.urandom(4096).replace(b"\n", b"") + b"\n")
    elif kind == "too large":
        with open(path, "wb") as handle:
            handle.write(b"x" * (HISTORY_READ_MAX_BYTES + 1))
    elif kind == "symlink":
        os.symlink(str(target), path)
    else:
        os.mkdir(path)
    caplog.set_level(logging.INFO, "madace_status.history")
    store = open_store(root, environ)
    assert store.samples() == []
    assert len(history_warnings(caplog)) == 1, history_warnings(caplog)
    assert store.record(board(todo=1)) is True
    if kind == "directory":  # cannot be replaced by a file: kept in memory, tried again later, one more warning
        store.flush()
        assert store.status()["persisted"] is False and "Is a directory" in store.status()["reason"]
        assert len(history_warnings(caplog)) == 2
    else:
        assert [s["counts"]["TODO"] for s in file_samples(store)] == [1]
        assert not os.path.islink(path)
    assert target.read_bytes() == encode_sample(sample(7))  # what a symlink pointed to is never written
    assert store.samples()[-1]["counts"]["TODO"] == 1
    store.close()


def test_a_missing_file_is_a_new_history_without_a_warning(root, environ, caplog):
    caplog.set_level(logging.INFO, "madace_status.history")
    store = open_store(root, environ)
    assert store.samples() == [] and history_warnings(caplog) == []
    assert any("starting a new flow history" in r.getMessage() for r in caplog.records)
    store.close()


def test_an_unwritable_cache_directory_keeps_the_history_in_memory(root, tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    caplog.set_level(logging.INFO, "madace_status.history")
    store = open_store(root, {"XDG_CACHE_HOME": str(blocker)})
    assert store.path is None and len(history_warnings(caplog)) == 1
    assert store.record(board(done=1)) and store.record(board(done=2))
    assert [s["counts"]["DONE"] for s in store.samples()] == [1, 2]
    assert store.flush() and len(history_warnings(caplog)) == 1
    store.close()


def test_a_cache_directory_inside_the_project_is_refused(root, caplog):
    caplog.set_level(logging.INFO, "madace_status.history")
    store = open_store(root, {"XDG_CACHE_HOME": os.path.join(root, ".cache")})
    store.record(board(done=1))
    assert store.path is None and os.listdir(root) == []
    assert len(history_warnings(caplog)) == 1 and "inside the project" in history_warnings(caplog)[0]


def test_disabled_history_writes_nothing(root, environ):
    store = HistoryStore.for_project(root, enabled=False, environ=environ)
    assert store.record(board(done=1)) and store.samples()[0]["counts"]["DONE"] == 1
    assert not os.path.exists(environ["XDG_CACHE_HOME"])


def test_opening_is_deferred_to_the_first_use(root, environ):
    store = HistoryStore.for_project(root, environ=environ)
    assert not os.path.exists(environ["XDG_CACHE_HOME"])
    store.record(board(done=1))
    assert file_samples(store)[0]["counts"]["DONE"] == 1
    store.close()


def test_the_cache_directory_and_file_name():
    assert cache_directory({"XDG_CACHE_HOME": "/c"}) == os.path.join("/c", "madace_status")
    home = os.path.expanduser("~")
    assert cache_directory({"XDG_CACHE_HOME": "relative"}, "linux") == os.path.join(home, ".cache", "madace_status")
    assert cache_directory({}, "darwin") == os.path.join(home, "Library", "Caches", "madace_status")


def test_one_file_per_real_project_root(tmp_path):
    (tmp_path / "a b\x1b").mkdir()
    (tmp_path / "other").mkdir()
    os.symlink(str(tmp_path / "a b\x1b"), str(tmp_path / "link"))
    name = history_file_name(str(tmp_path / "a b\x1b"))
    assert name == history_file_name(str(tmp_path / "link")) != history_file_name(str(tmp_path / "other"))
    assert name.startswith("a-b-") and name.endswith(".jsonl") and "\x1b" not in name


def test_a_symlink_in_place_of_the_cache_directory_is_refused(root, environ, tmp_path, caplog):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.makedirs(environ["XDG_CACHE_HOME"])
    os.symlink(str(elsewhere), os.path.join(environ["XDG_CACHE_HOME"], "madace_status"))
    caplog.set_level(logging.INFO, "madace_status.history")
    store = open_store(root, environ)
    store.record(board(done=1))
    assert store.path is None and os.listdir(str(elsewhere)) == []
    assert len(history_warnings(caplog)) == 1 and "not a directory" in history_warnings(caplog)[0]


def test_a_wide_open_cache_directory_is_made_private(root, environ):
    directory = os.path.join(environ["XDG_CACHE_HOME"], "madace_status")
    os.makedirs(directory)
    os.chmod(directory, 0o777)
    store = open_store(root, environ)
    assert store.path is not None and stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    store.close()


@pytest.mark.parametrize("plant", [os.symlink, os.link], ids=["symlink", "hard link"])
def test_a_link_put_in_place_of_the_file_later_is_replaced_not_written_through(root, environ, tmp_path, plant):
    # O_NOFOLLOW refuses a symlink; a hard link is refused by the descriptor's link count (issue 18).
    store = open_store(root, environ)
    store.record(board(done=1))
    assert store.flush()
    target = tmp_path / "target"
    target.write_bytes(b"keep\n")
    os.unlink(store.path)
    plant(str(target), store.path)
    store.record(board(done=2))
    assert [s["counts"]["DONE"] for s in file_samples(store)] == [1, 2]
    assert not os.path.islink(store.path) and os.stat(store.path).st_nlink == 1
    assert target.read_bytes() == b"keep\n"
    store.close()


# -- a full disk, two servers, a hard link (issue 18) ---------------------------------------------------------------

class FullDisk:
    """os.write of the history's writer failing with ENOSPC until `freed`."""

    def __init__(self, monkeypatch):
        self.full = True
        real_write = history_files.os.write

        def write(fd, data):
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)
        monkeypatch.setattr(history_files.os, "write", write)


def test_a_full_disk_keeps_the_samples_and_writes_them_once_space_is_freed(root, environ, caplog, monkeypatch):
    caplog.set_level(logging.INFO, "madace_status.history")
    store = open_store(root, environ)
    store.record(board(done=1))
    assert store.flush() and store.status() == {"persisted": True, "reason": None}
    disk = FullDisk(monkeypatch)
    store.record(board(done=2))
    assert store.flush()
    status = store.status()
    assert status["persisted"] is False and "No space left on device" in status["reason"]
    store.record(board(done=3))  # within the backoff: not even tried
    assert store.flush() and len(history_warnings(caplog)) == 1
    disk.full = False
    store.record(board(done=4))  # samples recorded after space is freed reach the file at exit at the latest
    assert store.close()
    assert [s["counts"]["DONE"] for s in file_samples(store)] == [1, 2, 3, 4]
    assert any("written again" in r.getMessage() for r in caplog.records)


def test_a_full_disk_is_tried_again_after_the_backoff_not_at_every_sample(root, environ, monkeypatch):
    store = open_store(root, environ)
    disk = FullDisk(monkeypatch)
    attempts = []
    real_replace = store._replace
    monkeypatch.setattr(store, "_replace",
                        lambda path, samples: attempts.append(len(samples)) or real_replace(path, samples))
    store.record(board(done=1))
    assert store.flush()
    for done in range(2, 20):
        store.record(board(done=done))
        assert store.flush()
    assert len(attempts) <= 1  # the first failure was an append; nothing more within WRITE_RETRY_FIRST_S
    disk.full = False
    store._retry_at = 0.0  # the backoff has passed
    store.record(board(done=20))
    assert store.flush() and store.status()["persisted"] is True
    assert [s["counts"]["DONE"] for s in file_samples(store)] == list(range(1, 21))
    store.close()


def test_in_memory_only_nothing_piles_up_for_a_file_that_is_never_written(root, environ):
    # --no-history, the demo, or a replica that does not write: the capped log is all that is held.
    store = HistoryStore.for_project(root, enabled=False, environ=environ, max_samples=8)
    for done in range(100):
        store.record(board(done=done), now=1_000.0 + done)
    assert len(store.samples()) <= 8 and store._pending == []
    store.close()


def test_a_second_server_of_the_same_project_keeps_memory_only_and_says_so(root, environ, caplog):
    caplog.set_level(logging.INFO, "madace_status.history")
    first = open_store(root, environ)
    first.record(board(done=1))
    assert first.flush()
    second = open_store(root, environ)
    assert [s["counts"]["DONE"] for s in second.samples()] == [1]  # it reads what the writer wrote
    assert second.status()["persisted"] is False
    assert "another server of this project writes it" in second.status()["reason"]
    second.record(board(done=2))
    first.record(board(done=3))
    assert second.close() and first.flush()
    assert [s["counts"]["DONE"] for s in file_samples(first)] == [1, 3]  # each sample stored once, by one writer
    first.close()
    third = open_store(root, environ)  # the writer is gone: the lock is free again
    assert third.status() == {"persisted": True, "reason": None}
    third.close()


def test_when_the_writer_is_gone_a_reader_takes_over_with_both_servers_samples(root, environ, caplog):
    # Replicas (README, "Replicas"): one writes, the others read; when the writer stops, another one writes on.
    caplog.set_level(logging.INFO, "madace_status.history")
    first = open_store(root, environ)
    first.record(board(done=1), now=1_000.0)
    assert first.flush()
    second = open_store(root, environ)
    second.record(board(done=2), now=1_001.0)  # the writer is alive: memory only
    assert second.status()["persisted"] is False and second.standby and not second.try_takeover()
    first.record(board(done=3), now=1_002.0)
    assert first.close()
    second.record(board(done=4), now=1_003.0)
    assert second.try_takeover() and not second.standby  # the lock is free now: this one writes from here on
    assert second.flush() and second.status() == {"persisted": True, "reason": None}
    assert "now writes" in caplog.text
    # The file: what the first wrote, then the second's samples newer than those (done=2 is older than 3).
    assert [s["counts"]["DONE"] for s in file_samples(second)] == [1, 3, 4]
    assert [s["counts"]["DONE"] for s in second.samples()] == [1, 3, 4]
    second.record(board(done=5), now=1_004.0)
    assert second.close()
    assert [s["counts"]["DONE"] for s in file_samples(second)] == [1, 3, 4, 5]


def test_a_takeover_that_fails_releases_the_lock_and_stays_a_reader(root, environ, monkeypatch):
    first = open_store(root, environ)
    first.record(board(done=1), now=1_000.0)
    assert first.flush()
    second = open_store(root, environ)
    assert first.close() and second.standby

    def broken(data):
        raise RuntimeError("a bug while reading the file")

    monkeypatch.setattr(store_module, "parse_history", broken)
    with pytest.raises(RuntimeError):
        second.try_takeover()
    monkeypatch.undo()
    assert second.standby and second.status()["persisted"] is False
    third = open_store(root, environ)  # the lock was let go: the next one to try gets it
    assert third.status() == {"persisted": True, "reason": None}
    third.close()
    second.close()


def test_the_writer_lock_is_held_across_processes(root, environ):
    store = open_store(root, environ)
    store.record(board(done=1))
    assert store.flush()
    probe = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)")
    lock_path = store.path + history_files.LOCK_SUFFIX
    assert subprocess.run([sys.executable, "-c", probe, lock_path]).returncode == 3
    store.close()
    assert subprocess.run([sys.executable, "-c", probe, lock_path]).returncode == 0


def test_a_hard_linked_file_is_not_read_at_start(root, environ, tmp_path, caplog):
    path = os.path.join(environ["XDG_CACHE_HOME"], "madace_status", history_file_name(root))
    os.makedirs(os.path.dirname(path), mode=0o700)
    victim = tmp_path / "victim"
    victim.write_bytes(encode_sample(sample(7)))
    os.link(str(victim), path)
    caplog.set_level(logging.INFO, "madace_status.history")
    store = open_store(root, environ)
    assert store.samples() == [] and "links" in history_warnings(caplog)[0]
    store.record(board(done=1))
    assert store.flush() and victim.read_bytes() == encode_sample(sample(7))
    store.close()
