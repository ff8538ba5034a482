"""The command line: argparse for `status` and `serve`; each command's work lives in its own module."""

import argparse
import os
import sys

from madace_status import __version__

EXIT_OK = 0
EXIT_USAGE = 2


def build_parser():
    parser = argparse.ArgumentParser(
        prog="madace-status",
        description="Live status checker for MADACE projects: terminal status, dashboard, JSON API and "
        "WebSocket sync server.",
    )
    parser.add_argument("--version", action="version", version="madace-status " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_status_parser(commands)
    _add_serve_parser(commands)
    return parser


def _add_status_parser(commands):
    status = commands.add_parser(
        "status", help="print the status of the project or of one entity",
        description="Print the status of the project (summary) or of one story, epic or workflow.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="ENTITY: summary (default; also overview, all, status, state, state-machine), stories, epics,\n"
        "workflows, story:ID, epic:ID, workflow:NAME, an epic id (EPIC-V3-002), a workflow name\n"
        "(pm-planning) or a story id (STORY-V3-020, US-001, V3-015).\n\n"
        "Every option can also be set by an environment variable (the option wins):\n"
        "  MADACE_STATUS_ROOT, MADACE_STATUS_STATE_DIR (list separated by %r), MADACE_STATUS_STATUS_FILE,\n"
        "  MADACE_STATUS_EPICS_DIR, MADACE_STATUS_FORMAT, MADACE_STATUS_ASCII (1/true/yes/on).\n\n"
        "Exit codes: 0 found, 1 not found, 2 usage error or unrecognised ENTITY, 3 project unreadable."
        % os.pathsep,
    )
    status.add_argument("entity", nargs="?", default="", metavar="ENTITY",
                        help="summary (default), a story id, an epic id, a workflow name, or stories/epics/workflows")
    status.add_argument("-f", "--format", choices=("table", "json", "markdown"), default=None,
                        help="output format (default: table)")
    status.add_argument("--root", metavar="DIR", default=None,
                        help="project root; the sources are found under it (default: the current directory)")
    status.add_argument("--state-dir", metavar="DIR", action="append", dest="state_dirs", default=None,
                        help="workflow state directory, relative to the root; repeatable (default: "
                        "madace-data/workflow-states and .madace/workflow-states)")
    status.add_argument("--status-file", metavar="FILE", default=None,
                        help="story status file, relative to the root (default: docs/workflow-status.md, "
                        "else docs/mam-workflow-status.md)")
    status.add_argument("--epics-dir", metavar="DIR", default=None,
                        help="epics directory, relative to the root (default: docs/v3-planning/epics)")
    status.add_argument("--ascii", action="store_true", default=False,
                        help="draw tables with plain ASCII (+-|) instead of box-drawing characters")
    status.add_argument("-w", "--watch", action="store_true", default=False,
                        help="keep watching and redraw on every change (not available yet)")
    status.add_argument("-i", "--interval", type=float, metavar="SECONDS", default=None,
                        help="polling interval of --watch when the server cannot be reached (default: 2)")
    status.add_argument("--server", metavar="URL", default=None,
                        help="sync server for --watch (default: ws://127.0.0.1:3001)")
    status.add_argument("--token", metavar="T", default=None, help="token for the sync server")

    def run(args):
        from madace_status import status_command   # loaded only when `status` runs
        return status_command.run(args)

    status.set_defaults(run=run)


def _add_serve_parser(commands):
    serve = commands.add_parser(
        "serve", help="serve the dashboard, the JSON API and the WebSocket sync server",
        description="Serve the dashboard, the JSON API and the WebSocket sync server.",
    )
    serve.set_defaults(run=_not_yet("serve"))


def _not_yet(name):
    def run(_args):
        print("madace-status: the %s command is not available yet" % name, file=sys.stderr)
        return EXIT_USAGE
    return run


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
