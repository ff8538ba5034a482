"""One function for every value a peer or a file chose before it reaches a log line: `escape(value)`.

Control characters (C0, DEL, C1) become `\\xNN`, as CPython's http.server does since gh-100001, so an
`ESC]0;…BEL` title change, an `ESC[2J` screen clear or a newline that forges a second log line reach the
operator's terminal as inert text. A backslash is doubled so an escaped byte and a literal `\\x1b` stay
distinguishable. Bidi controls and the Unicode line separators are escaped too (`\\u202e`): they reorder or
break a terminal line just as well. Long values are cut, so one request cannot write a megabyte-long line.
"""

from __future__ import annotations

import logging

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Tuple, Type, Union

    # What logging.Formatter.formatException is given (sys.exc_info()).
    ExcInfo = Union[Tuple[Type[BaseException], BaseException, Union[TracebackType, None]], Tuple[None, None, None]]

__all__ = ["MAX_LOGGED_CHARS", "escape", "SafeFormatter"]

MAX_LOGGED_CHARS = 300  # of one value; a request line may be 64 KiB, a log line should stay readable

_BIDI_AND_SEPARATORS = tuple(range(0x202A, 0x202F)) + tuple(range(0x2066, 0x206A)) + (0x2028, 0x2029)
_TABLE: dict[int, str] = {code: "\\x%02x" % code for code in list(range(0x20)) + list(range(0x7F, 0xA0))}
_TABLE.update({code: "\\u%04x" % code for code in _BIDI_AND_SEPARATORS})
_TABLE[ord("\\")] = "\\\\"


def escape(value: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """`value` (anything; None stays "None") as one printable line of at most about `limit` characters."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    text = text[:limit].translate(_TABLE)
    return text + "…(cut)" if cut else text


_GUARD = dict(_TABLE)
del _GUARD[ord("\\")]  # the guard runs on text already escaped: a backslash there is no control character
_GUARD_KEEPING_NEWLINES = dict(_GUARD)
del _GUARD_KEEPING_NEWLINES[ord("\n")]


class SafeFormatter(logging.Formatter):
    """A safety net under `escape`: whatever control character still reaches a log record (a call site that
    forgot, an exception message quoting a file) leaves as `\\xNN`, and a message stays on one line. Only a
    traceback keeps its own line breaks."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_GUARD)

    def formatException(self, exc_info: ExcInfo) -> str:
        return super().formatException(exc_info).translate(_GUARD_KEEPING_NEWLINES)

    def formatStack(self, stack_info: str) -> str:
        return super().formatStack(stack_info).translate(_GUARD_KEEPING_NEWLINES)
