"""What `Connection.events()` yields (README, "The WebSocket implementation"): a whole data message, a control
frame, or the peer's close frame."""

from __future__ import annotations

from typing import Union

__all__ = ["BinaryMessage", "CloseReceived", "Event", "Ping", "Pong", "TextMessage"]


class TextMessage:
    __slots__ = ("data",)

    def __init__(self, data: str) -> None:
        self.data = data

    def __repr__(self) -> str:
        return "TextMessage(%d chars)" % len(self.data)


class BinaryMessage:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return "BinaryMessage(%d bytes)" % len(self.data)


class Ping:
    """The peer pinged; the pong is already in `data_to_send()`."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Pong:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class CloseReceived:
    """The peer's close frame (`code` 1005 when it carried none). When the peer started the close, the echo
    is already in `data_to_send()`."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return "CloseReceived(%d, %r)" % (self.code, self.reason)


Event = Union[TextMessage, BinaryMessage, Ping, Pong, CloseReceived]
