"""Values of the JSON API that are not routes: a number read from a query or a header. Pure functions (no I/O),
used by `http.py`. (The brief form of an event that `/api/activity?brief=1` sends is the hub's:
`sync.clients.subscribers.brief_message`.)"""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["MAX_NUMBER_DIGITS", "ascii_number", "time_bound"]

_DAY = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_MOMENT = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?Z\Z")
END_OF_DAY = "T~"  # after every time of a day in the samples' ISO text ("~" sorts after any digit)

MAX_NUMBER_DIGITS = 9  # of a number in a query or a header: more is refused (400), not parsed


def ascii_number(raw: Optional[str], max_digits: int = MAX_NUMBER_DIGITS) -> Optional[int]:
    """The int written by `raw` in ASCII digits (at most `max_digits`), else None: '²', '٣' or a 5,000-digit
    string is not a number here (int() would accept the first two, and spend time on the last)."""
    if raw is None or not 0 < len(raw) <= max_digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


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
