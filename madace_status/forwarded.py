"""Behind a reverse proxy: what a request's `Forwarded` / `X-Forwarded-*` headers say — the scheme and host the
browser used, and the client's address — believed only when the connection comes from a `--trust-proxy` address
(README, "Behind a reverse proxy"). From anyone else those headers are ignored: a forged one changes nothing.

Pure functions and small objects, no I/O. Every header is read in one pass and cut at MAX_FORWARDED_CHARS.
"""

from __future__ import annotations

import ipaddress
import re

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time
if TYPE_CHECKING:
    from typing import Iterable, List, Optional, Protocol, Sequence, Union

    class HeaderLines(Protocol):
        """Request headers as both servers hold them: every line of a name (None or [] when there is none)."""

        def get_all(self, name: str) -> Optional[List[str]]: ...

    Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
    Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

__all__ = ["TRUST_PROXY_FLAG", "MAX_FORWARDED_CHARS", "FORWARDING_HEADERS", "PublicView", "ProxyTrust",
           "parse_networks", "normalise_base_path", "host_name"]

TRUST_PROXY_FLAG = "--trust-proxy"
MAX_FORWARDED_CHARS = 4096  # of one forwarding header: more is a peer's padding, not a proxy's
MAX_BASE_PATH_CHARS = 200
SCHEMES = ("http", "https")
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-For")
# A host as a Host header carries it: a DNS name or an IPv4 literal, or an IPv6 literal in brackets; then a port.
_HOST = re.compile(r"\A(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253})(?::[0-9]{1,5})?\Z")
_HOST_NAME = re.compile(r"\A(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d+)?\Z")
_BASE_PATH = re.compile(r"\A(?:/[A-Za-z0-9._~-]+)+\Z")


class PublicView:
    """How the client reached us: `scheme` (http or https), `host` (a Host value, maybe with a port; None when
    no header named one), `client` (its address, as text) and whether a trusted proxy said so (`proxied`)."""

    __slots__ = ("scheme", "host", "client", "proxied")

    def __init__(self, scheme: str, host: Optional[str], client: str, proxied: bool = False) -> None:
        self.scheme = scheme
        self.host = host
        self.client = client
        self.proxied = proxied

    @property
    def origin(self) -> Optional[str]:
        """The origin a browser on this view sends (`https://name`), None without a host."""
        if self.host is None:
            return None
        default_port = ":443" if self.scheme == "https" else ":80"
        host = self.host[:-len(default_port)] if self.host.endswith(default_port) else self.host
        return "%s://%s" % (self.scheme, host.lower())

    @property
    def websocket_scheme(self) -> str:
        return "wss" if self.scheme == "https" else "ws"


def host_name(host: Optional[str]) -> Optional[str]:
    """The name of a Host value (`name:3000` → `name`, `[::1]:3000` → `[::1]`); None when it is not one."""
    match = _HOST_NAME.match(host or "")
    return match.group(1) if match else None


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """The --trust-proxy values (an address, or a network such as 10.0.0.0/8) as networks; ValueError names
    the bad one."""
    networks = []
    for value in values:
        text = value.strip().strip("[]")
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError("%s takes an IP address or network such as 127.0.0.1 or 10.0.0.0/8, not '%s'"
                             % (TRUST_PROXY_FLAG, value[:100]))
    return tuple(networks)


def normalise_base_path(value: Optional[str]) -> str:
    """A --base-path value as the server uses it: "" for none, else `/a/b` (a leading slash, none at the end).
    ValueError for anything but path segments of letters, digits and `._~-`."""
    text = (value or "").strip().rstrip("/")
    if not text:
        return ""
    if not text.startswith("/"):
        text = "/" + text
    if len(text) > MAX_BASE_PATH_CHARS or not _BASE_PATH.match(text) or any(
            segment in (".", "..") for segment in text.split("/")):
        raise ValueError("--base-path must be a path such as /madace: segments of letters, digits and ._~- "
                         "(got '%s')" % (value or "")[:100])
    return text


class ProxyTrust:
    """The --trust-proxy networks, and what a request's forwarding headers mean given the peer it came from."""

    def __init__(self, networks: Iterable[Network] = ()) -> None:
        self.networks = tuple(networks)

    def trusts(self, peer: object) -> bool:
        """True when `peer` (an address as text, or a socket's peername tuple) is a trusted proxy."""
        address = _address(peer[0] if isinstance(peer, tuple) and peer else peer)
        return address is not None and any(address in network for network in self.networks)

    def view(self, peer: object, host: Optional[str], headers: HeaderLines) -> PublicView:
        """The public view of a request from `peer` whose host is `host`, given its `headers`: their `Forwarded`,
        `X-Forwarded-Proto`, `-Host` and `-For` lines are read only when `peer` is trusted. `Forwarded` wins over
        the X- headers; a value that is malformed is ignored, as if absent."""
        peer_text = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")
        direct = PublicView("http", host, peer_text)
        if not self.networks or not self.trusts(peer):
            return direct
        forwarded, forwarded_proto, forwarded_host, forwarded_for = (
            headers.get_all(name) or [] for name in FORWARDING_HEADERS)
        scheme, public_host, client = "http", host, peer_text
        element = _last_forwarded_element(forwarded)
        if element:
            proto, by_host, chain = element.get("proto"), element.get("host"), _forwarded_for_chain(forwarded)
        else:
            proto, by_host = _last_item(forwarded_proto), _last_item(forwarded_host)
            chain = [item for line in _bounded(forwarded_for) for item in line.split(",")]
        if proto is not None and proto.lower() in SCHEMES:
            scheme = proto.lower()
        if by_host is not None and _HOST.match(by_host):
            public_host = by_host
        # The rightmost address that is not a trusted proxy: the ones left of it were written by the client itself.
        for item in reversed(chain):
            address = _address(_node_address(item.strip()))
            if address is None:
                break  # "unknown", an obfuscated node or garbage: nothing further left can be believed
            client = str(address)
            if not any(address in network for network in self.networks):
                break
        return PublicView(scheme, public_host, client, proxied=True)


def _address(text: object) -> Optional[Address]:
    try:
        return ipaddress.ip_address(str(text).strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _node_address(node: str) -> str:
    """The address of a `for=` node or an X-Forwarded-For item: quotes, brackets and a port taken off."""
    node = node.strip().strip('"')
    if node.startswith("["):
        return node[1:node.find("]")] if "]" in node else node
    if node.count(":") == 1:
        return node.split(":", 1)[0]  # IPv4 with a port
    return node


def _bounded(lines: Sequence[str]) -> list[str]:
    """The header lines, cut to MAX_FORWARDED_CHARS in all."""
    kept, total = [], 0
    for line in lines:
        if total >= MAX_FORWARDED_CHARS:
            break
        kept.append(line[:MAX_FORWARDED_CHARS - total])
        total += len(kept[-1])
    return kept


def _last_item(lines: Sequence[str]) -> Optional[str]:
    """The last comma-separated item of an X-Forwarded-* header: the one the nearest proxy wrote."""
    items = [item.strip() for line in _bounded(lines) for item in line.split(",")]
    return items[-1] if items and items[-1] else None


def _elements(lines: Sequence[str]) -> list[dict[str, str]]:
    """RFC 7239 `Forwarded` elements as {parameter: value} (quoted values unquoted; a malformed pair skipped).
    Quoted commas and semicolons are not split on."""
    elements: list[dict[str, str]] = []
    for line in _bounded(lines):
        for element in re.findall(r'(?:[^,"]|"[^"]*")+', line):
            pairs: dict[str, str] = {}
            for pair in re.findall(r'(?:[^;"]|"[^"]*")+', element):
                name, equals, value = pair.strip().partition("=")
                if equals and name:
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] == '"':
                        value = value[1:-1]
                    pairs[name.strip().lower()] = value
            elements.append(pairs)
    return elements


def _last_forwarded_element(lines: Sequence[str]) -> dict[str, str]:
    elements = _elements(lines)
    return elements[-1] if elements else {}


def _forwarded_for_chain(lines: Sequence[str]) -> list[str]:
    return [element["for"] for element in _elements(lines) if "for" in element]
