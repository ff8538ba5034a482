"""The watch's settings and URLs: --interval, --server, --token and --watcher (command line first, then
MADACE_STATUS_*), the entity classified before any data arrived, the subscription it needs, and the sync server URL
to ask (README, "`madace-status status --watch`")."""

from __future__ import annotations

import argparse
import math
import ssl
from typing import Mapping, Optional, Sequence, Tuple, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from madace_status.console import UsageError
from madace_status.project.loader import ProjectPaths, ProjectUnreadable, load_workflows
from madace_status.project.registry import (EPIC, EPICS, STORIES, STORY, SUMMARY, WORKFLOWS, UnrecognisedEntity,
                                            Query, check_entity_text, classify, shown)
from madace_status.logsafe import escape
from madace_status.settings import ENV_PREFIX, SettingError, setting, text_setting
from madace_status.choices import WATCHER_CHOICES

__all__ = ["CLIENT_SOURCE", "DEFAULT_INTERVAL_S", "DEFAULT_SERVER", "MIN_INTERVAL_S", "WatchSettings",
           "check_server_url", "initial_query", "subscription", "subscription_url"]

# What the view subscribes to: topics and workflow names, None meaning "all".
Subscription = Tuple[Optional[Tuple[str, ...]], Optional[Tuple[str, ...]]]

DEFAULT_SERVER = "ws://127.0.0.1:3001"
MAX_REASON_SHOWN = 60  # of the reason a server gives for a refusal: a peer's text, escaped and cut
DEFAULT_INTERVAL_S = 2.0
MIN_INTERVAL_S = 0.1
CLIENT_SOURCE = "cli"


class WatchSettings:
    """--interval, --server, --token and --watcher, from the command line first, then MADACE_STATUS_* variables.
    `watcher` is the offline fallback's change detector, chosen as `serve --watcher` chooses its own."""

    __slots__ = ("interval", "server", "token", "watcher", "server_chosen", "exit_status", "until", "timeout",
                 "cafile")

    def __init__(self, interval: float = DEFAULT_INTERVAL_S, server: str = DEFAULT_SERVER, token: Optional[str] = None,
                 watcher: str = "auto", server_chosen: bool = False, exit_status: bool = False,
                 until: Optional[str] = None, timeout: Optional[float] = None, cafile: Optional[str] = None) -> None:
        self.interval = interval
        self.server = server
        self.token = token
        self.watcher = watcher
        # --server or MADACE_STATUS_SERVER named the server: its project is shown even when it is not --root's.
        self.server_chosen = server_chosen
        # Waiting in scripts (watch/goal.py): --exit-status or --until ends the watch, --timeout gives up.
        self.exit_status = exit_status
        self.until = until
        self.timeout = timeout
        self.cafile = cafile  # --cafile: the certificates a wss:// or https:// server is checked against

    def ssl_context(self) -> Optional[ssl.SSLContext]:
        """The TLS context for the server: --cafile's certificates, else None (the system's, and SSL_CERT_FILE)."""
        return ssl.create_default_context(cafile=self.cafile) if self.cafile else None

    def certificate_message(self, error: Exception) -> str:
        """What the user is told when the server's certificate is not trusted."""
        return ("the certificate of %s is not trusted (%s): pass the certificate that signed it with --cafile FILE "
                "(or %sCAFILE, or SSL_CERT_FILE)" % (self.server, escape(str(error), MAX_REASON_SHOWN), ENV_PREFIX))

    def authorization(self) -> Optional[str]:
        """The `Authorization` header for the token, when a header can carry it."""
        token = self.token
        return "Bearer " + token if token is not None and _is_header_safe(token) else None

    def query_token(self) -> Optional[str]:
        """The token when it must go in the URL's query instead (a header cannot carry it)."""
        return self.token if self.token is not None and not _is_header_safe(self.token) else None

    def refusal_message(self, status: int, reason: str) -> str:
        """What the user is told when the server refuses the connection with an HTTP error `status`."""
        server = self.server
        if status in (401, 403):
            if self.token is None:
                return ("the sync server at %s refused the connection (HTTP %d): it needs a token; pass --token "
                        "or set %sTOKEN" % (server, status, ENV_PREFIX))
            return ("the sync server at %s refused the token (HTTP %d): check --token or %sTOKEN"
                    % (server, status, ENV_PREFIX))
        return "the sync server at %s refused the connection: %s" % (server, escape(reason, MAX_REASON_SHOWN))

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> WatchSettings:
        try:
            given = setting(getattr(args, "interval", None), "INTERVAL", environ, convert=float)
        except SettingError as error:
            raise UsageError(str(error))
        interval = DEFAULT_INTERVAL_S if given is None else cast(float, given)  # argparse's type=float, or convert
        if not (math.isfinite(interval) and interval >= MIN_INTERVAL_S):
            raise UsageError("--interval must be a number of seconds, at least %g (got %s)"
                             % (MIN_INTERVAL_S, interval))
        chosen_server = text_setting(getattr(args, "server", None), "SERVER", environ)
        server = chosen_server or DEFAULT_SERVER
        check_server_url(server)
        token = text_setting(getattr(args, "token", None), "TOKEN", environ)
        if token is not None and any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in token):
            raise UsageError("--token must not contain control characters")
        watcher = text_setting(getattr(args, "watcher", None), "WATCHER", environ) or "auto"
        if watcher not in WATCHER_CHOICES:  # MADACE_STATUS_WATCHER is not checked by argparse
            raise UsageError("--watcher must be one of %s (got '%s')" % (", ".join(WATCHER_CHOICES), shown(watcher)))
        until = getattr(args, "until", None)
        exit_status = bool(getattr(args, "exit_status", None))
        timeout = getattr(args, "timeout", None)
        if timeout is not None:
            if not (exit_status or until is not None):
                raise UsageError("--timeout only applies with --exit-status or --until")
            if not (math.isfinite(timeout) and timeout > 0):
                raise UsageError("--timeout must be a number of seconds above 0 (got %s)" % timeout)
        cafile = text_setting(getattr(args, "cafile", None), "CAFILE", environ)
        if cafile is not None:
            try:
                ssl.create_default_context(cafile=cafile)
            except (OSError, ssl.SSLError) as error:
                raise UsageError("--cafile %s cannot be read as PEM certificates: %s"
                                 % (shown(cafile), getattr(error, "strerror", None) or error))
        return cls(interval, server, token, watcher, chosen_server is not None, exit_status, until, timeout, cafile)


def check_server_url(url: str) -> None:
    """Raise UsageError unless `url` is a usable ws:// or wss:// URL."""
    example = "e.g. ws://127.0.0.1:3001 (or the HTTP port's event stream: http://127.0.0.1:3000)"
    if any(ch <= " " or ch == "\x7f" for ch in url):
        raise UsageError("--server URL must not contain spaces or control characters: '%s'" % shown(url))
    try:
        parts = urlsplit(url)
        parts.port  # ValueError for a port that is not a number from 0 to 65535
    except ValueError as error:
        raise UsageError("--server URL '%s' is malformed (%s); %s" % (shown(url), error, example))
    if parts.scheme not in ("ws", "wss", "http", "https"):
        raise UsageError("--server must be a ws://, wss://, http:// or https:// URL, %s (got '%s')"
                         % (example, shown(url)))
    if not parts.hostname:
        raise UsageError("--server URL '%s' has no host; %s" % (shown(url), example))
    if parts.username is not None or parts.password is not None:
        raise UsageError("--server URL '%s' holds credentials; pass the token with --token" % shown(url))
    if parts.fragment:
        raise UsageError("--server URL '%s' must not have a #fragment" % shown(url))


def initial_query(text: str, paths: ProjectPaths) -> Query:
    """Classify ENTITY before any data arrived (UnrecognisedEntity is a usage error, exit 2).

    Rule 5 (a workflow state file's name) needs the workflow names: the local ones are asked only when the
    text is unrecognised without them. Every render classifies again against the data shown.
    """
    text = text.strip()
    check_entity_text(text)
    try:
        return classify(text)
    except UnrecognisedEntity:
        try:
            names = {w.name for w in load_workflows(paths)[0]}
        except (OSError, ProjectUnreadable):
            names = set()
        return classify(text, names)


def subscription(text: str, query: Query) -> Subscription:
    """(topics, workflow names) the view needs; None means "all"."""
    kind = query.kind
    if kind == SUMMARY:
        return None, None
    if kind == STORIES:
        return ("stories",), None
    if kind == STORY:
        prefix, colon, _ = text.strip().partition(":")
        if colon and prefix.lower() == "story":
            return ("stories",), None
        return ("stories", "workflows"), (text.strip(),)  # rule 5: a workflow of that very name would win
    if kind in (EPIC, EPICS):
        return ("epics",), None
    if kind == WORKFLOWS:
        return ("workflows",), None
    assert query.key is not None  # a single workflow's query always names it
    return ("workflows",), (query.key,)


def subscription_url(base: str, topics: Optional[Sequence[str]], workflows: Optional[Sequence[str]],
                     run_id: Optional[str] = None, since: Optional[int] = None, token: Optional[str] = None) -> str:
    """`base` with the query the sync server reads: source, topics, workflows, and runId/since to resume."""
    parts = urlsplit(base)
    ours = {"source", "topics", "workflows", "runId", "since"}
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in ours]
    query.append(("source", CLIENT_SOURCE))
    if topics is not None:
        query.append(("topics", ",".join(topics)))
    if workflows is not None:
        query.append(("workflows", ",".join(workflows)))
    if run_id is not None and since is not None:
        query.extend((("runId", run_id), ("since", str(since))))
    if token is not None:
        query.append(("token", token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


def _is_header_safe(token: str) -> bool:
    return all(0x20 <= ord(ch) < 0x7f for ch in token)
