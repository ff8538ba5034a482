"""The exception types of madace_status.websocket (README, "The WebSocket implementation").

A ProtocolError carries the close code it implies; the limit errors (MessageTooBig, PolicyViolation) carry the
figures too: what was reached and the limit. ConnectionClosed is what sending on, or receiving from, a closing or
closed connection raises — the peer may close at any moment, so a send that races a close is no mistake of the
caller's. InvalidState is a call the connection's state never allows (sending before the opening handshake is
done, recv() on a connection whose messages go to its callback): a mistake in the calling code.
"""

from __future__ import annotations

from typing import Iterable

from madace_status.websocket.codes import CloseCode

__all__ = [
    "ConnectionClosed", "HandshakeError", "InvalidPayload", "InvalidState", "MessageTooBig", "PolicyViolation",
    "ProtocolError", "WebSocketError",
]


class WebSocketError(Exception):
    """Base class of every error raised by madace_status.websocket."""


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455; the connection is failed with `close_code`."""

    close_code: int = CloseCode.PROTOCOL_ERROR
    in_close_frame = False  # set when the peer's own close frame was the invalid thing

    def __init__(self, reason: str, close_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if close_code is not None:
            self.close_code = close_code


class InvalidPayload(ProtocolError):
    """A text message or close reason that is not UTF-8 (close 1007)."""

    close_code = CloseCode.INVALID_PAYLOAD


class MessageTooBig(ProtocolError):
    """A message over the size limit (close 1009): `size` is the bytes it reached, `limit` the limit.

    `inflated`: a compressed message that inflates past the limit; inflating stops one byte past it, so `size`
    is then `limit + 1`, not the whole message's size."""

    close_code = CloseCode.MESSAGE_TOO_BIG

    def __init__(self, size: int, limit: int, inflated: bool = False) -> None:
        super().__init__(("message inflates to more than %d bytes" if inflated else "message is larger than %d bytes")
                         % limit)
        self.size = size
        self.limit = limit


class PolicyViolation(ProtocolError):
    """The peer went past one of the server's inbound limits (close 1008): `what` names the limit, `value` is the
    figure the peer reached and `limit` the limit's own (see inbound.py)."""

    close_code = CloseCode.POLICY_VIOLATION

    def __init__(self, reason: str, what: str, value: int, limit: int) -> None:
        super().__init__(reason)
        self.what = what
        self.value = value
        self.limit = limit


class InvalidState(WebSocketError):
    """A call the connection's state does not allow: a send before the opening handshake is done, recv() on a
    connection whose messages go to `on_message`, an event the state machine has no transition for."""


class HandshakeError(WebSocketError):
    """The opening handshake was refused; `status` is the HTTP status it implies (server side) or got
    (client side, 0 when no valid response arrived)."""

    def __init__(self, reason: str, status: int = 400, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = list(headers)


class ConnectionClosed(WebSocketError):
    """Raised when sending on, or receiving from, a connection that is closing or closed."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__("connection closed: %d %s" % (code, reason) if reason else "connection closed: %d" % code)
        self.code = code
        self.reason = reason
