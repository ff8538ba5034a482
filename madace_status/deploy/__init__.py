"""The shipped deployment files — nginx (one server, replicas), Caddy, systemd (one service, a replica template) —
and `python3 -m madace_status.deploy NAME [KEY=VALUE]...`, which prints one with its @KEY@ placeholders filled in
(README, "Behind a reverse proxy"). The files are package data, read through importlib.resources (a zip works)."""

from __future__ import annotations

import importlib.resources
import os
import re
import sys

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional

__all__ = ["CONFIGS", "defaults", "main", "placeholders", "render", "template"]

# What `NAME` prints: the file, and what it is for.
CONFIGS = {
    "nginx": ("nginx.conf", "nginx server block: TLS, a path prefix, WebSocket and event streams passed through"),
    "nginx-replicas": ("nginx-replicas.conf", "the same in front of three replicas, with failover"),
    "caddy": ("Caddyfile", "Caddy site: TLS, a path prefix (WebSocket and event streams pass by themselves)"),
    "systemd": ("madace-status.service", "systemd service, hardened (DynamicUser, ProtectSystem=strict, ...)"),
    "systemd-replica": ("madace-status@.service", "systemd template: one replica per port (madace-status@3000)"),
}
PLACEHOLDER = re.compile(r"@([A-Z0-9_]+)@")
# A value goes into a configuration file as one word: nothing that ends or opens a directive.
VALUE = re.compile(r"\A[^\s;{}\"'`$\\#]{1,300}\Z")
USAGE = "usage: python3 -m madace_status.deploy NAME [KEY=VALUE]...   (NAME: %s)" % ", ".join(CONFIGS)


def defaults() -> Dict[str, str]:
    """The placeholders' values when none is given: an example host, this Python, this copy of the package."""
    return {
        "SERVER_NAME": "status.example.com", "LISTEN": "443", "BASE_PATH": "/madace", "UPSTREAM": "127.0.0.1:3000",
        "REPLICA_1": "127.0.0.1:3000", "REPLICA_2": "127.0.0.1:3010", "REPLICA_3": "127.0.0.1:3020",
        "CERT": "/etc/ssl/certs/status.example.com.pem", "KEY": "/etc/ssl/private/status.example.com.key",
        "PROJECT": "/srv/project", "PORT": "3000", "PYTHON": sys.executable or "/usr/bin/python3",
        "PACKAGE_PARENT": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    }


def template(name: str) -> str:
    """The text of configuration `name` (a key of CONFIGS), placeholders and all; KeyError for another name."""
    file_name = CONFIGS[name][0]
    return (importlib.resources.files(__package__) / file_name).read_text(encoding="utf-8")


def placeholders(name: str) -> List[str]:
    """The @KEY@ names configuration `name` uses, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template(name))))


def render(name: str, values: Optional[Mapping[str, str]] = None) -> str:
    """Configuration `name` with every placeholder filled: `values` first, then `defaults()`. ValueError names a
    value that cannot go into a configuration file, or a key the file does not use."""
    given = dict(values or {})
    unknown = sorted(set(given) - set(placeholders(name)))
    if unknown:
        raise ValueError("%s takes %s; not %s" % (name, ", ".join(placeholders(name)), ", ".join(unknown)))
    for key, value in given.items():
        if not VALUE.match(value):
            raise ValueError("%s must be one word without spaces, quotes or any of ;{}$#\\ (got %r)"
                             % (key, value[:80]))
    filled = dict(defaults(), **given)
    return PLACEHOLDER.sub(lambda match: filled[match.group(1)], template(name))


def main(argv: Optional[List[str]] = None) -> int:
    """Print a configuration; exit 2 with one line for a usage error."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("madace_status.deploy: name a configuration; %s" % USAGE, file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help"):
        print(USAGE)
        for key, (file_name, what) in CONFIGS.items():
            print("  %-16s %-24s %s" % (key, file_name, what))
        print("Placeholders not given take these values:")
        for key, value in defaults().items():
            print("  %s=%s" % (key, value))
        return 0
    name, pairs = args[0], args[1:]
    if name not in CONFIGS:
        print("madace_status.deploy: no configuration %r; %s" % (name[:80], USAGE), file=sys.stderr)
        return 2
    values = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals:
            print("madace_status.deploy: %r is not KEY=VALUE" % pair[:80], file=sys.stderr)
            return 2
        values[key] = value
    try:
        sys.stdout.write(render(name, values))
    except ValueError as error:
        print("madace_status.deploy: %s" % error, file=sys.stderr)
        return 2
    return 0
