"""The HTTP server: dashboard pages and the JSON API (README, "HTTP API"), on `http.server.ThreadingHTTPServer`.

One small method per route. Every error is the JSON envelope `{"success": false, "error", "code"}`.
No route serves files from disk by path: the two pages are fixed documents of the package, and `/static/<name>`
serves only the package's own static files whose name `assets.ASSET_NAME` accepts.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from typing import Any, Callable, ClassVar, Container, Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from madace_status import __version__
from madace_status.project import registry
from madace_status.project.loader import ProjectUnreadable
from madace_status.project.model import STORY_STATES
from madace_status.project.time_range import time_bound, within
from madace_status.project.render.envelope import envelope
from madace_status.forwarded import PublicView
from madace_status.logsafe import escape
from madace_status.security import CSRF_HEADER, BadHost, request_host, write_refusal
from madace_status.sync import HISTORY_MAX_SAMPLES, WEBSOCKET_PATH, SubscriptionError, parse_topics, parse_workflows
from madace_status.web import assets, pages
from madace_status.web.api_values import ascii_number
from madace_status.web.app import SYNC_STOPPED_MESSAGE, DashboardApp, SyncActionError
from madace_status.web.limits import DEFAULT_LIMITS, BoundedHTTPServer, HttpLimits, TimedRequestHandler
from madace_status.web.request_reader import HTTP_BODY_MAX_BYTES

__all__ = ["ACTIVITY_DEFAULT", "ACTIVITY_MAX", "API_TYPES", "HISTORY_DEFAULT", "MAX_ENTITY_ID_CHARS", "SYNC_ACTIONS",
           "ApiError", "DashboardHandler", "DashboardServer"]

logger = logging.getLogger("madace_status.http")

Headers = Iterable[Tuple[str, str]]

MAX_ENTITY_ID_CHARS = 200
ACTIVITY_DEFAULT = 20
ACTIVITY_MAX = 1024
HISTORY_DEFAULT = 500  # samples a chart asks for by default (the store keeps up to HISTORY_MAX_SAMPLES)
API_TYPES = {"story": registry.STORY, "epic": registry.EPIC, "workflow": registry.WORKFLOW,
             "state-machine": registry.SUMMARY}
SYNC_ACTIONS = ("start", "stop", "restart")
STATIC_PREFIX = "/static/"
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ApiError(Exception):
    """An answer in the JSON error envelope: its HTTP status, its code, its message and any extra members."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


class DashboardServer(BoundedHTTPServer):
    """The HTTP server of `serve`; its `app` is set once the sync service it reports on exists."""

    def __init__(self, address: Tuple[str, int], app: Optional[DashboardApp],
                 limits: HttpLimits = DEFAULT_LIMITS) -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6  # an IPv6 --host such as ::1 (the class default is IPv4)
        super().__init__(address, DashboardHandler, limits)


class DashboardHandler(TimedRequestHandler):
    server_version = "madace-status/" + __version__
    error_content_type = "application/json"

    # -- plumbing ---------------------------------------------------------------------------------------------

    server: DashboardServer
    query: Dict[str, List[str]]
    view: Optional[PublicView] = None  # how the client reached us (a trusted proxy's word): set by _check_host

    @property
    def app(self) -> DashboardApp:
        app = self.server.app
        assert app is not None  # set by serve before the server's thread starts
        return app

    def address_string(self) -> str:
        """The client's address for the log: the one a trusted proxy names, else the peer's."""
        return escape(self.view.client) if self.view is not None else str(self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), escape(format % args))  # the request line is the peer's

    def _send(self, status: int, body: bytes, content_type: str, headers: Headers = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, document: Dict[str, Any], headers: Headers = ()) -> None:
        body = json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", (("Cache-Control", "no-store"),) + tuple(headers))

    def _send_error_envelope(self, error: ApiError) -> None:
        document = {"success": False, "error": error.message, "code": error.code}
        document.update(error.extra)
        self._send_json(error.status, document)

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """http.server's own errors (bad request line, unsupported method) in the JSON envelope too."""
        self.close_connection = True
        if getattr(self, "request_version", None) in ("HTTP/0.9", None):
            self.request_version = "HTTP/1.0"  # a garbled request line: answer with a status line all the same
        names = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 414: "URI_TOO_LONG",
                 431: "HEADERS_TOO_LARGE", 501: "METHOD_NOT_ALLOWED"}
        try:
            self._send_error_envelope(ApiError(code, names.get(code, "HTTP_%d" % code),
                                               message or self.responses.get(code, ("error",))[0]))
        except (OSError, AttributeError):
            pass  # the request was too broken to answer (no request version yet, or the peer left)

    # -- routing ----------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._method_not_allowed()

    do_DELETE = do_PATCH = do_PUT

    def _method_not_allowed(self) -> None:
        try:
            self._check_host()
            raise ApiError(405, "METHOD_NOT_ALLOWED", "%s is not supported" % self.command)
        except ApiError as error:
            self._send_error_envelope(error)

    def _route(self, method: str) -> None:
        self.query = {}
        try:
            self._check_host()
            try:
                parts = urlsplit(self.path)  # ValueError for a target such as //[x
                self.query = parse_qs(parts.query, keep_blank_values=True)
            except ValueError:
                raise ApiError(400, "BAD_REQUEST", "the request target is not a valid URL")
            path = self._app_path(parts.path)
            if path is None:
                return  # redirected to the base path, or answered 404
            upgrade = (self.headers.get("Upgrade") or "").lower()
            if path == WEBSOCKET_PATH and method == "GET" and "websocket" in upgrade:
                self._websocket_upgrade()  # its own checks: the sync service's, as on its own port
                return
            if path.startswith("/api/") or path == "/metrics":
                self._check_token()
            if method == "POST":
                self._check_write()
            route = self._ROUTES.get((method, path))
            if route is not None:
                route(self)
            elif method == "GET" and path.startswith("/api/status/"):
                self._api_entity(path[len("/api/status/"):])
            elif path.startswith(STATIC_PREFIX):
                if method != "GET":
                    raise ApiError(405, "METHOD_NOT_ALLOWED", "%s is not supported on %s" % (method, path[:200]))
                self._static(path[len(STATIC_PREFIX):])
            elif any(path == known for _, known in self._ROUTES):
                raise ApiError(405, "METHOD_NOT_ALLOWED", "%s is not supported on %s" % (method, path))
            else:
                raise ApiError(404, "NOT_FOUND", "no route %s" % path[:200])
        except ApiError as error:
            self._send_error_envelope(error)
        except ProjectUnreadable as error:
            self._send_error_envelope(ApiError(503, "PROJECT_UNREADABLE", str(error)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            logger.exception("error answering %s %s", method, escape(self.path))
            self._send_error_envelope(ApiError(500, "INTERNAL_ERROR", "internal error; see the server log"))

    # -- security ---------------------------------------------------------------------------------------------

    def _check_host(self) -> None:
        """DNS rebinding: answer only to the names this server is known by (README, "Security"); the host
        of an absolute-form target is the one checked, and two Host headers are a bad request. Behind a trusted
        proxy, the public host it names is the one checked (README, "Behind a reverse proxy")."""
        headers = self.headers
        try:
            host = request_host(self.path, headers.get_all("Host") or [])
        except BadHost as error:
            logger.info("refused %s from %s: %s", escape(self.command), self.address_string(), error)
            raise ApiError(400, "BAD_REQUEST", str(error))
        self.view = view = self.app.proxy_trust.view(self.client_address, host, headers)
        host = view.host
        reason = self.app.host_policy.refusal(host, http_11=self.request_version != "HTTP/1.0")
        if reason is not None:
            logger.info("refused %s from %s: %s", escape(self.command), self.address_string(), escape(reason))
            raise ApiError(403, "HOST_NOT_ALLOWED", reason)

    def _explicit_token(self) -> Optional[str]:
        """The token given in ?token= or Authorization: Bearer (what a page on another site cannot send)."""
        values = self.query.get("token")
        if values:
            return values[0]
        authorization = self.headers.get("Authorization") or ""
        if authorization.lower().startswith("bearer "):
            return authorization[7:].strip()
        return None

    def _token_ok(self, cookie: bool = True) -> bool:
        credentials = self.app.credentials
        if credentials.token is None:
            return True
        return credentials.token_ok(self._explicit_token()) or (
            cookie and credentials.cookie_ok(self.headers.get("Cookie")))

    def _check_token(self) -> None:
        if not self._token_ok():
            raise ApiError(401, "UNAUTHORIZED", "a valid token is required (Authorization: Bearer, ?token= or the "
                                                "dashboard cookie)")

    def _app_path(self, path: str) -> Optional[str]:
        """The route of `path` under --base-path, or None when answered here: the base itself (and `/`) redirect
        to its dashboard, anything outside it is 404."""
        base = self.app.base_path
        if not base:
            return path
        if path.startswith(base + "/") and path != base + "/":
            return path[len(base):]
        if path in ("/", base, base + "/"):
            self._redirect_root()
            return None
        raise ApiError(404, "NOT_FOUND", "no route %s: this server is under %s/" % (path[:200], base))

    def _write_origins(self) -> Container[str]:
        assert self.view is not None  # set by _check_host, the first step of every route
        return self.app.write_origins_for(self.view)

    def _check_write(self) -> None:
        """CSRF: a write another site started is refused, and the cookie alone never authorises one."""
        reason = write_refusal(self.headers.get("Origin"), self.headers.get("Sec-Fetch-Site"), self._write_origins())
        if reason is not None:
            logger.info("refused %s %s from %s: %s", escape(self.command), escape(self.path),
                        self.address_string(), escape(reason))
            raise ApiError(403, "CROSS_SITE_REFUSED", reason)
        credentials = self.app.credentials
        if credentials.token is not None and not self._token_ok(cookie=False) and \
                not credentials.csrf_ok(self.headers.get(CSRF_HEADER)):
            raise ApiError(403, "CSRF_TOKEN_REQUIRED", "the dashboard cookie alone does not authorise a write: send "
                                                       "Authorization: Bearer TOKEN (or the page's %s header)"
                           % CSRF_HEADER)

    # -- pages ------------------------------------------------------------------------------------------------

    def _redirect_root(self) -> None:
        query = urlsplit(self.path).query
        self.send_response(302)
        self.send_header("Location", self.app.base_path + "/status" + ("?" + query if query else ""))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _page(self, name: str) -> None:
        ws_url = self.app.ws_url(self.view)
        credentials = self.app.credentials
        authorised = self._token_ok()
        # The page holds the anti-CSRF token only when it is allowed to act: a stranger's copy of /sync-status has none.
        body, csp = pages.render(name, ws_url=ws_url, token_required=bool(self.app.token),
                                 csrf_token=credentials.csrf_token() if authorised else "")
        headers = [("Content-Security-Policy", csp), ("Cache-Control", "no-store"),
                   ("Referrer-Policy", "no-referrer"), ("X-Frame-Options", "DENY")]
        if self.app.token and self.query.get("token") and self._token_ok(cookie=False):
            # The dashboard's own reads and its WebSocket handshake carry this cookie from here on: named for
            # this port, it holds an HMAC of the token under a per-run secret, never the token.
            headers.append(("Set-Cookie", credentials.set_cookie_header()))
        self._send(200, body, "text/html; charset=utf-8", headers)

    def _status_page(self) -> None:
        self._page("status")

    def _sync_page(self) -> None:
        self._page("sync")

    def _static(self, name: str) -> None:
        """A script, style or image of the pages: strong ETag, 304 when the browser has this version."""
        asset = assets.find(name)
        if asset is None:
            raise ApiError(404, "NOT_FOUND", "no static file %s" % name[:200])
        headers = [("ETag", asset.etag), ("Cache-Control", assets.CACHE_CONTROL),
                   ("Content-Security-Policy", "default-src 'none'")]  # an SVG opened on its own runs nothing
        if asset.matches(self.headers.get("If-None-Match")):
            self.send_response(304)
            for header, value in headers:
                self.send_header(header, value)
            self.end_headers()
            return
        self._send(200, asset.body, asset.content_type, headers)

    def _healthz(self) -> None:
        self._send(200, b"ok\n", "text/plain; charset=utf-8", (("Cache-Control", "no-store"),))

    # -- API --------------------------------------------------------------------------------------------------

    def _api_status(self) -> None:
        project = self.app.project()
        self._send_json(200, envelope(registry.find(project, registry.Query(registry.SUMMARY))))

    def _api_entity(self, rest: str) -> None:
        entity_type, slash, entity_id = rest.partition("/")
        try:
            entity_id = unquote(entity_id, errors="strict")
        except UnicodeDecodeError:
            raise ApiError(400, "VALIDATION_ERROR", "id is not valid percent-encoded UTF-8")
        if entity_type not in API_TYPES:
            raise ApiError(400, "INVALID_TYPE", "type must be one of %s" % ", ".join(sorted(API_TYPES)),
                           validTypes=sorted(API_TYPES))
        if not slash or not entity_id:
            raise ApiError(400, "VALIDATION_ERROR", "an id is required: /api/status/%s/ID" % entity_type)
        if len(entity_id) > MAX_ENTITY_ID_CHARS:
            raise ApiError(400, "VALIDATION_ERROR", "id is longer than %d characters" % MAX_ENTITY_ID_CHARS)
        if "/" in entity_id or "\\" in entity_id or ".." in entity_id or _CONTROL_CHARS.search(entity_id):
            raise ApiError(400, "VALIDATION_ERROR", "id may not contain '/', '\\', '..' or control characters")
        kind = API_TYPES[entity_type]
        key = entity_id if kind == registry.WORKFLOW else entity_id.upper()
        project = self.app.project()
        try:
            entity = registry.find(project, registry.Query(kind, key))
        except registry.EntityNotFound as error:
            raise ApiError(404, "ENTITY_NOT_FOUND", str(error), suggestions=error.suggestions)
        self._send_json(200, {"success": True, "result": envelope(entity)})

    def _api_activity(self) -> None:
        limit = ascii_number(self.query.get("limit", [str(ACTIVITY_DEFAULT)])[0])
        if limit is None or limit < 1:
            raise ApiError(400, "VALIDATION_ERROR", "limit must be a positive integer of ASCII digits (at most %d "
                                                    "is used)" % ACTIVITY_MAX)
        limit = min(limit, ACTIVITY_MAX)
        brief = self.query.get("brief", ["0"])[0]
        if brief not in ("0", "1"):
            raise ApiError(400, "VALIDATION_ERROR", "brief must be 0 or 1")
        events = self.app.recent_events(limit, brief == "1")
        self._send_json(200, {"success": True, "count": len(events), "events": events})

    def _api_history(self) -> None:
        limit = ascii_number(self.query.get("limit", [str(HISTORY_DEFAULT)])[0])
        if limit is None or limit < 1:
            raise ApiError(400, "VALIDATION_ERROR", "limit must be a positive integer of ASCII digits (at most %d "
                                                    "is used)" % HISTORY_MAX_SAMPLES)
        try:
            since = time_bound(self.query["since"][0] if "since" in self.query else None, end=False)
            until = time_bound(self.query["until"][0] if "until" in self.query else None, end=True)
        except ValueError as error:
            raise ApiError(400, "VALIDATION_ERROR", "since and until: %s" % error)
        samples = within(self.app.history_samples(HISTORY_MAX_SAMPLES), since, until)[-min(limit, HISTORY_MAX_SAMPLES):]
        self._send_json(200, {"success": True, "states": list(STORY_STATES), "count": len(samples),
                              "samples": samples})

    def _websocket_upgrade(self) -> None:
        """GET /ws with Upgrade: websocket on the HTTP port: the sync service's WebSocket, one origin for both."""
        if not self.app.service.running:
            raise ApiError(503, "SYNC_STOPPED", SYNC_STOPPED_MESSAGE)
        self.app.adopt_websocket(self.connection, self.complete.data)
        self.complete.handed_over = True
        self.close_connection = True

    def _api_events(self) -> None:
        """GET /api/events: the sync service's events as Server-Sent Events (README, "Server-Sent Events")."""
        try:
            topics = parse_topics(self.query["topics"][0] if "topics" in self.query else None)
            workflows = parse_workflows(self.query["workflows"][0] if "workflows" in self.query else None)
        except SubscriptionError as error:
            raise ApiError(400, "VALIDATION_ERROR", str(error))
        # Another site's page may not hold streams open here (each one a slot of MAX_STREAMS) even unread.
        cross_site = write_refusal(self.headers.get("Origin"), self.headers.get("Sec-Fetch-Site"),
                                   self._write_origins(), "event stream", "open one")
        if cross_site is not None:
            raise ApiError(403, "CROSS_SITE_REFUSED", cross_site)
        refusal = self.app.stream_refusal()
        if refusal is not None:
            raise ApiError(503, *refusal)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")  # a reverse proxy passes each event on at once
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.flush()
        self.app.adopt_event_stream(self.connection, topics, workflows, self.headers.get("Last-Event-ID"))
        self.complete.handed_over = True

    def _api_sync(self) -> None:
        self._send_json(200, dict(self.app.sync_info(self.view), success=True))

    def _api_sync_action(self) -> None:
        request = self._read_json_body()
        action = request.get("action")
        if action not in SYNC_ACTIONS:
            raise ApiError(400, "INVALID_ACTION", "action must be one of %s" % ", ".join(SYNC_ACTIONS))
        ws_port = request.get("wsPort")
        if ws_port is not None and (not isinstance(ws_port, int) or isinstance(ws_port, bool)
                                    or not 0 <= ws_port <= 65535):
            raise ApiError(400, "VALIDATION_ERROR", "wsPort must be an integer from 0 to 65535")
        assert isinstance(action, str)  # one of SYNC_ACTIONS
        try:
            message = self.app.sync_action(action, ws_port)
            success, status = True, 200
        except SyncActionError as error:
            message, success, status = str(error), False, 409
        info = self.app.sync_info(self.view)
        document = {"success": success, "message": message, "running": info["running"], "wsPort": info["wsPort"],
                    "clientCount": info["clientCount"]}
        if not success:
            document.update(error=message, code="SYNC_ACTION_FAILED")
        self._send_json(status, document)

    def _read_json_body(self) -> Dict[str, Any]:
        raw_length = self.headers.get("Content-Length")
        length = ascii_number(raw_length.strip() if raw_length is not None else None)
        if length is None:
            self.close_connection = True  # the body, if any, was not read
            raise ApiError(411 if raw_length is None else 400, "VALIDATION_ERROR", "a JSON body with Content-Length "
                                                                                   "is required")
        if length > HTTP_BODY_MAX_BYTES:
            self.close_connection = True
            raise ApiError(413, "PAYLOAD_TOO_LARGE", "the body is larger than %d bytes" % HTTP_BODY_MAX_BYTES)
        body = self.read_body(length)  # read with the head, within its deadline (web/limits.py)
        if len(body) < length:
            raise ApiError(400, "VALIDATION_ERROR", "the body ended before Content-Length bytes")
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: a body nested ~1000 deep
            raise ApiError(400, "INVALID_JSON", "the body is not valid JSON")
        if not isinstance(document, dict):
            raise ApiError(400, "INVALID_JSON", "the body must be a JSON object")
        return document

    def _metrics(self) -> None:
        body = self.app.metrics_text().encode("utf-8")
        self._send(200, body, "text/plain; version=0.0.4; charset=utf-8", (("Cache-Control", "no-store"),))

    _ROUTES: ClassVar[Dict[Tuple[str, str], Callable[[DashboardHandler], None]]] = {
        ("GET", "/"): _redirect_root,
        ("GET", "/status"): _status_page,
        ("GET", "/sync-status"): _sync_page,
        ("GET", "/healthz"): _healthz,
        ("GET", "/metrics"): _metrics,
        ("GET", "/api/status"): _api_status,
        ("GET", "/api/activity"): _api_activity,
        ("GET", "/api/history"): _api_history,
        ("GET", "/api/sync"): _api_sync,
        ("GET", "/api/events"): _api_events,
        ("POST", "/api/sync"): _api_sync_action,
    }
