"""The history's pure parts: the range bounds (project/time_range.py) and the day table and sparklines
(project/render/history.py); README, "`status history`"."""

import pytest

from madace_status.project.render.history import by_day, sparkline
from madace_status.project.render.text import ASCII, UNICODE
from madace_status.project.time_range import time_bound


@pytest.mark.parametrize("raw, end, bound", [
    (None, False, None), ("2026-01-02", False, "2026-01-02"), ("2026-01-02", True, "2026-01-02T~"),
    ("2026-01-02T12:00Z", False, "2026-01-02T12:00:00.000Z"),
    ("2026-01-02T12:00:05.5Z", True, "2026-01-02T12:00:05.500Z"),
])
def test_bounds_compare_with_the_samples_as_their_times_do(raw, end, bound):
    assert time_bound(raw, end) == bound


@pytest.mark.parametrize("raw", ["yesterday", "2026-1-2", "\uff12\uff10\uff12\uff16-01-02", "2026-01-02T12Z",
                                 "2026-01-02 12:00Z", "2026-01-02T12:00:00", ""])
def test_anything_else_is_refused(raw):
    with pytest.raises(ValueError):
        time_bound(raw, False)


def test_a_day_keeps_its_last_sample():
    samples = [{"at": "2026-01-01T09:00:00.000Z", "n": 1}, {"at": "2026-01-01T18:00:00.000Z", "n": 2},
               {"at": "2026-01-03T00:00:00.000Z", "n": 3}]
    assert [sample["n"] for sample in by_day(samples)] == [2, 3]


def test_sparklines_span_lowest_to_highest_and_fit_their_width():
    assert sparkline([0, 4, 8], UNICODE) == "▁▅█"
    assert sparkline([3, 3], UNICODE) == "▁▁" and sparkline([], UNICODE) == ""
    assert sparkline([0, 7], ASCII) == " #"
    long = sparkline(list(range(1000)), UNICODE, width=60)
    assert len(long) == 60 and long[0] == "▁" and long[-1] == "█"
