"""HTTP syntax both the handshake and the extension negotiation read (RFC 9110 §5.6): a token's characters, and
a number a peer wrote, checked before any int() sees it (ASCII digits only, bounded in length: int() of 5,000
digits raises on Python 3.11+ and costs quadratic time before it). (README, "The WebSocket implementation")"""

from __future__ import annotations

__all__ = ["TOKEN_CHARS", "is_ascii_number"]

TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def is_ascii_number(text: str, max_digits: int) -> bool:
    """1 to `max_digits` ASCII digits (str.isdigit alone also takes '²', which int() refuses)."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()
