"""The command line: argparse for `status` and `serve`, nothing else (README, "`madace-status status`" and
"`madace-status serve`"). Each command resolves its own settings and does its work in its own module, loaded only
when it runs."""

from __future__ import annotations

import argparse
import os
import sys

from madace_status import __version__
from madace_status.choices import COMPRESSION_MODES, OUTPUT_FORMATS, WATCHER_CHOICES, ExitCode

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not loaded at run time: `status` starts in ~50 ms and every import counts
    from typing import Any, List, Optional

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="madace-status",
        description="Live status checker for MADACE projects: terminal status, dashboard, JSON API and "
        "WebSocket sync server.",
    )
    parser.add_argument("-V", "--version", action="version", version="madace-status " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_status_parser(commands)
    _add_serve_parser(commands)
    return parser


def _add_status_parser(commands: Any) -> None:
    status = commands.add_parser(
        "status", help="print the status of the project or of one entity",
        description="Print the status of the project (summary) or of one story, epic or workflow.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="ENTITY: summary (default; also overview, all, status, state, state-machine), stories, epics,\n"
        "workflows, story:ID, epic:ID, workflow:NAME, an epic id (EPIC-V3-002), a workflow name\n"
        "(pm-planning) or a story id (STORY-V3-020, US-001, V3-015); history: the flow history per day.\n\n"
        "Every option can also be set by an environment variable (the option wins):\n"
        "  MADACE_STATUS_ROOT, MADACE_STATUS_STATE_DIR (list separated by %r), MADACE_STATUS_STATUS_FILE,\n"
        "  MADACE_STATUS_EPICS_DIR, MADACE_STATUS_FORMAT, MADACE_STATUS_ASCII (1/true/yes/on);\n"
        "  with --watch: MADACE_STATUS_INTERVAL, MADACE_STATUS_SERVER, MADACE_STATUS_TOKEN, MADACE_STATUS_WATCHER,\n"
        "  MADACE_STATUS_CAFILE (or SSL_CERT_FILE).\n\n"
        "Exit codes: 0 found, 1 not found, 2 usage error or unrecognised ENTITY, 3 project unreadable."
        % os.pathsep,
    )
    status.add_argument("entity", nargs="?", default="", metavar="ENTITY",
                        help="summary (default), a story id, an epic id, a workflow name, or stories/epics/workflows")
    status.add_argument("-f", "--format", choices=OUTPUT_FORMATS, default=None,
                        help="output format (default: table)")
    _add_project_options(status)
    status.add_argument("--ascii", action="store_true", default=False,
                        help="draw tables with plain ASCII (+-|) instead of box-drawing characters")
    status.add_argument("-w", "--watch", action="store_true", default=False,
                        help="live view: redraw on every change pushed by the sync server (--server), or "
                        "poll the files every --interval while it is unreachable; q or Ctrl+C quits")
    status.add_argument("-i", "--interval", type=float, metavar="SECONDS", default=None,
                        help="polling interval of --watch when the server cannot be reached (default: 2)")
    status.add_argument("--server", metavar="URL", default=None,
                        help="sync server for --watch (default: ws://127.0.0.1:3001)")
    status.add_argument("--token", metavar="T", default=None, help="token for the sync server")
    status.add_argument("--cafile", metavar="FILE", default=None,
                        help="PEM certificates a wss:// or https:// --server is checked against (default: the "
                        "system's, or SSL_CERT_FILE)")
    status.add_argument("--exit-status", action="store_true", default=None,
                        help="with --watch: exit when the workflow finishes, 0 if it completed, 1 if it failed (a "
                        "story: when DONE; the summary: when every workflow finished, 1 if one failed)")
    status.add_argument("--until", metavar="STATE", default=None,
                        help="with --watch: exit 0 when the entity reaches STATE (a workflow status, a story state, "
                        "or finished/completed for the whole project); with history: the last day shown")
    status.add_argument("--since", metavar="DAY", default=None,
                        help="with history: the first day shown (YYYY-MM-DD, or a UTC time YYYY-MM-DDTHH:MM:SSZ)")
    status.add_argument("--timeout", type=float, metavar="SECONDS", default=None,
                        help="with --exit-status or --until: give up after SECONDS, exit 124")
    status.add_argument("--watcher", choices=WATCHER_CHOICES, default=None,
                        help="change detection of --watch while the server cannot be reached: file-system events "
                        "(--interval is then only a safety rescan) or poll every --interval (default: auto, as "
                        "serve --watcher)")

    def run(args: argparse.Namespace) -> int:
        from madace_status import status_command   # loaded only when `status` runs
        return status_command.run(args)

    status.set_defaults(run=run)


def _add_project_options(parser: argparse.ArgumentParser) -> None:
    """--root, --state-dir, --status-file, --epics-dir: where the project's sources are (README, "What it reads")."""
    parser.add_argument("--root", metavar="DIR", default=None,
                        help="project root; the sources are found under it (default: the current directory)")
    parser.add_argument("--state-dir", metavar="DIR", action="append", dest="state_dirs", default=None,
                        help="workflow state directory, relative to the root; repeatable (default: "
                        "madace-data/workflow-states and .madace/workflow-states)")
    parser.add_argument("--status-file", metavar="FILE", default=None,
                        help="story status file, relative to the root (default: docs/workflow-status.md, "
                        "else docs/mam-workflow-status.md)")
    parser.add_argument("--epics-dir", metavar="DIR", default=None,
                        help="epics directory, relative to the root (default: docs/v3-planning/epics)")


def _add_serve_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="serve the dashboard, the JSON API and the WebSocket sync server",
        description="Serve the dashboard and JSON API over HTTP, and push every change of the project to "
        "WebSocket clients in real time.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every option can also be set by an environment variable (the option wins):\n"
        "  MADACE_STATUS_HOST, MADACE_STATUS_PORT, MADACE_STATUS_WS_PORT, MADACE_STATUS_ROOT,\n"
        "  MADACE_STATUS_STATE_DIR (list separated by %r), MADACE_STATUS_STATUS_FILE, MADACE_STATUS_EPICS_DIR,\n"
        "  MADACE_STATUS_POLL_INTERVAL, MADACE_STATUS_WATCHER, MADACE_STATUS_HEARTBEAT, MADACE_STATUS_TOKEN,\n"
        "  MADACE_STATUS_ALLOW_ORIGIN and MADACE_STATUS_ALLOWED_HOSTS (comma-separated), MADACE_STATUS_NO_SYNC=1,\n"
        "  MADACE_STATUS_ONE_PORT=1, MADACE_STATUS_BASE_PATH, MADACE_STATUS_TRUST_PROXY (comma-separated),\n"
        "  MADACE_STATUS_HISTORY=off (or MADACE_STATUS_NO_HISTORY=1), MADACE_STATUS_DEMO=1, MADACE_STATUS_INSECURE=1,\n"
        "  MADACE_STATUS_COMPRESSION, MADACE_STATUS_LOG_LEVEL.\n"
        "The HTTP limits have variables only: MADACE_STATUS_HTTP_IDLE_TIMEOUT, MADACE_STATUS_HTTP_HEAD_TIMEOUT,\n"
        "MADACE_STATUS_HTTP_BODY_TIMEOUT (seconds) and MADACE_STATUS_HTTP_MAX_CONNECTIONS.\n\n"
        "Exit codes: 0 stopped by SIGINT/SIGTERM, 1 a port is in use or cannot be bound, 2 usage error,\n"
        "3 project unreadable." % os.pathsep,
    )
    serve.add_argument("--host", default=None,
                       help="address to bind, for HTTP and WebSocket (default: 127.0.0.1; anything but loopback "
                       "needs --token or --insecure)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port of the dashboard and API (default: 3000)")
    serve.add_argument("--ws-port", type=int, default=None, help="WebSocket port of the sync service (default: 3001)")
    _add_project_options(serve)
    serve.add_argument("--poll-interval", type=float, metavar="S", default=None,
                       help="seconds between polls of the project files (default: 0.1)")
    serve.add_argument("--watcher", choices=WATCHER_CHOICES, default=None,
                       help="change detection: kernel events (inotify on Linux, kqueue on macOS and the BSDs) with "
                       "a slow safety rescan, or polling every --poll-interval (default: auto: the kernel's events "
                       "where available, else poll)")
    serve.add_argument("--heartbeat", type=float, metavar="S", default=None,
                       help="seconds between protocol pings; a peer silent for two is closed (default: 20)")
    serve.add_argument("--token", metavar="T", default=None,
                       help="require this token from WebSocket clients and API callers")
    serve.add_argument("--allow-origin", metavar="O", action="append", default=None,
                       help="another browser origin allowed to connect, e.g. http://dash.example:8080; repeatable")
    serve.add_argument("--allowed-host", metavar="NAME", action="append", default=None,
                       help="another host name the server answers to (Host header), e.g. dev.example; repeatable; "
                       "* turns the check off (default: localhost, IP addresses and --host)")
    serve.add_argument("--one-port", action="store_true", default=False,
                       help="no WebSocket port of its own: the WebSocket is at /ws on the HTTP port (one origin, "
                       "one proxy rule); --ws-port is then unused")
    serve.add_argument("--base-path", metavar="PATH", default=None,
                       help="serve every page, file, API route and the WebSocket under this path, e.g. /madace "
                       "(for a reverse proxy that passes the path on unchanged)")
    serve.add_argument("--trust-proxy", metavar="ADDR", action="append", default=None,
                       help="a reverse proxy's address or network (e.g. 127.0.0.1 or 10.0.0.0/8) whose "
                       "X-Forwarded-Proto/-Host/-For or Forwarded headers are believed; repeatable (default: none: "
                       "those headers are ignored)")
    serve.add_argument("--no-sync", action="store_true", default=False,
                       help="serve only HTTP; POST /api/sync starts the sync service later")
    serve.add_argument("--no-history", action="store_true", default=False,
                       help="keep the flow history (GET /api/history) in memory only: no file in the user's cache "
                       "directory (also MADACE_STATUS_HISTORY=off)")
    serve.add_argument("--demo", action="store_true", default=False,
                       help="serve a temporary sample project that changes every few seconds (removed on exit)")
    serve.add_argument("--insecure", action="store_true", default=False,
                       help="allow a non-loopback --host without a token")
    serve.add_argument("--compression", choices=COMPRESSION_MODES, default=None,
                       help="auto (default): permessage-deflate for WebSocket clients that offer it; off: never")
    serve.add_argument("--log-level", metavar="L", default=None,
                       help="debug, info (default), warning or error; logs go to stderr")

    def run(args: argparse.Namespace) -> int:
        from madace_status import serve_command   # loaded only when `serve` runs
        return serve_command.main(args)

    serve.set_defaults(run=run)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return ExitCode.OK
    try:
        code: int = args.run(args)
        return code
    except KeyboardInterrupt:  # Ctrl+C before a command installed its own handling (e.g. during imports)
        print(file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
