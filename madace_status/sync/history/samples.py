"""The flow history behind the dashboard's chart, sans I/O: a sample of the story counts and points per state
(taken on every change of the story file), its line in the history file, and the bounded log of samples.

A sample is `{"at": "2026-11-29T03:00:00.000Z", "counts": {state: n}, "points": {state: p}}` for the four
states; a line of the file is one sample as compact JSON. `parse_history` reads a file's bytes in one linear
pass and skips a corrupt line (too long, not UTF-8 or JSON, a field missing or of the wrong type). The file itself
(where it lives, reading, appending, rotating) is `store.py`'s job (README, "Flow history").
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any, Dict, Iterable, NoReturn, TypedDict

from madace_status.project.model import STORY_STATES
from madace_status.project.render.envelope import compact_json, utc_timestamp

if TYPE_CHECKING:
    from typing import Mapping

    from madace_status.project.model import Project, StateRow

__all__ = [
    "HISTORY_MAX_FILE_BYTES", "HISTORY_MAX_LINE_BYTES", "HISTORY_MAX_SAMPLES", "HISTORY_READ_MAX_BYTES", "MAX_COUNT",
    "HistoryLog", "Sample", "encode_sample", "parse_history", "parse_line", "same_flow", "sample_of",
    "sample_of_states",
]

HISTORY_MAX_SAMPLES = 5000  # a sample per change of the story file: months of a team's work
HISTORY_MAX_LINE_BYTES = 1024  # a real line is under 250 bytes; a longer one is not ours
HISTORY_MAX_FILE_BYTES = 2 * 1024 * 1024  # 5,000 lines of ~250 bytes fit: the sample cap usually rotates first
HISTORY_READ_MAX_BYTES = HISTORY_MAX_FILE_BYTES + HISTORY_MAX_LINE_BYTES  # more is not our file: start again
MAX_COUNT = 10 ** 9  # a count or points figure above this in the file is corrupt
_AT = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z\Z")


class Sample(TypedDict):
    """One sample (a plain dict: what GET /api/history sends and a line of the file holds)."""

    at: str  # UTC, ISO-8601 with milliseconds
    counts: Dict[str, int]  # story state → number of stories
    points: Dict[str, float]  # story state → story points (an int when every story's points are)


def sample_of(project: Project, now: float | None = None) -> Sample | None:
    """The sample of `project`: {"at", "counts": {state: n}, "points": {state: p}}; None when the story file
    could not be read (an unreadable file is not the work moving)."""
    if project.story_errors:
        return None
    return sample_of_states(project.summary.states, utc_timestamp(now))


def sample_of_states(states: Mapping[str, StateRow], at: str) -> Sample:
    """A sample at `at` of a summary's state rows (a project's now, or a version of the story file in git)."""
    return {"at": at, "counts": {state: states[state]["count"] for state in STORY_STATES},
            "points": {state: states[state]["points"] for state in STORY_STATES}}


def same_flow(first: Sample, second: Sample) -> bool:
    """True when two samples show the same counts and points (their times aside)."""
    return first["counts"] == second["counts"] and first["points"] == second["points"]


def encode_sample(sample: Sample) -> bytes:
    """One line of the file: compact JSON and a newline, UTF-8."""
    return (compact_json(sample) + "\n").encode("utf-8")


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(name)  # NaN and Infinity are valid to json.loads, not to us


def _figures(value: object, allow_float: bool) -> dict[str, Any] | None:
    """{state: figure} for every story state, each a number from 0 to MAX_COUNT (an int unless `allow_float`);
    None when any is missing or out of bounds."""
    if not isinstance(value, dict):
        return None
    figures = {}
    for state in STORY_STATES:
        number = value.get(state)
        if isinstance(number, bool) or not isinstance(number, (int, float) if allow_float else int):
            return None
        if not (0 <= number <= MAX_COUNT) or (isinstance(number, float) and not math.isfinite(number)):
            return None
        figures[state] = number
    return figures


def parse_line(line: bytes) -> Sample | None:
    """The sample a line of the file holds (bytes, no newline), or None when the line is corrupt."""
    if len(line) > HISTORY_MAX_LINE_BYTES:
        return None
    try:
        document = json.loads(line.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    at = document.get("at")
    counts = _figures(document.get("counts"), allow_float=False)
    points = _figures(document.get("points"), allow_float=True)
    if not isinstance(at, str) or not _AT.match(at) or counts is None or points is None:
        return None
    return {"at": at, "counts": counts, "points": points}


def parse_history(data: bytes) -> tuple[list[Sample], int]:
    """(samples oldest first, corrupt lines skipped) from the bytes of a history file. One linear pass."""
    samples: list[Sample] = []
    skipped = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        sample = parse_line(line)
        if sample is None:
            skipped += 1
        else:
            samples.append(sample)
    return samples, skipped


class HistoryLog:
    """The samples in memory, oldest first: at most `max_samples`; a sample showing the same flow as the last one
    is not kept. Over the cap, the newest half is kept (so a rotation happens once per max_samples / 2 samples)."""

    def __init__(self, samples: Iterable[Sample] = (), max_samples: int = HISTORY_MAX_SAMPLES) -> None:
        self.max_samples = max_samples
        self.samples = list(samples)[-max_samples:]

    def add(self, sample: Sample) -> bool:
        """Keep `sample`; False when it shows the same flow as the last one (then nothing changes)."""
        if self.samples and same_flow(self.samples[-1], sample):
            return False
        self.samples.append(sample)
        return True

    @property
    def over(self) -> bool:
        return len(self.samples) > self.max_samples

    def halve(self) -> None:
        """Keep the newest half (of the cap, or of what is held when that is less: a file over its byte bound)."""
        self.samples = self.samples[-max(1, min(len(self.samples), self.max_samples) // 2):]

    def newest(self, limit: int) -> list[Sample]:
        return self.samples[-limit:] if limit > 0 else []
