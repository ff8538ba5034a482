"""The numbers RFC 6455 puts on the wire: frame opcodes (§5.2) and close codes (§7.4), as IntEnums equal to
their wire values (README, "The WebSocket implementation").

A parsed frame carries its opcode as the plain int read from the wire, and a peer's close code stays the plain
int it sent (3000–4999 are anyone's): no enum is built per frame. Hot paths compare those ints against module
constants (frames.OP_CLOSE and the like: plain ints equal to the members), a global read; `Opcode.CLOSE` is an
attribute lookup on the enum class, several times slower on CPython.
"""

from __future__ import annotations

import enum

__all__ = ["CloseCode", "Opcode", "WireInt", "is_valid_close_code"]


class WireInt(enum.IntEnum):
    """An IntEnum that prints as its number on every Python (`%s`, str(), format()), as 3.11's IntEnum does: a
    close code in a log line or a message reads 1006 on 3.9 and PyPy too."""

    def __str__(self) -> str:
        return int.__repr__(self)

    def __format__(self, format_spec: str) -> str:
        return int.__format__(self, format_spec)


class Opcode(WireInt):
    """Frame opcodes (RFC 6455 §5.2)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(WireInt):
    """The close codes this implementation sends or reports (RFC 6455 §7.4.1 and the IANA registry)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never on the wire: "the close frame carried no code"
    ABNORMAL = 1006  # never on the wire: "the TCP connection dropped without a close frame"
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


# Codes a peer may send: the IANA-registered ones that are allowed on the wire, and the private ranges.
_REGISTERED_WIRE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))
PRIVATE_CODES_FIRST = 3000
PRIVATE_CODES_LAST = 4999


def is_valid_close_code(code: int) -> bool:
    """True when `code` may appear in a close frame: 1000–1003, 1007–1014 or 3000–4999."""
    return code in _REGISTERED_WIRE_CODES or PRIVATE_CODES_FIRST <= code <= PRIVATE_CODES_LAST
