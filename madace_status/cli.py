"""The command line: argparse for `status` and `serve`; each command's work lives in its own module."""

import argparse
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
    )
    status.add_argument("entity", nargs="?", default="", metavar="ENTITY",
                        help="summary (default), a story id, an epic id, a workflow name, or stories/epics/workflows")
    status.set_defaults(run=_not_yet("status"))


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
