"""The flow history from git (README, "Flow history"): when the project root is in a git work tree, one sample per
commit that changed the story status file — the counts and points per state of that version, at the commit's
time, and the stories it moved since the version before (`moves`: id, from, to) — so the chart starts with the
project, not with this server.

`git` runs as a subprocess (no dependency): `git log --follow` lists the commits and the file's path in each
(renames followed), one `git cat-file --batch` reads every version, and `stories.parse_story_file` parses it.
Only each commit's id and time are read, never its message or author. Samples are cached by commit id in a file
beside the history file, so a restart reads only the commits it has not seen. What cannot be done — no git, not a
work tree, a shallow clone, a file git does not know — is one warning each, and the history starts live.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from typing import IO, Dict, List, Optional, Tuple

from madace_status.logsafe import escape
from madace_status.project.model import build_summary
from madace_status.project.render.envelope import compact_json, utc_timestamp
from madace_status.project.stories import parse_story_file
from madace_status.sync.history.samples import HISTORY_MAX_SAMPLES, Sample, parse_line, sample_of_states

__all__ = ["GIT_TIMEOUT_S", "MAX_VERSION_BYTES", "NOT_A_WORK_TREE", "GitBackfill", "parse_log", "sample_of_text"]

logger = logging.getLogger("madace_status.history")

GIT_TIMEOUT_S = 60.0  # for each git command: a repository of 100,000 commits still lists in seconds
MAX_VERSION_BYTES = 4 * 1024 * 1024  # a version of the story file larger than this is skipped (as the live read)
MAX_MOVES = 100  # story moves kept per sample ("movesMore" counts the rest): a bulk edit is not a feed
MAX_CACHE_LINE_BYTES = 64 * 1024  # a commit id, a sample and at most MAX_MOVES moves: a longer one is not ours
# Not a problem, the common case: said once at info level, not as a warning.
NOT_A_WORK_TREE = "the project is not in a git work tree: the flow history starts with this server"
RECORD, FIELD = "\x1e", "\x1f"  # separators git writes between commits and fields (never in an id or a time)


def parse_log(output: str) -> List[Tuple[str, int, str]]:
    """(commit id, commit time, path of the file in that commit), newest first, from
    `git log --format=%x1e%H%x1f%ct --name-only`; records that do not parse are skipped."""
    commits = []
    for record in output.split(RECORD)[1:]:
        head, _, names = record.partition("\n")
        commit, _, seconds = head.partition(FIELD)
        paths = [line for line in names.split("\n") if line]
        if len(commit) in (40, 64) and commit.isalnum() and seconds.isdigit() and paths:
            commits.append((commit, int(seconds), paths[-1]))
    return commits


class GitSample(Sample, total=False):
    """A sample read from git: also the stories moved since the version before (what GET /api/history sends)."""

    moves: List[Dict[str, Optional[str]]]  # {"id", "from", "to"}: a state, or None for a story added or removed
    movesMore: int  # moves past MAX_MOVES, not listed


StatusMap = Dict[str, str]  # story id → state, in one version


def version_of_text(text: str, seconds: int) -> Tuple[GitSample, StatusMap]:
    """The sample of one version of the story status file, at `seconds` (a commit time), and its stories' states."""
    stories = parse_story_file(text).stories
    figures = sample_of_states(build_summary([], stories, [], [], []).states, utc_timestamp(seconds))
    sample: GitSample = {"at": figures["at"], "counts": figures["counts"], "points": figures["points"]}
    return sample, {story.id: story.status for story in stories}


def sample_of_text(text: str, seconds: int) -> GitSample:
    return version_of_text(text, seconds)[0]


def moves_between(before: Optional[StatusMap], after: StatusMap) -> List[Dict[str, Optional[str]]]:
    """The stories whose state differs between two versions, in the later version's order (then the removed)."""
    if before is None:
        return []  # the first version: nothing moved, everything began
    moved: List[Dict[str, Optional[str]]] = [{"id": story_id, "from": before.get(story_id), "to": state}
                                              for story_id, state in after.items() if before.get(story_id) != state]
    moved += [{"id": story_id, "from": state, "to": None}
              for story_id, state in before.items() if story_id not in after]
    return moved


def with_moves(sample: GitSample, moves: List[Dict[str, Optional[str]]]) -> GitSample:
    """A copy of `sample` with its moves (at most MAX_MOVES listed)."""
    moved: GitSample = {"at": sample["at"], "counts": sample["counts"], "points": sample["points"],
                        "moves": moves[:MAX_MOVES]}
    if len(moves) > MAX_MOVES:
        moved["movesMore"] = len(moves) - MAX_MOVES
    return moved


class GitBackfill:
    """The samples of one story status file's git history, and the warnings of getting them."""

    def __init__(self, root: str, status_file: Optional[str], cache_path: Optional[str]) -> None:
        self.root = root
        self.status_file = status_file  # absolute; None when the project has none
        self.cache_path = cache_path  # None: no cache (history kept in memory only)
        self.warnings: List[str] = []

    def samples(self) -> List[Sample]:
        """One sample per commit that changed the file, oldest first (at most HISTORY_MAX_SAMPLES, the newest)."""
        if self.status_file is None:
            return []
        git = shutil.which("git")
        if git is None:
            return self._warn("git is not installed: the flow history starts with this server")
        top = self._git(git, self.root, "rev-parse", "--show-toplevel")
        if top is None:
            return self._warn(NOT_A_WORK_TREE)
        top = top.strip()
        relative = os.path.relpath(os.path.realpath(self.status_file), os.path.realpath(top))
        if self._git(git, top, "rev-parse", "--is-shallow-repository") == "true\n":
            self.warnings.append("the git clone is shallow: the flow history starts at its first commit")
        log = self._git(git, top, "log", "--follow", "--format=%x1e%H%x1f%ct", "--name-only",
                        "-n", str(HISTORY_MAX_SAMPLES), "--", relative)
        commits = parse_log(log or "")
        if not commits:
            return self._warn("git has no commit of %s: the flow history starts with this server" % relative)
        cache = self._load_cache()
        # A commit not cached is read, and so is the one before it: its moves are the difference between them.
        wanted: Dict[str, str] = {}
        for index, (commit, _, path) in enumerate(commits):
            if commit not in cache:
                wanted[commit] = path
                if index + 1 < len(commits):
                    older, _, older_path = commits[index + 1]
                    wanted.setdefault(older, older_path)
        if wanted:
            versions = self._read_versions(git, top, list(wanted.items()), {c: s for c, s, _ in commits})
            for index, (commit, _, _) in enumerate(commits):
                if commit in cache or commit not in versions:
                    continue
                previous = commits[index + 1][0] if index + 1 < len(commits) else None
                before = versions[previous][1] if previous is not None and previous in versions else None
                cache[commit] = with_moves(versions[commit][0], moves_between(before, versions[commit][1]))
            self._save_cache(cache, [commit for commit, _, _ in commits])
        return [cache[commit] for commit, _, _ in reversed(commits) if commit in cache]

    def _warn(self, message: str) -> List[Sample]:
        self.warnings.append(message)
        return []

    @staticmethod
    def _git(git: str, where: str, *args: str) -> Optional[str]:
        """A git command's output, or None when it fails (its stderr is not shown: a path or a ref it names)."""
        try:
            done = subprocess.run([git, "-C", where] + list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  stdin=subprocess.DEVNULL, timeout=GIT_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0:
            return None
        return done.stdout.decode("utf-8", "surrogateescape")

    def _read_versions(self, git: str, top: str, wanted: List[Tuple[str, str]],
                       times: Dict[str, int]) -> Dict[str, Tuple[GitSample, StatusMap]]:
        """Each (commit, path) version read by one `git cat-file --batch`: its sample and its stories' states."""
        samples: Dict[str, Tuple[GitSample, StatusMap]] = {}
        try:
            process = subprocess.Popen([git, "-C", top, "cat-file", "--batch"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            self.warnings.append("git cat-file could not be run: the flow history starts with this server")
            return samples
        assert process.stdin is not None and process.stdout is not None
        try:
            for commit, path in wanted:
                if "\n" in path:
                    continue  # a name cat-file's line protocol cannot carry
                process.stdin.write(("%s:%s\n" % (commit, path)).encode("utf-8", "surrogateescape"))
                process.stdin.flush()
                text = _read_blob(process.stdout)
                if text is not None:
                    samples[commit] = version_of_text(text, times[commit])
        except (OSError, ValueError) as error:
            self.warnings.append("reading the story file's history from git failed (%s)" % escape(error))
        finally:
            process.stdin.close()
            process.kill()
            process.wait()
            process.stdout.close()
        return samples

    def _load_cache(self) -> Dict[str, GitSample]:
        cache: Dict[str, GitSample] = {}
        if self.cache_path is None:
            return cache
        try:
            with open(self.cache_path, "rb") as handle:
                for line in handle:
                    commit, _, rest = line.partition(b" ")
                    sample_text, _, moves_text = rest.rstrip(b"\n").partition(b" ")
                    sample = parse_line(sample_text) if len(line) <= MAX_CACHE_LINE_BYTES else None
                    moves = _parse_moves(moves_text)
                    if sample is not None and moves is not None and commit.isalnum():
                        entry: GitSample = {"at": sample["at"], "counts": sample["counts"],
                                            "points": sample["points"], "moves": moves[0]}
                        if moves[1]:
                            entry["movesMore"] = moves[1]
                        cache[commit.decode("ascii")] = entry
        except (OSError, UnicodeDecodeError):
            pass  # no cache yet, or not ours: the versions are read again
        return cache

    def _save_cache(self, cache: Dict[str, GitSample], commits: List[str]) -> None:
        if self.cache_path is None:
            return
        temporary = self.cache_path + ".tmp"
        try:
            with open(temporary, "w", encoding="ascii") as handle:
                handle.writelines("%s %s %s\n" % (commit, compact_json(_figures_of(cache[commit])), compact_json(
                    [cache[commit].get("moves", []), cache[commit].get("movesMore", 0)]))
                    for commit in commits if commit in cache)
            os.replace(temporary, self.cache_path)
        except OSError as error:
            logger.info("history: the git cache could not be written (%s)", escape(error))


def _read_blob(stream: IO[bytes]) -> Optional[str]:
    """One answer of `git cat-file --batch`: the blob's text, or None (missing, not a blob, too large, not UTF-8)."""
    header = stream.readline()
    if not header:
        raise ValueError("git cat-file ended early")
    parts = header.split()
    if len(parts) != 3 or not parts[2].isdigit():
        return None  # "<object> missing"
    size = int(parts[2])
    if parts[1] != b"blob" or size > MAX_VERSION_BYTES:
        left = size + 1  # skipped in chunks: a huge blob is never held whole
        while left > 0:
            chunk = stream.read(min(left, 1024 * 1024))
            if not chunk:
                raise ValueError("git cat-file ended early")
            left -= len(chunk)
        return None
    body = stream.read(size + 1)  # the content and its newline
    try:
        return body[:size].decode("utf-8")
    except UnicodeDecodeError:
        return None



def _figures_of(sample: GitSample) -> Sample:
    return {"at": sample["at"], "counts": sample["counts"], "points": sample["points"]}


def _parse_moves(text: bytes) -> Optional[Tuple[List[Dict[str, Optional[str]]], int]]:
    """The (moves, movesMore) of a cache line, or None when they are not what `_save_cache` writes."""
    try:
        document = json.loads(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not (isinstance(document, list) and len(document) == 2 and isinstance(document[0], list)
            and isinstance(document[1], int) and not isinstance(document[1], bool)):
        return None
    moves = document[0][:MAX_MOVES]
    for move in moves:
        if not (isinstance(move, dict) and set(move) == {"id", "from", "to"}
                and all(value is None or isinstance(value, str) for value in move.values())):
            return None
    return moves, document[1]
