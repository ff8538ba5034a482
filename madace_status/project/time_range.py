"""A range of the flow history (README, "Flow history"): `since` and `until` as a day or a UTC time, made into text
that compares with a sample's `at` as the times compare. Pure functions, shared by GET /api/history and
`status history`."""

from __future__ import annotations

import re
from typing import Any, List, Mapping, Optional, Sequence, TypeVar

Timed = TypeVar("Timed", bound=Mapping[str, Any])  # a sample: its "at" is what the bounds compare with

__all__ = ["END_OF_DAY", "time_bound", "within"]

_DAY = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_MOMENT = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?Z\Z")
END_OF_DAY = "T~"  # after every time of a day in the samples' ISO text ("~" sorts after any digit)


def time_bound(raw: Optional[str], end: bool) -> Optional[str]:
    """A `since` or `until` (README, "HTTP API") as text that compares with a sample's `at`: a day (YYYY-MM-DD,
    the whole day included) or a UTC time (YYYY-MM-DDTHH:MM[:SS[.fff]]Z); None when absent. ValueError otherwise."""
    if raw is None:
        return None
    if _DAY.match(raw):
        return raw + END_OF_DAY if end else raw
    if _MOMENT.match(raw):
        # Written as the samples are (seconds and milliseconds always there), so the texts compare as the times.
        day_and_minute, _, rest = raw[:-1].partition(":")
        minute, _, seconds = rest.partition(":")
        whole, _, fraction = (seconds or "00").partition(".")
        return "%s:%s:%s.%sZ" % (day_and_minute, minute, whole, (fraction + "000")[:3])
    raise ValueError("%r is not a day (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)" % raw[:40])


def within(samples: Sequence[Timed], since: Optional[str], until: Optional[str]) -> List[Timed]:
    """The samples whose `at` lies between two bounds of `time_bound` (None: unbounded on that side)."""
    return [sample for sample in samples
            if (since is None or sample["at"] >= since) and (until is None or sample["at"] <= until)]
