"""The flow history from git (README, "Flow history"): real repositories built here, with commits at controlled
dates, a rename, a shallow clone and no git at all, read by a real `serve` and served by GET /api/history."""

import os
import shutil
import subprocess
import time
from urllib.parse import quote

import pytest

from story_edits import STATUS_FILE, git, move_story, sample_in_git
from sync_helpers import REPO_ROOT, clean_env

SAMPLE_PROJECT = os.path.join(REPO_ROOT, "tests", "fixtures", "sample-project")
RENAMED = os.path.join("docs", "mam-workflow-status.md")
GIT_BACKFILL_WAIT_S = 20.0


@pytest.fixture
def repository(tmp_path):
    """The sample project in git: 4 commits on Jan 1–4 2026, the story file renamed on the 3rd."""
    root = sample_in_git(SAMPLE_PROJECT, str(tmp_path / "acme"), author="Dana \x1b[31mRed")  # a hostile author
    move_story(root, "STORY-V3-020")
    git(root, "commit", "-q", "-am", "STORY-V3-020 done \x1b]0;owned\x07 $(rm -rf ~)", day=2)  # a hostile message
    git(root, "mv", STATUS_FILE, RENAMED)
    git(root, "commit", "-q", "-m", "rename the status file", day=3)
    move_story(root, "STORY-V3-021", relative=RENAMED)
    git(root, "commit", "-q", "-am", "STORY-V3-021 done", day=4)
    return root


def wait_for_git(server):
    deadline = time.monotonic() + GIT_BACKFILL_WAIT_S
    while True:
        info = server.get_json("/api/sync")["historyFromGit"]
        if info["samples"] or info["warnings"]:
            return info
        assert time.monotonic() < deadline, "the git history was not read"
        time.sleep(0.05)


def test_one_sample_per_commit_of_the_story_file_renames_followed_then_the_live_ones(repository, serve):
    server = serve(repository)
    assert wait_for_git(server) == {"samples": 4, "warnings": []}
    samples = server.get_json("/api/history")["samples"]
    from_git, live = samples[:4], samples[4:]
    assert [s["at"] for s in from_git] == ["2026-01-%02dT12:00:00.000Z" % day for day in (1, 2, 3, 4)]
    assert [s["counts"]["DONE"] for s in from_git] == [4, 5, 5, 6]
    assert [s["counts"]["IN_PROGRESS"] for s in from_git] == [1, 0, 0, 0]
    assert from_git[1]["points"]["DONE"] == from_git[0]["points"]["DONE"] + 3  # STORY-V3-020's 3 points
    # The stories each commit moved, from the version before it (the rename moved none).
    assert [s["moves"] for s in from_git] == [
        [], [{"id": "STORY-V3-020", "from": "IN_PROGRESS", "to": "DONE"}], [],
        [{"id": "STORY-V3-021", "from": "TODO", "to": "DONE"}]]
    assert all("moves" not in s for s in live)  # a live sample is counts only
    assert live and live[-1]["counts"] == from_git[-1]["counts"]  # the files now: as the last commit left them

    between = server.get_json("/api/history?since=2026-01-02&until=2026-01-03")["samples"]
    assert [s["at"][:10] for s in between] == ["2026-01-02", "2026-01-03"]
    exact = server.get_json("/api/history?since=2026-01-04T12:00:00Z&until=2026-01-04T12:00Z")["samples"]
    assert [s["at"] for s in exact] == ["2026-01-04T12:00:00.000Z"]
    assert [s["at"] for s in server.get_json("/api/history?limit=1&until=2026-01-02")["samples"]] == [
        "2026-01-02T12:00:00.000Z"]
    for bad in ("yesterday", "2026-1-2", "２０２６-01-02", "2026-01-02T12Z"):
        response = server.get("/api/history?since=" + quote(bad))
        assert response.status == 400 and response.json()["code"] == "VALIDATION_ERROR"


def test_a_restart_reads_only_the_commits_it_has_not_seen(repository, serve):
    first = serve(repository)
    wait_for_git(first)
    first.stop()
    cache = next(os.path.join(directory, name) for directory, _, names in os.walk(os.environ["XDG_CACHE_HOME"])
                 for name in names if name.endswith(".git-samples"))
    with open(cache, encoding="ascii") as handle:
        assert len(handle.read().splitlines()) == 4  # one line per commit id
    written = os.stat(cache).st_mtime_ns
    second = serve(repository)
    assert wait_for_git(second) == {"samples": 4, "warnings": []}
    assert os.stat(cache).st_mtime_ns == written  # every commit came from the cache: nothing read, nothing written
    move_story(repository, "STORY-V3-022", relative=RENAMED)
    git(repository, "commit", "-q", "-am", "one more", day=5)
    second.stop()
    third = serve(repository)
    assert wait_for_git(third)["samples"] == 5
    # The new commit's moves: read beside the cached commit before it.
    newest = [s for s in third.get_json("/api/history")["samples"] if "moves" in s][-1]
    assert newest["moves"] == [{"id": "STORY-V3-022", "from": "BACKLOG", "to": "DONE"}]


def test_a_shallow_clone_says_so_and_serves_what_it_holds(repository, serve, tmp_path):
    clone = str(tmp_path / "shallow")
    subprocess.run(["git", "clone", "-q", "--depth", "1", "file://" + repository, clone], check=True)
    server = serve(clone)
    info = wait_for_git(server)
    assert info["samples"] == 1
    assert info["warnings"] == ["the git clone is shallow: the flow history starts at its first commit"]


def test_without_git_or_outside_a_work_tree_the_history_starts_live_with_one_line(repository, serve, tmp_path):
    no_git = clean_env(PATH="/nonexistent")  # sys.executable is absolute: only git goes missing
    server = serve(repository, env=no_git)
    assert wait_for_git(server) == {
        "samples": 0, "warnings": ["git is not installed: the flow history starts with this server"]}
    assert len(server.get_json("/api/history")["samples"]) == 1  # the live one
    plain = str(tmp_path / "plain")
    shutil.copytree(SAMPLE_PROJECT, plain)
    outside = serve(plain)
    assert wait_for_git(outside)["warnings"] == [
        "the project is not in a git work tree: the flow history starts with this server"]
    outside.stop()
    assert not any("WARNING" in line for line in outside.stderr_lines)  # the common case is no warning
    server.stop()
    assert sum("WARNING" in line and "git is not installed" in line for line in server.stderr_lines) == 1


def test_a_merged_branch_and_a_detached_head_are_followed(repository, serve):
    git(repository, "checkout", "-q", "-b", "feature", "HEAD~1")
    move_story(repository, "STORY-V3-022", relative=RENAMED)
    git(repository, "commit", "-q", "-am", "on a branch", day=5)
    git(repository, "checkout", "-q", "main")
    git(repository, "merge", "-q", "--no-edit", "-X", "theirs", "feature", day=6)  # a merge that keeps both moves
    server = serve(repository)
    assert wait_for_git(server)["samples"] >= 5
    merged = [s["at"][:10] for s in server.get_json("/api/history")["samples"] if "moves" in s]
    assert "2026-01-05" in merged  # the branch's commit is part of the history
    server.stop()
    git(repository, "checkout", "-q", "--detach", "HEAD~1")  # a detached HEAD: the history as of that commit
    detached = serve(repository)
    assert wait_for_git(detached)["warnings"] == []
    days = [s["at"][:10] for s in detached.get_json("/api/history")["samples"] if "moves" in s]
    assert days == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]  # main's first parent: not the branch


def test_a_repository_that_does_not_track_the_file_says_so(tmp_path, serve):
    root = str(tmp_path / "untracked")
    shutil.copytree(SAMPLE_PROJECT, root)
    git(root, "init", "-q", "-b", "main")
    with open(os.path.join(root, "README.md"), "a", encoding="utf-8") as handle:
        handle.write("\n")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "only the readme", day=1)
    server = serve(root)
    assert wait_for_git(server)["warnings"] == [
        "git has no commit of docs/workflow-status.md: the flow history starts with this server"]
