"""The protocol's own exception types. Each protocol error carries the close code it implies."""


class WebSocketError(Exception):
    """Base class of every error raised by madace_status.websocket."""


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455; the connection is failed with `close_code`."""

    close_code = 1002
    in_close_frame = False  # set when the peer's own close frame was the invalid thing

    def __init__(self, reason, close_code=None):
        super().__init__(reason)
        self.reason = reason
        if close_code is not None:
            self.close_code = close_code


class InvalidPayload(ProtocolError):
    """A text message or close reason that is not UTF-8 (close 1007)."""

    close_code = 1007


class MessageTooBig(ProtocolError):
    """A message over the size limit (close 1009)."""

    close_code = 1009


class PolicyViolation(ProtocolError):
    """The peer went past one of the server's inbound limits (close 1008): `limit` names it, `value` is the
    figure it reached and `allowed` the limit's own (see inbound.py)."""

    close_code = 1008

    def __init__(self, reason, limit=None, value=None, allowed=None):
        super().__init__(reason)
        self.limit = limit
        self.value = value
        self.allowed = allowed


class HandshakeError(WebSocketError):
    """The opening handshake was refused; `status` is the HTTP status it implies (server side) or got
    (client side, 0 when no valid response arrived)."""

    def __init__(self, reason, status=400, headers=()):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = list(headers)


class ConnectionClosed(WebSocketError):
    """Raised when sending on, or receiving from, a connection that is closing or closed."""

    def __init__(self, code, reason=""):
        super().__init__("connection closed: %d %s" % (code, reason) if reason else "connection closed: %d" % code)
        self.code = code
        self.reason = reason
