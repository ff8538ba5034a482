"""Values of the JSON API that are not routes: a number read from a query or a header. Pure functions (no I/O),
used by `http.py`. (The brief form of an event that `/api/activity?brief=1` sends is the hub's:
`sync.clients.subscribers.brief_message`.)"""

from __future__ import annotations

from typing import Optional

__all__ = ["MAX_NUMBER_DIGITS", "ascii_number"]

MAX_NUMBER_DIGITS = 9  # of a number in a query or a header: more is refused (400), not parsed


def ascii_number(raw: Optional[str], max_digits: int = MAX_NUMBER_DIGITS) -> Optional[int]:
    """The int written by `raw` in ASCII digits (at most `max_digits`), else None: '²', '٣' or a 5,000-digit
    string is not a number here (int() would accept the first two, and spend time on the last)."""
    if raw is None or not 0 < len(raw) <= max_digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)

