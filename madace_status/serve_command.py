"""`madace-status serve`: the dashboard + API (HTTP, in threads) and the sync service (asyncio, main thread).

SIGINT/SIGTERM stop accepting, close every WebSocket with 1001 "server shutting down" and return within
2 s. A port already in use is one clear line and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal
import sys
import threading
from urllib.parse import quote

from madace_status.choices import ExitCode
from madace_status.logsafe import SafeFormatter
from madace_status.project.loader import ProjectPaths, ProjectUnreadable, check_root, load_project
from madace_status.project.model import Project
from madace_status.forwarded import ProxyTrust, parse_networks
from madace_status.security import Credentials, HostPolicy
from madace_status.serve_settings import DEFAULT_LOG_LEVEL, ServeSettings
from madace_status.settings import SettingError
from madace_status.sync import HistoryStore, SyncService
from madace_status.web.app import DashboardApp
from madace_status.web.http import DashboardServer

__all__ = ["ServeError", "main", "run"]

logger = logging.getLogger("madace_status")

SHUTDOWN_TIMEOUT_S = 2.0  # from the signal to the exit
WS_CLOSE_TIMEOUT_S = SHUTDOWN_TIMEOUT_S - 1.0  # for peers to answer the close; 1 s is left to stop HTTP and exit
HTTP_POLL_INTERVAL_S = 0.1  # serve_forever() notices shutdown() within this
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PROG = "madace-status serve"


class ServeError(Exception):
    """A problem that ends the command with one clear line; `exit_code` says how."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _port_in_use(error: OSError) -> bool:
    return getattr(error, "errno", None) in (errno.EADDRINUSE, errno.EACCES)


def configure_logging(level_name: str) -> None:
    level = getattr(logging, (level_name or DEFAULT_LOG_LEVEL).upper(), None)
    if not isinstance(level, int):
        raise ServeError("unknown log level %r (use debug, info, warning or error)" % level_name, ExitCode.USAGE)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def main(args: argparse.Namespace) -> int:
    """`serve` for parsed command-line `args`: its settings resolved (README, "`madace-status serve`"), then run."""
    try:
        settings = ServeSettings.resolve(args)
    except SettingError as error:
        print("%s: %s" % (PROG, error), file=sys.stderr)
        return ExitCode.USAGE
    return run(settings)


def run(settings: ServeSettings) -> int:
    """Run `serve` with resolved `settings`; returns the exit code."""
    try:
        configure_logging(settings.log_level)
        if settings.demo:
            from madace_status.demo import demo_project
            with demo_project() as directory:
                return _serve(settings, ProjectPaths(root=directory))
        return _serve(settings, settings.paths)
    except ServeError as error:
        print("%s: %s" % (PROG, error), file=sys.stderr)
        return error.exit_code


def _check_root(paths: ProjectPaths) -> None:
    try:
        check_root(paths.root)
    except ProjectUnreadable as error:
        raise ServeError("cannot read the project: %s" % error, ExitCode.UNREADABLE)


def _serve(settings: ServeSettings, paths: ProjectPaths) -> int:
    _check_root(paths)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    for signum in STOP_SIGNALS:  # before anything is bound or announced: from here on a signal is a clean stop
        loop.add_signal_handler(signum, stop.set)
    # The demo's project is a new temporary directory each run: its history is kept in memory only.
    history = HistoryStore.for_project(paths.root, enabled=not (settings.no_history or settings.demo))
    service = SyncService(paths, host=settings.host, ws_port=settings.ws_port, poll_interval=settings.poll_interval,
                          token=settings.token, allowed_origins=settings.allow_origin or (),
                          heartbeat_s=settings.heartbeat, compression=settings.compression != "off",
                          watcher=settings.watcher, history=history, one_port=settings.one_port)
    try:
        httpd = DashboardServer((settings.host, settings.port), None, settings.http_limits)
    except OSError as error:
        _close_loop(loop)
        history.close()
        if _port_in_use(error):
            raise ServeError("HTTP port %d on %s is already in use; choose another with --port"
                             % (settings.port, settings.host))
        raise ServeError("cannot listen on %s:%d: %s" % (settings.host, settings.port, error.strerror or error))
    http_port = httpd.server_address[1]
    host_policy = HostPolicy(settings.host, settings.allowed_host)
    proxy_trust = ProxyTrust(parse_networks(settings.trust_proxy))
    credentials = Credentials(settings.token, http_port, replicated=bool(settings.trust_proxy),
                              base_path=settings.base_path)
    service.http_port = http_port
    service.host_policy = host_policy
    service.credentials = credentials
    service.proxy_trust = proxy_trust
    service.base_path = settings.base_path
    app = DashboardApp(paths, service, loop, token=settings.token, http_port=http_port, public_host=settings.host,
                       credentials=credentials, host_policy=host_policy, allowed_origins=settings.allow_origin or (),
                       history=history, base_path=settings.base_path, proxy_trust=proxy_trust)
    httpd.app = app
    http_thread = None
    try:
        if not settings.no_sync:
            try:
                loop.run_until_complete(service.start())
            except OSError as error:
                if _port_in_use(error):
                    raise ServeError("WebSocket port %d on %s is already in use; choose another with --ws-port "
                                     "(or --no-sync)" % (settings.ws_port, settings.host))
                raise ServeError("cannot listen on %s:%d: %s"
                                 % (settings.host, settings.ws_port, error.strerror or error))
        http_thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": HTTP_POLL_INTERVAL_S},
                                       name="http", daemon=True)
        http_thread.start()
        _announce(settings, app, http_port)
        _warn_when_nothing_found(service.project if service.project is not None else load_project(paths))
        loop.run_until_complete(_run_until_signalled(settings, paths, stop))
        logger.info("shutting down")
        loop.run_until_complete(service.stop(1001, "server shutting down", WS_CLOSE_TIMEOUT_S))
        return ExitCode.OK
    finally:
        if http_thread is not None:
            httpd.shutdown()  # blocks until serve_forever() returns, so only once it was started
        httpd.server_close()
        _close_loop(loop)
        history.close()  # the last samples reach the file (bounded by HISTORY_CLOSE_TIMEOUT_S)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    for signum in STOP_SIGNALS:
        loop.remove_signal_handler(signum)
    with contextlib.suppress(Exception):
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
    loop.close()


def _announce(settings: ServeSettings, app: DashboardApp, http_port: int) -> None:
    host = settings.host if ":" not in settings.host else "[%s]" % settings.host
    url = "http://%s:%d%s/status" % (host, http_port, settings.base_path)
    if settings.token:
        url += "?token=" + quote(settings.token, safe="")  # so a token with + & = / or spaces survives the URL
    print("Dashboard:  %s" % url, flush=True)
    if app.service.running:
        print("WebSocket:  %s" % app.ws_url(), flush=True)
    else:
        print("WebSocket:  not started (--no-sync; POST /api/sync {\"action\": \"start\"} starts it)", flush=True)
    if settings.demo:
        print("Demo:       a sample project in %s changes every few seconds" % app.paths.root, flush=True)
    print("Press Ctrl+C to stop.", flush=True)


def _warn_when_nothing_found(project: Project) -> None:
    """A root without a single MADACE source is most likely the wrong --root: say so in the log, not only in the
    API and on the page (README, "`madace-status serve`")."""
    if not (project.workflows or project.stories or project.epics):
        logger.warning("nothing to show: no MADACE sources under %s (%s); check --root", project.root,
                       "; ".join(project.warnings))


async def _run_until_signalled(settings: ServeSettings, paths: ProjectPaths, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    simulator_task = None
    if settings.demo:
        from madace_status.demo import DemoSimulator, run_simulator
        simulator_task = loop.create_task(run_simulator(DemoSimulator(paths.root), stop_event=stop))
    try:
        await stop.wait()
    finally:
        if simulator_task is not None:
            simulator_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await simulator_task
