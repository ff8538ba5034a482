"""Who may open a WebSocket to the sync service: the checks of its handshake (README, "Security"), run before the
101 is sent. A refusal is a HandshakeError with its HTTP status."""

from __future__ import annotations

from typing import Callable

from madace_status.forwarded import ProxyTrust, PublicView
from madace_status.security import BadHost, Credentials, HostPolicy, request_host, token_matches
from madace_status.sync.clients.subscribers import SubscriptionError, parse_since, parse_topics, parse_workflows
from madace_status.websocket import HandshakeError, Request

__all__ = ["WEBSOCKET_PATH", "WEBSOCKET_PATHS", "check_handshake", "public_view"]

WEBSOCKET_PATH = "/ws"  # on the WebSocket port, and under --base-path on the HTTP port
WEBSOCKET_PATHS = ("/", WEBSOCKET_PATH)


def public_view(request: Request, peer: object, proxy_trust: ProxyTrust) -> PublicView:
    """How the client reached us: what a trusted proxy's forwarding headers say, else the request itself. The host
    of an absolute-form target is the request's (RFC 9112 §3.2.2); two Host headers are a HandshakeError (400)."""
    headers = request.headers
    try:
        host = request_host(request.target, headers.get_all("Host"))
    except BadHost as error:
        raise HandshakeError(str(error), status=400)
    return proxy_trust.view(peer, host, headers)


def check_handshake(request: Request, view: PublicView, host_policy: HostPolicy,
                    origin_allowed: Callable[[str], bool], token: str | None, credentials: Credentials | None,
                    base_path: str = "") -> None:
    """Raise HandshakeError unless `request`, seen as `view` (public_view), may connect: its host (the public one
    behind a trusted proxy) passes `host_policy` (403), its path is a WebSocket endpoint (`/`, `/ws`, or /ws under
    `base_path`; 404), its Origin, if any, is allowed or is the public origin (403), it carries `token` (as
    `?token=`, a bearer header, or the dashboard cookie `credentials` checks; 403) when there is one, and its
    subscription parameters are valid (400)."""
    refusal = host_policy.refusal(view.host)  # DNS rebinding, as on HTTP
    if refusal is not None:
        raise HandshakeError(refusal, status=403)
    if request.path not in WEBSOCKET_PATHS and request.path != base_path + WEBSOCKET_PATH:
        raise HandshakeError("no WebSocket endpoint at %s (use %s/ws)" % (request.path[:80], base_path), status=404)
    origin = request.origin
    public_origin = view.origin if view.proxied else None
    if origin is not None and origin != public_origin and not origin_allowed(origin):
        raise HandshakeError("origin %s is not allowed" % origin[:100], status=403)
    if token:
        offered = request.query_value("token")
        authorization = request.headers.get("Authorization") or ""
        if offered is None and authorization.lower().startswith("bearer "):
            offered = authorization[7:].strip()
        cookie_ok = offered is None and credentials is not None and credentials.cookie_ok(request.headers.get("Cookie"))
        if not cookie_ok and not token_matches(token, offered):
            raise HandshakeError("missing or wrong token", status=403)
    try:
        parse_topics(request.query_value("topics"))
        parse_workflows(request.query_value("workflows"))
        parse_since(request.query_value("since"))
    except SubscriptionError as error:
        raise HandshakeError(str(error), status=400)
