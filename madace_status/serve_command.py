"""`madace-status serve`: the dashboard + API (HTTP, in threads) and the sync service (asyncio, main thread).

SIGINT/SIGTERM stop accepting, close every WebSocket with 1001 "server shutting down" and return within
2 s. A port already in use is one clear line and exit 1.
"""

import asyncio
import contextlib
import errno
import ipaddress
import logging
import signal
import socket
import sys
import threading
from urllib.parse import quote

from madace_status.logsafe import SafeFormatter
from madace_status.project.loader import ProjectPaths, ProjectUnreadable, check_root
from madace_status.security import Credentials, HostPolicy
from madace_status.choices import WATCHER_CHOICES
from madace_status.sync import HistoryStore, SyncService
from madace_status.web.app import DashboardApp
from madace_status.web.http import DashboardServer
from madace_status.web.limits import DEFAULT_LIMITS

logger = logging.getLogger("madace_status")

DEFAULT_HOST = "127.0.0.1"  # loopback unless asked: exposing the project is a decision
DEFAULT_HTTP_PORT = 3000
DEFAULT_LOG_LEVEL = "info"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
SHUTDOWN_TIMEOUT_S = 2.0  # from the signal to the exit
WS_CLOSE_TIMEOUT_S = SHUTDOWN_TIMEOUT_S - 1.0  # for peers to answer the close; 1 s is left to stop HTTP and exit
HTTP_POLL_INTERVAL_S = 0.1  # serve_forever() notices shutdown() within this
MIN_POLL_INTERVAL_S = 0.01
MIN_HEARTBEAT_S = 0.05
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ServeError(Exception):
    """A problem that ends the command with one clear line; `exit_code` says how."""

    def __init__(self, message, exit_code=EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


def is_loopback(host):
    """True when `host` only reaches this machine ("" and 0.0.0.0 mean every interface: False)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def _port_in_use(error):
    return getattr(error, "errno", None) in (errno.EADDRINUSE, errno.EACCES)


def configure_logging(level_name):
    level = getattr(logging, (level_name or DEFAULT_LOG_LEVEL).upper(), None)
    if not isinstance(level, int):
        raise ServeError("unknown log level %r (use debug, info, warning or error)" % level_name, EXIT_USAGE)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def run(args, paths):
    """Run `serve` for parsed `args` and the project `paths`; returns the exit code."""
    try:
        configure_logging(args.log_level)
        if args.demo:
            from madace_status.demo import demo_project
            with demo_project() as directory:
                return _serve(args, ProjectPaths(root=directory))
        return _serve(args, paths)
    except ServeError as error:
        print("madace-status serve: %s" % error, file=sys.stderr)
        return error.exit_code


def _check_args(args, paths):
    if args.watcher not in WATCHER_CHOICES:  # MADACE_STATUS_WATCHER is not checked by argparse
        raise ServeError("--watcher must be one of %s" % ", ".join(WATCHER_CHOICES), EXIT_USAGE)
    if args.poll_interval < MIN_POLL_INTERVAL_S:
        raise ServeError("--poll-interval must be at least %g s" % MIN_POLL_INTERVAL_S, EXIT_USAGE)
    if args.heartbeat < MIN_HEARTBEAT_S:
        raise ServeError("--heartbeat must be at least %g s" % MIN_HEARTBEAT_S, EXIT_USAGE)
    for flag, port in (("--port", args.port), ("--ws-port", args.ws_port)):
        if not 0 <= port <= 65535:
            raise ServeError("%s must be a port number from 0 to 65535" % flag, EXIT_USAGE)
    if not is_loopback(args.host) and not args.token and not args.insecure:
        raise ServeError("refusing to serve on %s without a token: set --token (or MADACE_STATUS_TOKEN), or pass "
                         "--insecure to expose the project to the network anyway" % args.host, EXIT_USAGE)
    try:
        check_root(paths.root)
    except ProjectUnreadable as error:
        raise ServeError("cannot read the project: %s" % error, 3)


def _serve(args, paths):
    _check_args(args, paths)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    for signum in STOP_SIGNALS:  # before anything is bound or announced: from here on a signal is a clean stop
        loop.add_signal_handler(signum, stop.set)
    # The demo's project is a new temporary directory each run: its history is kept in memory only.
    history = HistoryStore.for_project(paths.root, enabled=not (getattr(args, "no_history", False) or args.demo))
    service = SyncService(paths, host=args.host, ws_port=args.ws_port, poll_interval=args.poll_interval,
                          token=args.token, allowed_origins=args.allow_origin or (), heartbeat_s=args.heartbeat,
                          compression=getattr(args, "compression", "auto") != "off", watcher=args.watcher,
                          history=history)
    try:
        httpd = DashboardServer((args.host, args.port), None, getattr(args, "http_limits", DEFAULT_LIMITS))
    except OSError as error:
        _close_loop(loop)
        history.close()
        if _port_in_use(error):
            raise ServeError("HTTP port %d on %s is already in use; choose another with --port"
                             % (args.port, args.host))
        raise ServeError("cannot listen on %s:%d: %s" % (args.host, args.port, error.strerror or error))
    http_port = httpd.server_address[1]
    host_policy = HostPolicy(args.host, getattr(args, "allowed_host", None) or ())
    credentials = Credentials(args.token, http_port)
    service.http_port = http_port
    service.host_policy = host_policy
    service.credentials = credentials
    app = DashboardApp(paths, service, loop, token=args.token, http_port=http_port, public_host=args.host,
                       credentials=credentials, host_policy=host_policy, allowed_origins=args.allow_origin or (),
                       history=history)
    httpd.app = app
    http_thread = None
    try:
        if not args.no_sync:
            try:
                loop.run_until_complete(service.start())
            except OSError as error:
                if _port_in_use(error):
                    raise ServeError("WebSocket port %d on %s is already in use; choose another with --ws-port "
                                     "(or --no-sync)" % (args.ws_port, args.host))
                raise ServeError("cannot listen on %s:%d: %s" % (args.host, args.ws_port, error.strerror or error))
        http_thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": HTTP_POLL_INTERVAL_S},
                                       name="http", daemon=True)
        http_thread.start()
        _announce(args, app, http_port)
        loop.run_until_complete(_run_until_signalled(args, paths, stop))
        logger.info("shutting down")
        loop.run_until_complete(service.stop(1001, "server shutting down", WS_CLOSE_TIMEOUT_S))
        return EXIT_OK
    finally:
        if http_thread is not None:
            httpd.shutdown()  # blocks until serve_forever() returns, so only once it was started
        httpd.server_close()
        _close_loop(loop)
        history.close()  # the last samples reach the file (bounded by HISTORY_CLOSE_TIMEOUT_S)


def _close_loop(loop):
    for signum in STOP_SIGNALS:
        loop.remove_signal_handler(signum)
    with contextlib.suppress(Exception):
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
    loop.close()


def _announce(args, app, http_port):
    host = args.host if ":" not in args.host else "[%s]" % args.host
    url = "http://%s:%d/status" % (host, http_port)
    if args.token:
        url += "?token=" + quote(args.token, safe="")  # so a token with + & = / or spaces survives the URL
    print("Dashboard:  %s" % url, flush=True)
    if app.service.running:
        print("WebSocket:  %s" % app.ws_url(), flush=True)
    else:
        print("WebSocket:  not started (--no-sync; POST /api/sync {\"action\": \"start\"} starts it)", flush=True)
    if args.demo:
        print("Demo:       a sample project in %s changes every few seconds" % app.paths.root, flush=True)
    print("Press Ctrl+C to stop.", flush=True)


async def _run_until_signalled(args, paths, stop):
    loop = asyncio.get_running_loop()
    simulator_task = None
    if args.demo:
        from madace_status.demo import DemoSimulator, run_simulator
        simulator_task = loop.create_task(run_simulator(DemoSimulator(paths.root), stop_event=stop))
    try:
        await stop.wait()
    finally:
        if simulator_task is not None:
            simulator_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await simulator_task
