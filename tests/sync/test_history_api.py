"""GET /api/history against a real `serve`: a sample per change of the story file, limit validation, a corrupt
history file starting again with a warning (never a 500), history surviving a restart and a stopped sync service,
--no-history, and nothing written inside the project."""

import os
import time

import pytest

from madace_status.sync.history.samples import HISTORY_MAX_SAMPLES, HISTORY_READ_MAX_BYTES
from madace_status.sync.history.store import history_file_name
from sync_helpers import WAIT_S, clean_env

TODO_LINE = "- [ ] **[STORY-V3-021]** Create Web UI status dashboard page | 5 points | @sam\n"
DONE_HEADING = "Completed stories with dates and points:\n\n"
START_COUNTS = {"BACKLOG": 5, "TODO": 1, "IN_PROGRESS": 1, "DONE": 4}  # the sample project's board


@pytest.fixture
def cache(tmp_path):
    """A cache directory of this test's own (XDG_CACHE_HOME), and the history file `serve` keeps in it."""
    class Cache:
        home = str(tmp_path / "cache")

        def env(self, **extra):
            return clean_env(XDG_CACHE_HOME=self.home, **extra)

        def file_for(self, project):
            return os.path.join(self.home, "madace_status", history_file_name(project.root))
    return Cache()


def move_todo_story_to_done(project):
    text = project.read_stories()
    assert TODO_LINE in text and DONE_HEADING in text
    text = text.replace(TODO_LINE, "").replace(DONE_HEADING, DONE_HEADING + TODO_LINE.replace("[ ]", "[x]"))
    project.write_stories(text, atomic=True)


def history(server, query=""):
    response = server.get("/api/history" + query)
    assert response.status == 200, response
    document = response.json()
    assert document["success"] is True and document["states"] == ["BACKLOG", "TODO", "IN_PROGRESS", "DONE"]
    assert document["count"] == len(document["samples"])
    return document["samples"]


def wait_samples(server, count, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        samples = history(server)
        if len(samples) >= count:
            return samples
        assert time.monotonic() < deadline, "history stayed at %d samples, wanted %d" % (len(samples), count)
        time.sleep(0.02)


def tree(root):
    """Every path under `root`: a file with its size and modification time, a directory with None (a write by
    rename, as the test's own, changes the directory's time)."""
    found = {}
    for folder, folders, files in os.walk(root):
        for name in folders:
            found[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            found[os.path.relpath(os.path.join(folder, name), root)] = (info.st_size, info.st_mtime_ns)
    return found


def test_a_sample_appears_when_a_story_moves_and_nothing_is_written_in_the_project(project, serve, cache):
    server = serve(project.root, env=cache.env())
    first = wait_samples(server, 1)
    assert len(first) == 1 and first[0]["counts"] == START_COUNTS
    before = tree(project.root)
    move_todo_story_to_done(project)
    samples = wait_samples(server, 2)
    assert samples[0] == first[0]
    assert samples[1]["counts"] == {"BACKLOG": 5, "TODO": 0, "IN_PROGRESS": 1, "DONE": 5}
    assert samples[1]["points"]["TODO"] == 0 and samples[1]["points"]["DONE"] == first[0]["points"]["DONE"] + 5
    assert samples[1]["at"] >= samples[0]["at"]
    assert history(server, "?limit=1") == samples[-1:]
    # Only the story file changed in the project; the history is in the cache directory, one private file.
    after = tree(project.root)
    changed = {path for path in set(before) | set(after) if before.get(path) != after.get(path)}
    assert changed == {os.path.join("docs", "workflow-status.md")}, changed
    name = os.path.basename(cache.file_for(project))
    assert sorted(os.listdir(os.path.join(cache.home, "madace_status"))) == [name, name + ".lock"]  # and its lock


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "", "1.5", "1e3", "%C2%B2", "9" * 10])
def test_a_bad_limit_is_a_400(live, limit):
    response = live.get("/api/history?limit=" + limit)
    assert response.status == 400, response
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_a_large_limit_is_capped_and_the_route_needs_the_token(project, serve, cache):
    server = serve(project.root, "--token", "secret", env=cache.env())
    assert server.get("/api/history").status == 401
    response = server.get("/api/history?limit=%d" % (HISTORY_MAX_SAMPLES * 10),
                          headers={"Authorization": "Bearer secret"})
    assert response.status == 200 and response.json()["count"] == 1


@pytest.mark.parametrize("kind", ["garbage", "a 10 MB line", "a symlink"])
def test_a_corrupt_history_file_starts_again_with_a_warning(project, serve, cache, tmp_path, kind):
    path = cache.file_for(project)
    os.makedirs(os.path.dirname(path), mode=0o700)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"not to be touched\n")
    if kind == "garbage":
        with open(path, "wb") as handle:
            handle.write(b"\x00\xff{garbage\n\x1b[2J" * 100)
    elif kind == "a 10 MB line":
        assert 10 * 1024 * 1024 > HISTORY_READ_MAX_BYTES
        with open(path, "wb") as handle:
            handle.write(b'{"at": "' + b"x" * (10 * 1024 * 1024) + b'"}\n')
    else:
        os.symlink(str(elsewhere), path)
    server = serve(project.root, env=cache.env())
    samples = wait_samples(server, 1)
    assert [sample["counts"] for sample in samples] == [START_COUNTS]  # a fresh start: this run's first sample
    move_todo_story_to_done(project)
    assert len(wait_samples(server, 2)) == 2
    warnings = [line for line in server.stderr_lines if "WARNING" in line and "history" in line]
    assert len(warnings) == 1 and "\x1b" not in warnings[0], server.stderr_lines
    assert "Traceback" not in server.stderr_text
    assert elsewhere.read_bytes() == b"not to be touched\n"
    deadline = time.monotonic() + WAIT_S
    while os.path.islink(path) or os.path.getsize(path) > HISTORY_READ_MAX_BYTES:  # replaced by the writer thread
        assert time.monotonic() < deadline, "the corrupt history file was not replaced"
        time.sleep(0.02)


def test_history_survives_a_restart_and_is_served_while_sync_is_stopped(project, serve, cache):
    server = serve(project.root, env=cache.env())
    wait_samples(server, 1)
    move_todo_story_to_done(project)
    samples = wait_samples(server, 2)
    server.stop()
    assert server.process.returncode == 0
    again = serve(project.root, env=cache.env())
    assert history(again) == samples  # the start sample equals the last stored one: not recorded twice
    stopped = again.post_json("/api/sync", {"action": "stop"})
    assert stopped.status == 200 and stopped.json()["running"] is False
    assert history(again) == samples
    again.stop()
    offline = serve(project.root, "--no-sync", sync=False, env=cache.env())
    assert history(offline) == samples


def test_no_history_keeps_it_in_memory_only(project, serve, cache):
    server = serve(project.root, "--no-history", env=cache.env())
    assert len(wait_samples(server, 1)) == 1
    move_todo_story_to_done(project)
    assert len(wait_samples(server, 2)) == 2
    assert not os.path.exists(cache.home)
    by_env = serve(project.root, env=cache.env(MADACE_STATUS_HISTORY="off"))
    assert len(wait_samples(by_env, 1)) == 1
    assert not os.path.exists(cache.home)


def test_api_sync_says_whether_the_history_is_persisted(project, serve, cache):
    server = serve(project.root, env=cache.env())
    wait_samples(server, 1)
    assert server.get_json("/api/sync")["history"] == {"persisted": True, "reason": None}
    memory = serve(project.root, "--no-history", env=cache.env())
    status = memory.get_json("/api/sync")["history"]
    assert status["persisted"] is False and "--no-history" in status["reason"]


def test_a_second_server_of_one_project_reads_the_history_and_leaves_the_writing_to_the_first(project, serve,
                                                                                              cache):
    first = serve(project.root, env=cache.env())
    wait_samples(first, 1)
    second = serve(project.root, env=cache.env())
    status = second.get_json("/api/sync")["history"]
    assert status["persisted"] is False and "another server of this project writes it" in status["reason"]
    assert "another server of this project writes it" in second.stderr_text
    move_todo_story_to_done(project)
    wait_samples(first, 2)
    wait_samples(second, 2)
    first.stop()
    second.stop()
    with open(cache.file_for(project), "rb") as handle:
        lines = [line for line in handle.read().split(b"\n") if line]
    assert len(lines) == 2  # each sample stored once: the start's and the move's, by the one writer
