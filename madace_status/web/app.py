"""What the HTTP handlers ask of the running server: the project, the event log, the sync service.

The HTTP server runs in its own threads; the sync service lives on the asyncio loop. Reads take the latest
immutable model by reference; start/stop/restart are handed to the loop and waited for (README, "HTTP API").
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from typing import Any, Callable, Container, Coroutine, Dict, Iterable, List, Optional, Tuple

from madace_status.forwarded import ProxyTrust, PublicView, host_name
from madace_status.project.loader import ProjectPaths, ProjectUnreadable, load_project
from madace_status.project.model import Project
from madace_status.project.render.envelope import utc_timestamp
from madace_status.security import Credentials, HostPolicy, own_origins
from madace_status.sync import MAX_STREAMS, WEBSOCKET_PATH, HistorySample, HistoryStore, SyncService

SYNC_ACTION_TIMEOUT_S = 10.0
SYNC_STOPPED_MESSAGE = "the sync service is stopped; POST /api/sync {\"action\": \"start\"} starts it"


class SyncActionError(Exception):
    """A start/stop/restart that could not be done; the message says why."""


class DashboardApp:
    """The shared state behind the routes: built by the serve command."""

    def __init__(self, paths: ProjectPaths, service: SyncService, loop: asyncio.AbstractEventLoop,
                 token: Optional[str] = None, http_port: int = 3000, public_host: str = "127.0.0.1",
                 credentials: Optional[Credentials] = None, host_policy: Optional[HostPolicy] = None,
                 allowed_origins: Iterable[str] = (), history: Optional[HistoryStore] = None, base_path: str = "",
                 proxy_trust: Optional[ProxyTrust] = None) -> None:
        self.paths = paths
        self.base_path = base_path  # --base-path: "" or "/madace", every route under it
        self.proxy_trust = proxy_trust or ProxyTrust()  # --trust-proxy: whose forwarding headers are believed
        self.history = history  # the flow history (sync/history/store.py); it outlives a stopped sync service
        self.service = service
        self.loop = loop
        self.token = token
        self.http_port = http_port
        self.public_host = public_host
        self.credentials = credentials or Credentials(token, http_port)
        self.host_policy = host_policy or HostPolicy(public_host)
        # Origins whose writes (POST /api/sync) are not refused as cross-site: the dashboard's and --allow-origin's.
        self.write_origins = own_origins(self.host_policy, http_port) | set(allowed_origins)
        self.started_at = time.time()

    # -- the project ------------------------------------------------------------------------------------------

    def project(self) -> Project:
        """The latest model: the sync service's when it runs, else read from the files now."""
        if self.service.running and self.service.project is not None:
            return self.service.project
        return load_project(self.paths)

    # -- events and sync --------------------------------------------------------------------------------------

    def recent_events(self, limit: int, brief: bool = False) -> List[Dict[str, Any]]:
        """The event log, newest first: the service's hub keeps it, stopped or not, and hands it on at a restart."""
        hub = self.service.hub
        return hub.recent_events(limit, brief) if hub is not None else []

    def history_samples(self, limit: int) -> List[HistorySample]:
        return self.history.samples(limit) if self.history is not None else []

    def stream_refusal(self) -> Optional[Tuple[str, str]]:
        """Why an event stream cannot be opened now, as (error code, message), or None."""
        hub = self.service.hub
        if not self.service.running or hub is None:
            return "SYNC_STOPPED", SYNC_STOPPED_MESSAGE
        if len(hub.streams.streams) >= MAX_STREAMS:
            return "SERVER_BUSY", "too many event streams (limit %d); try again" % MAX_STREAMS
        return None

    def adopt_event_stream(self, sock: socket.socket, topics: Any, workflows: Any,
                           last_event_id: Optional[str]) -> None:
        """Hand the connection (its response head sent) to the sync service's loop, which serves the stream from
        now on (README, "Server-Sent Events")."""
        hub = self.service.hub
        assert hub is not None  # checked by stream_refusal() just before
        self._hand_over(sock, lambda duplicate: hub.streams.adopt(duplicate, secrets.token_hex(4), topics, workflows,
                                                                  last_event_id))

    def adopt_websocket(self, sock: socket.socket, received: bytes) -> None:
        """Hand an upgrade request read on the HTTP port (GET /ws) to the sync service's WebSocket server, which
        checks and serves it as one made to its own port (README, "The WebSocket protocol")."""
        self._hand_over(sock, lambda duplicate: self.service.adopt_websocket(duplicate, received))

    def _hand_over(self, sock: socket.socket, serve: Callable[[socket.socket], Coroutine[Any, Any, None]]) -> None:
        """Give a connection an HTTP handler thread read to the event loop, which serves it from now on: a duplicate
        of the socket goes (this one is closed by the caller, without a shutdown), and no thread stays with it."""
        duplicate = sock.dup()
        future = asyncio.run_coroutine_threadsafe(serve(duplicate), self.loop)
        try:
            future.result(SYNC_ACTION_TIMEOUT_S)
        except Exception:
            duplicate.close()
            raise

    def ws_url(self, view: Optional[PublicView] = None) -> str:
        """The WebSocket URL as a browser that reached us as `view` says should use: through a trusted proxy, the
        public origin's (`wss://` after https) under the base path; else this host's WebSocket port, or /ws under
        the base path on the HTTP port with --one-port."""
        if view is not None and view.proxied and view.host is not None:
            return "%s://%s%s%s" % (view.websocket_scheme, view.host, self.base_path, WEBSOCKET_PATH)
        host = (host_name(view.host) if view is not None else None) or self.public_host
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host
        path = self.base_path + WEBSOCKET_PATH if self.service.one_port else WEBSOCKET_PATH
        return "ws://%s:%d%s" % (host, self.service.bound_port, path)

    def write_origins_for(self, view: PublicView) -> Container[str]:
        """The origins whose writes are not cross-site for a request seen as `view`: the dashboard's own and
        --allow-origin's, and behind a trusted proxy the public origin it names (its host passed the Host check)."""
        origin = view.origin if view.proxied else None
        return self.write_origins | {origin} if origin is not None else self.write_origins

    def sync_info(self, view: Optional[PublicView] = None) -> Dict[str, Any]:
        service = self.service
        hub = service.hub if service.running else None
        return {
            "running": service.running,
            "wsPort": service.bound_port,
            "wsUrl": self.ws_url(view),
            "runId": hub.run_id if hub is not None else None,
            "seq": hub.seq if hub is not None else None,
            "uptimeSeconds": service.uptime_seconds(),
            "startedAt": utc_timestamp(service.started_at) if service.started_at else None,
            "pollIntervalMs": int(service.poll_interval * 1000),
            "watcher": service.watcher_active,  # what detects changes: inotify, kqueue or poll
            "watcherRequested": service.watcher_kind,
            "watcherFallback": service.watcher_fallback,  # why `auto` fell back to polling, or null
            "clientCount": len(hub.clients) if hub is not None else 0,
            "clients": hub.client_list() if hub is not None else [],
            "lastError": service.last_error,
            # Whether the flow history reaches its file now, and why not (memory only by choice, a full disk,
            # another server of this project writing it).
            "history": self.history.status() if self.history is not None else {"persisted": False,
                                                                               "reason": "no flow history"},
            # The history before this server, from git: how many samples, and why none or not all.
            "historyFromGit": self.history.git_status() if self.history is not None else None,
        }

    def sync_action(self, action: str, ws_port: Optional[int] = None) -> str:
        """Run start/stop/restart on the loop; returns the message. Raises SyncActionError."""
        service = self.service

        async def act() -> str:
            if action == "stop":
                if not service.running:
                    return "sync service is already stopped"
                await service.stop(hold_port=True)
                return "sync service stopped"
            if action == "restart" and service.running:
                await service.stop(reason="sync service restarting")
            elif action == "start" and service.running:
                if ws_port is not None and ws_port != service.bound_port:
                    raise SyncActionError("sync service is already running on port %d; restart it to change the port"
                                          % service.bound_port)
                return "sync service is already running"
            try:
                await service.start(ws_port)
            except OSError as error:
                raise SyncActionError("cannot start the sync service on port %d: %s"
                                      % (service.ws_port, error.strerror or error))
            return "sync service %s on port %d" % ("restarted" if action == "restart" else "started",
                                                   service.bound_port)

        future = asyncio.run_coroutine_threadsafe(act(), self.loop)
        return future.result(SYNC_ACTION_TIMEOUT_S)

    # -- metrics ----------------------------------------------------------------------------------------------

    def metrics_text(self) -> str:
        service = self.service
        hub = service.hub  # the last run's counters while stopped
        metrics = hub.metrics if hub is not None else None
        lines: List[str] = []

        def metric(name: str, kind: str, help_text: str, value: object) -> None:
            lines.append("# HELP madace_%s %s" % (name, help_text))
            lines.append("# TYPE madace_%s %s" % (name, kind))
            lines.append("madace_%s %s" % (name, _number(value)))

        def counter(name: str, help_text: str, attribute: str) -> None:
            metric(name, "counter", help_text, getattr(metrics, attribute) if metrics is not None else 0)

        def summary(name: str, help_text: str, sum_attribute: str, count_attribute: str) -> None:
            lines.append("# HELP madace_%s %s" % (name, help_text))
            lines.append("# TYPE madace_%s summary" % name)
            for suffix, attribute in (("sum", sum_attribute), ("count", count_attribute)):
                value = getattr(metrics, attribute) if metrics is not None else 0
                lines.append("madace_%s_%s %s" % (name, suffix, _number(value)))

        metric("sync_running", "gauge", "1 when the sync service is running.", 1 if service.running else 0)
        metric("connections", "gauge", "Open WebSocket connections.",
               len(hub.clients) if hub is not None and service.running else 0)
        counter("connections_total", "WebSocket connections accepted.", "connections_total")
        counter("messages_sent_total", "WebSocket messages sent to clients.", "messages_sent_total")
        counter("bytes_sent_total", "Bytes of WebSocket frames sent to clients.", "bytes_sent_total")
        counter("compression_in_bytes_total", "Bytes of the frames sent to permessage-deflate clients, uncompressed.",
                "compression_in_bytes_total")
        counter("compression_out_bytes_total", "Bytes of the frames sent to permessage-deflate clients, as sent.",
                "compression_out_bytes_total")
        counter("events_total", "Events published.", "events_total")
        counter("events_dropped_total", "Events not sent to a lagging client (it gets a snapshot later).",
                "dropped_total")
        counter("resyncs_total", "Snapshots sent to resynchronise a client.", "resyncs_total")
        counter("client_messages_total", "Messages received from clients.", "client_messages_total")
        counter("client_errors_total", "Client messages answered with an error.", "client_errors_total")
        counter("rate_limited_total", "Times a client went over its message rate (its messages dropped).",
                "rate_limited_total")
        counter("heartbeat_closed_total", "Connections closed for not answering heartbeats.", "heartbeat_closed_total")
        counter("lagging_closed_total", "Connections closed for lagging too long.", "lagging_closed_total")
        counter("looks_failed_total", "Looks at the files that failed (the next reads the whole project again).",
                "looks_failed_total")
        counter("rescans_total", "Whole-project reads after a failed look or a lost event queue.", "rescans_total")
        summary("poll_duration_seconds", "Time spent polling the project files.", "poll_seconds_total",
                "polls_total")
        summary("broadcast_duration_seconds", "Time spent broadcasting events.", "broadcast_seconds_total",
                "broadcasts_total")
        for backend in ("inotify", "kqueue", "poll"):
            metric("watcher_%s" % backend, "gauge", "1 when changes are detected by %s." % backend,
                   1 if service.watcher_active == backend else 0)
        # The reason is free text: it goes in the HELP line (escaped as the format says), not in a label.
        metric("watcher_fallback", "gauge", "1 when the watcher fell back to polling. Reason: %s" % _help_text(
            service.watcher_fallback or "none"), 1 if service.watcher_fallback else 0)
        metric("seq", "gauge", "Sequence number of the last event of this run.",
               hub.seq if hub is not None else 0)
        metric("uptime_seconds", "gauge", "Seconds since the sync service started.", service.uptime_seconds())
        return "\n".join(lines) + "\n"


def _help_text(value: object) -> str:
    """Free text for a Prometheus HELP line: backslash and newline escaped, nothing else unprintable."""
    text = str(value).replace("\\", "\\\\").replace("\n", "\\n")
    return "".join(character if character.isprintable() else "?" for character in text)


def _number(value: object) -> str:
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


__all__ = ["SYNC_ACTION_TIMEOUT_S", "SYNC_STOPPED_MESSAGE", "DashboardApp", "ProjectUnreadable", "SyncActionError"]
