"""The request checks both servers share (pure functions and small objects, no I/O).

- `HostPolicy`: the DNS-rebinding defence. A page on `evil.example` whose DNS is re-pointed at 127.0.0.1
  reaches this server with `Host: evil.example`; only names this server is known by are answered.
- `Credentials`: the `--token` secret, the dashboard's cookie (a per-port name holding an HMAC of the token
  under a per-run secret, never the token itself) and the anti-CSRF token the pages hold (as Jupyter's
  `_xsrf`): a cookie, which a browser attaches on its own, never authorises a write by itself.
- `write_refusal`: the cross-site checks of a state-changing request (`Origin`, `Sec-Fetch-Site`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from urllib.parse import unquote

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time
if TYPE_CHECKING:
    from typing import Container, Iterable, Sequence

__all__ = ["ALLOWED_HOSTS_FLAG", "ANY_HOST", "LOOPBACK_NAMES", "COOKIE_PREFIX", "CSRF_HEADER", "BadHost",
           "request_host", "HostPolicy", "Credentials", "token_matches", "cookie_from_header", "own_origins",
           "write_refusal"]

ALLOWED_HOSTS_FLAG = "--allowed-host"
ANY_HOST = "*"  # as webpack-dev-server's allowedHosts: 'all'
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
MAX_HOST_HEADER_CHARS = 300  # a DNS name is at most 253 characters, plus a port
COOKIE_PREFIX = "madace_token_"  # + the HTTP port: a dashboard on another port of the host has its own cookie
CSRF_HEADER = "X-Madace-CSRF"
SECRET_BYTES = 32
CROSS_SITE_FETCHES = ("cross-site", "same-site")  # Sec-Fetch-Site values of a request another site started
MAX_QUOTED_CHARS = 100  # of a Host or Origin value quoted in a refusal


def _split_host_header(value: str) -> tuple[str, str] | None:
    """(host, port text) of a Host header value such as `name:3000`, `[::1]:3000` or `10.0.0.2`; None if malformed."""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[:end + 1], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        return host, rest[1:]
    host, _, port = value.partition(":")
    return host, port


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except ValueError:
        return False
    return ":" not in host or host.startswith("[")  # an IPv6 address is written in brackets in a Host header


class BadHost(ValueError):
    """A request whose host cannot be told: more than one Host header (RFC 9112 §3.2: 400)."""


def request_host(target: str, host_headers: Sequence[str]) -> str | None:
    """The host a request is for (None when it names none): the authority of an absolute-form target
    (`GET http://name:port/path`: RFC 9112 §3.2.2 says a server uses it and ignores Host), else the one Host
    header. Raises BadHost for two or more Host headers."""
    scheme, separator, rest = target.partition("://")
    if separator and scheme.isascii() and scheme.isalpha():
        authority = rest.split("/", 1)[0].split("?", 1)[0]
        return authority.rpartition("@")[2]  # userinfo@ is no part of the host
    if len(host_headers) > 1:
        raise BadHost("only one Host header is allowed")
    return host_headers[0] if host_headers else None


class HostPolicy:
    """Which `Host` header values are answered: the loopback names, any IP literal, the bind host and the names
    given with --allowed-host (`*` turns the check off). Any port."""

    def __init__(self, bind_host: str = "127.0.0.1", allowed_hosts: Iterable[str] = ()) -> None:
        allowed = [(_split_host_header(name.strip().lower()) or ("",))[0].rstrip(".") for name in allowed_hosts]
        self.disabled = ANY_HOST in allowed
        bind = bind_host.lower()
        if ":" in bind and not bind.startswith("["):
            bind = "[%s]" % bind
        self.names = set(LOOPBACK_NAMES) | {bind} | set(name for name in allowed if name)

    def refusal(self, host_header: str | None, http_11: bool = True) -> str | None:
        """None when `host_header` (the Host value, or None when absent) is allowed; else the one-line reason."""
        if self.disabled:
            return None
        if host_header is None:
            if not http_11:
                return None  # an HTTP/1.0 client (no browser) may leave it out
            return "a Host header is required (a name given with %s is accepted)" % ALLOWED_HOSTS_FLAG
        value = host_header.strip().lower()
        parts = _split_host_header(value) if len(value) <= MAX_HOST_HEADER_CHARS else None
        if parts is not None and (not parts[1] or (parts[1].isascii() and parts[1].isdigit() and len(parts[1]) <= 5)):
            host = parts[0].rstrip(".") if not parts[0].startswith("[") else parts[0]
            if host in self.names or _is_ip_literal(host):
                return None
        return ("host '%s' is not allowed: add it with %s NAME (or MADACE_STATUS_ALLOWED_HOSTS) if this server is "
                "meant to answer to it" % (host_header[:MAX_QUOTED_CHARS], ALLOWED_HOSTS_FLAG))


class Credentials:
    """The --token secret (None: no token) and what the dashboard derives from it for one run of `serve`."""

    def __init__(self, token: str | None, http_port: int, secret: bytes | None = None,
                 replicated: bool = False, base_path: str = "") -> None:
        self.token = token or None
        self.cookie_path = base_path + "/"
        if replicated:
            # Behind a trusted proxy every replica answers one origin: the cookie is named for the base path, not
            # a port, and keyed by the token, so another replica (or a restart) takes the page's cookie and
            # anti-CSRF token too.
            self.cookie_name = COOKIE_PREFIX + (base_path.strip("/").replace("/", "_") or "proxied")
            secret = secret or hashlib.sha256(b"madace-status shared key\0" + (self.token or "").encode()).digest()
        else:
            self.cookie_name = "%s%d" % (COOKIE_PREFIX, http_port)
        self._secret = secret or os.urandom(SECRET_BYTES)  # per run: a cookie from an earlier run is void

    def _mac(self, purpose: str) -> str:
        message = purpose.encode("ascii") + b"\0" + (self.token or "").encode("utf-8")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def token_ok(self, offered: str | None) -> bool:
        """True when there is no token, or `offered` is it (compared in constant time)."""
        return self.token is None or token_matches(self.token, offered)

    def cookie_value(self) -> str:
        return self._mac("cookie")

    def set_cookie_header(self) -> str:
        return "%s=%s; Path=%s; HttpOnly; SameSite=Strict" % (self.cookie_name, self.cookie_value(), self.cookie_path)

    def cookie_ok(self, cookie_header: str | None) -> bool:
        """True when the dashboard's cookie for this port, from this run, is in `cookie_header`."""
        return self.token is not None and token_matches(self.cookie_value(),
                                                        cookie_from_header(cookie_header, self.cookie_name))

    def csrf_token(self) -> str:
        """The anti-CSRF token a page holds and sends back as the X-Madace-CSRF header of its writes."""
        return self._mac("csrf")

    def csrf_ok(self, offered: str | None) -> bool:
        return token_matches(self.csrf_token(), offered)


def token_matches(expected: str, offered: str | None) -> bool:
    """True when `offered` is `expected` (compared in constant time; None never matches)."""
    return offered is not None and hmac.compare_digest(expected.encode("utf-8"), offered.encode("utf-8", "replace"))


def cookie_from_header(cookie_header: str | None, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header (percent-decoded), or None."""
    for part in (cookie_header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return unquote(value)
    return None


def own_origins(host_policy: HostPolicy, http_port: int) -> set[str]:
    """The dashboard's own origins: http://NAME:PORT for every name the Host check accepts by name (the loopback
    names, the --host value and the --allowed-host names)."""
    return {"http://%s:%d" % (name, http_port) for name in host_policy.names}


def write_refusal(origin: str | None, fetch_site: str | None, allowed_origins: Container[str],
                  what: str = "write", verb: str = "write") -> str | None:
    """Why a state-changing request — or one that holds a server resource, such as an event stream — must be
    refused as cross-site (None: it may go on to the token check).

    A request with no Origin and no Sec-Fetch-Site (curl, a script) is not a browser's and goes on."""
    site = fetch_site.strip().lower() if fetch_site is not None else None
    if site is not None and site in CROSS_SITE_FETCHES:
        return "a %s started by another site (Sec-Fetch-Site: %s) is refused" % (what, site)  # one of two values
    if origin is not None and origin not in allowed_origins:
        return ("a %s from origin '%s' is refused: only the dashboard's own origin or an --allow-origin value may "
                "%s" % (what, origin[:MAX_QUOTED_CHARS], verb))
    return None
