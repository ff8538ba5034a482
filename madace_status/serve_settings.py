"""`serve`'s settings, resolved once: the command line first, then the MADACE_STATUS_* variables, then the
defaults, and every value validated (README, "`madace-status serve`"). A bad value is a SettingError, which
`serve` reports in one line with exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import socket
from typing import Callable, Mapping, Optional, Tuple, TypeVar, cast

from madace_status import settings
from madace_status.choices import COMPRESSION_MODES, WATCHER_CHOICES
from madace_status.forwarded import normalise_base_path, parse_networks
from madace_status.project.loader import ProjectPaths
from madace_status.settings import ENV_PREFIX, SettingError
from madace_status.sync import DEFAULT_WS_PORT, HEARTBEAT_S, POLL_INTERVAL_S
from madace_status.web.limits import DEFAULT_LIMITS, HttpLimits

Number = TypeVar("Number", int, float)

__all__ = ["DEFAULT_HOST", "DEFAULT_HTTP_PORT", "DEFAULT_LOG_LEVEL", "ServeSettings", "is_loopback"]

DEFAULT_HOST = "127.0.0.1"  # loopback unless asked: exposing the project is a decision
DEFAULT_HTTP_PORT = 3000
DEFAULT_LOG_LEVEL = "info"
MIN_POLL_INTERVAL_S = 0.01
MIN_HEARTBEAT_S = 0.05
MAX_HTTP_LIMIT = 10 ** 6  # for the MADACE_STATUS_HTTP_* limits (seconds or connections)
HISTORY_OFF_WORDS = frozenset(("off", "0", "false", "no"))  # MADACE_STATUS_HISTORY=off keeps it in memory
# The HTTP limits have variables only (rarely changed): (HttpLimits field, variable, type).
HTTP_LIMIT_VARIABLES = (("idle_timeout_s", "HTTP_IDLE_TIMEOUT", float),
                        ("head_timeout_s", "HTTP_HEAD_TIMEOUT", float),
                        ("body_timeout_s", "HTTP_BODY_TIMEOUT", float),
                        ("max_connections", "HTTP_MAX_CONNECTIONS", int))


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """Every value `serve` runs with; made by `resolve`, never half-filled."""

    paths: ProjectPaths
    host: str = DEFAULT_HOST
    port: int = DEFAULT_HTTP_PORT
    ws_port: int = DEFAULT_WS_PORT
    poll_interval: float = POLL_INTERVAL_S
    heartbeat: float = HEARTBEAT_S
    watcher: str = "auto"
    token: Optional[str] = None
    allow_origin: Tuple[str, ...] = ()
    allowed_host: Tuple[str, ...] = ()
    http_limits: HttpLimits = DEFAULT_LIMITS
    no_sync: bool = False
    one_port: bool = False
    base_path: str = ""  # "/madace": every route under it (normalise_base_path's form)
    trust_proxy: Tuple[str, ...] = ()  # the addresses or networks whose X-Forwarded-* / Forwarded are believed
    demo: bool = False
    no_history: bool = False
    insecure: bool = False
    log_level: str = DEFAULT_LOG_LEVEL
    compression: str = "auto"

    @classmethod
    def resolve(cls, args: argparse.Namespace, environ: Optional[Mapping[str, str]] = None) -> ServeSettings:
        """The settings from parsed `args` and `environ` (default: os.environ); SettingError on a bad value."""
        env = os.environ if environ is None else environ

        def value(given: object, name: str, convert: Optional[Callable[[str], object]] = None) -> object:
            return settings.setting(given, name, env, convert=convert)

        host = settings.text_setting(args.host, "HOST", env) or DEFAULT_HOST
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # "[::1]", as written in URLs, is the address ::1
        resolved = cls(
            paths=settings.project_paths(args, env),
            host=host,
            port=_or(value(args.port, "PORT", int), DEFAULT_HTTP_PORT),
            ws_port=_or(value(args.ws_port, "WS_PORT", int), DEFAULT_WS_PORT),
            poll_interval=_or(value(args.poll_interval, "POLL_INTERVAL", float), POLL_INTERVAL_S),
            heartbeat=_or(value(args.heartbeat, "HEARTBEAT", float), HEARTBEAT_S),
            watcher=settings.text_setting(args.watcher, "WATCHER", env) or "auto",
            token=settings.text_setting(args.token, "TOKEN", env),
            allow_origin=tuple(args.allow_origin or _list(settings.env_value("ALLOW_ORIGIN", env))),
            allowed_host=tuple(args.allowed_host or _list(settings.env_value("ALLOWED_HOSTS", env))),
            http_limits=_http_limits(env),
            no_sync=settings.flag(args.no_sync, "NO_SYNC", env),
            one_port=settings.flag(args.one_port, "ONE_PORT", env),
            base_path=_base_path(settings.text_setting(args.base_path, "BASE_PATH", env)),
            trust_proxy=tuple(args.trust_proxy or _list(settings.env_value("TRUST_PROXY", env))),
            demo=settings.flag(args.demo, "DEMO", env),
            no_history=settings.flag(args.no_history, "NO_HISTORY", env)
            or (settings.env_value("HISTORY", env) or "").strip().lower() in HISTORY_OFF_WORDS,
            insecure=settings.flag(args.insecure, "INSECURE", env),
            log_level=settings.text_setting(args.log_level, "LOG_LEVEL", env) or DEFAULT_LOG_LEVEL,
            compression=str(value(args.compression, "COMPRESSION", _compression_mode) or "auto"),
        )
        resolved.check()
        return resolved

    def check(self) -> None:
        """SettingError unless every value is one `serve` can run with."""
        if self.watcher not in WATCHER_CHOICES:  # MADACE_STATUS_WATCHER is not checked by argparse
            raise SettingError("--watcher must be one of %s" % ", ".join(WATCHER_CHOICES))
        if not self.poll_interval >= MIN_POLL_INTERVAL_S:  # `not >=` also refuses nan
            raise SettingError("--poll-interval must be at least %g s" % MIN_POLL_INTERVAL_S)
        if not self.heartbeat >= MIN_HEARTBEAT_S:
            raise SettingError("--heartbeat must be at least %g s" % MIN_HEARTBEAT_S)
        for flag, port in (("--port", self.port), ("--ws-port", self.ws_port)):
            if not 0 <= port <= 65535:
                raise SettingError("%s must be a port number from 0 to 65535" % flag)
        try:
            parse_networks(self.trust_proxy)
        except ValueError as error:
            raise SettingError(str(error))
        if not is_loopback(self.host) and not self.token and not self.insecure:
            raise SettingError("refusing to serve on %s without a token: set --token (or MADACE_STATUS_TOKEN), or "
                               "pass --insecure to expose the project to the network anyway" % self.host)


def is_loopback(host: str) -> bool:
    """True when `host` only reaches this machine ("" and 0.0.0.0 mean every interface: False)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def _http_limits(environ: Mapping[str, str]) -> HttpLimits:
    """The HTTP server's deadlines and connection cap, from MADACE_STATUS_HTTP_* or the defaults."""
    values = []
    for field, name, convert in HTTP_LIMIT_VARIABLES:
        limit = _or(settings.setting(None, name, environ, convert=convert), getattr(DEFAULT_LIMITS, field))
        if not 0 < limit < MAX_HTTP_LIMIT:  # also refuses nan and inf, which no socket timeout takes
            raise SettingError("%s%s must be greater than 0 and below %d" % (ENV_PREFIX, name, MAX_HTTP_LIMIT))
        values.append(limit)
    return HttpLimits(*values)


def _base_path(text: Optional[str]) -> str:
    try:
        return normalise_base_path(text)
    except ValueError as error:
        raise SettingError(str(error))


def _compression_mode(text: str) -> str:
    if text.strip().lower() not in COMPRESSION_MODES:
        raise ValueError(text)
    return text.strip().lower()


def _list(text: Optional[str]) -> Tuple[str, ...]:
    """A comma-separated variable's items, blanks dropped."""
    return tuple(item.strip() for item in (text or "").split(",") if item.strip())


def _or(given: object, default: Number) -> Number:
    """`given` (already converted to the default's type) unless it is None."""
    return default if given is None else cast(Number, given)
