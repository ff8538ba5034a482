"""Edits the tests make to a copy of the sample project's story status file, and git commits at controlled dates:
shared by tests/cli, tests/sync and tests/watch (pytest puts tests/ on the path with its conftest)."""

import os
import subprocess

STATUS_FILE = os.path.join("docs", "workflow-status.md")


def move_story(root, story_id, section="DONE", relative=STATUS_FILE):
    """Move the line of `story_id` to the top of `## SECTION`, written in place."""
    path = os.path.join(root, relative)
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    line = next(line for line in lines if "[%s]" % story_id in line)
    lines.remove(line)
    lines.insert(lines.index("## %s" % section) + 1, "\n" + line)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


def git(root, *args, day=None, author="a"):
    """`git -C root ARGS…`, committing (when it does) on January `day`, 2026, 12:00 UTC; its output."""
    env = dict(os.environ, GIT_AUTHOR_NAME=author, GIT_AUTHOR_EMAIL="a@example.com", GIT_COMMITTER_NAME="a",
               GIT_COMMITTER_EMAIL="a@example.com")
    if day is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = "2026-01-%02dT12:00:00Z" % day
    return subprocess.run(["git", "-C", root] + list(args), env=env, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE).stdout.decode()


def sample_in_git(source, root, author="a"):
    """A copy of the sample project at `root`, in a new git repository, committed on January 1st, 2026."""
    import shutil
    shutil.copytree(source, root)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start", day=1, author=author)
    return root
