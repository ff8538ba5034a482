"""`status history` (README, "`status history`"): the flow history from git and the stored samples, in every
format, bounded by --since/--until, on a real git repository built here."""

import json

import pytest

from status_cli_helpers import SAMPLE_PROJECT, clean_env, run_status
from story_edits import git, move_story, sample_in_git


@pytest.fixture
def repository(tmp_path):
    root = sample_in_git(SAMPLE_PROJECT, str(tmp_path / "acme"))
    move_story(root, "STORY-V3-020")
    git(root, "commit", "-q", "-am", "one done", day=3)
    move_story(root, "STORY-V3-021")
    git(root, "commit", "-q", "-am", "another done, same day", day=3)
    return root


def cache_env(tmp_path):
    return clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"))


def test_the_table_shows_each_days_counts_and_a_chart_per_state(repository, tmp_path):
    result = run_status("history", "--root", repository, env=cache_env(tmp_path))
    assert result.returncode == 0 and result.stderr == "", result
    assert result.stdout.startswith("Flow history: 3 samples over 2 days, 2026-01-01 to 2026-01-03\n")
    assert "│ 2026-01-01 │       5 │    1 │           1 │    4 │" in result.stdout
    assert "│ 2026-01-03 │       5 │    0 │           0 │    6 │" in result.stdout  # the day's last commit
    assert "│ DONE        │ ▁█ │ 4 → 6 │" in result.stdout


def test_json_has_every_sample_and_the_days_and_since_until_bound_them(repository, tmp_path):
    document = json.loads(run_status("history", "-f", "json", "--root", repository, env=cache_env(tmp_path)).stdout)
    assert document["entityType"] == "history" and document["data"]["count"] == 3
    assert [day["day"] for day in document["data"]["days"]] == ["2026-01-01", "2026-01-03"]
    bounded = json.loads(run_status("history", "-f", "json", "--since", "2026-01-02", "--until", "2026-01-03",
                                    "--root", repository, env=cache_env(tmp_path)).stdout)
    assert [sample["at"] for sample in bounded["data"]["samples"]] == ["2026-01-03T12:00:00.000Z"] * 2


def test_markdown_with_ascii_draws_no_unicode(repository, tmp_path):
    result = run_status("history", "-f", "markdown", "--ascii", "--root", repository, env=cache_env(tmp_path))
    text = result.stdout
    assert result.returncode == 0 and text.isascii()
    assert "| 2026-01-03 | 5 | 0 | 0 | 6 |" in text and "- **DONE** ` #` 4 -> 6" in text


def test_without_git_the_stored_history_only_with_a_warning(repository, tmp_path):
    result = run_status("history", "--root", repository, env=clean_env(PATH="/nonexistent",
                                                                      XDG_CACHE_HOME=str(tmp_path / "cache")))
    assert result.returncode == 0
    assert "Flow history: no samples" in result.stdout
    assert "git is not installed: the flow history starts with this server" in result.stdout


@pytest.mark.parametrize("arguments, message", [
    (["--watch"], "history has no live view: leave out --watch"),
    (["--since", "yesterday"], "--since and --until: 'yesterday' is not a day"),
    (["--token", "x"], "--token only applies with --watch"),
])
def test_what_history_cannot_do_is_a_usage_error(repository, arguments, message):
    result = run_status("history", "--root", repository, *arguments)
    assert result.returncode == 2 and result.stderr.startswith("madace-status: " + message), result


def test_since_belongs_to_history_only():
    result = run_status("--since", "2026-01-01", "--root", SAMPLE_PROJECT)
    assert result.returncode == 2 and result.stderr == "madace-status: --since only applies to status history\n"
