"""Values of the JSON API that are not routes: a number read from a query or a header, and the brief form of an
event that `/api/activity?brief=1` sends. Pure functions (no I/O), used by `http.py`."""

MAX_NUMBER_DIGITS = 9  # of a number in a query or a header: more is refused (400), not parsed


def brief_event(event):
    """An event as the activity feed needs it: a `stories_updated` without its full story list (which makes
    `/api/activity` of a 2,000-story project about 0.5 MB per event), counted in `storyCount` instead."""
    data = event.get("data")
    if not isinstance(data, dict) or "stories" not in data:
        return event
    data = dict(data)
    data["storyCount"] = len(data.pop("stories") or ())
    return dict(event, data=data)


def ascii_number(raw, max_digits=MAX_NUMBER_DIGITS):
    """The int written by `raw` in ASCII digits (at most `max_digits`), else None: '²', '٣' or a 5,000-digit
    string is not a number here (int() would accept the first two, and spend time on the last)."""
    if raw is None or not 0 < len(raw) <= max_digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)
