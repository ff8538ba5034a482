"""Listening sockets and an accept loop that backs off when the process is out of descriptors.

`loop.create_server` would do, but on EMFILE/ENFILE its accept loop (CPython 3.9–3.13, `_accept_connection`)
does not stop at the first failure: on the same readiness it tries `backlog` more times, logging a traceback
and scheduling one more retry each time, so an exhausted process logs thousands of tracebacks a second and
spends about half a core. Here, the first such failure stops accepting (one log line), and accepting resumes
after ACCEPT_RETRY_S, doubling up to ACCEPT_RETRY_MAX_S while descriptors stay short; the first success resets
the delay. Connections waiting meanwhile stay in the kernel's backlog. Each accepted socket is handed to the
protocol factory through `loop.connect_accepted_socket`. (README, "The WebSocket implementation")
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from typing import Callable, Iterable, List, Protocol, Sequence, cast

__all__ = ["ACCEPTS_PER_READY", "ACCEPT_RETRY_MAX_S", "ACCEPT_RETRY_S", "Listener", "Listening", "ProtocolFactory",
           "listening_sockets", "start_listening"]

logger = logging.getLogger("madace_status.websocket")

ACCEPT_RETRY_S = 0.1  # first pause in accepting when out of descriptors…
ACCEPT_RETRY_MAX_S = 2.0  # …doubling up to this while they stay short
ACCEPTS_PER_READY = 128  # connections accepted per readiness event, so a connection storm cannot starve the loop
CONNECT_TIMEOUT_S = 1.0  # close(): how long to wait for the transports of connections just accepted
RESOURCE_ERRNOS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class Listening(Protocol):
    """What start_listening gives: the listening sockets, close() (stop accepting) and wait_closed()."""

    sockets: List[socket.socket]

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


async def listening_sockets(host: str | None, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for every address of `host` (as `loop.create_server` makes them)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):  # without duplicates, in order
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == getattr(socket, "AF_INET6", None) and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as error:
                raise OSError(error.errno, "error while attempting to bind on address %r: %s"
                              % (address, (error.strerror or str(error)).lower()))
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def start_listening(sockets: Iterable[socket.socket], protocol_factory: ProtocolFactory,
                          backlog: int) -> Listening:
    """A started Listener on `sockets`; on a loop without add_reader (the proactor loop of Windows), asyncio's
    own servers instead (its accept loop there does not spin on EMFILE the same way)."""
    sockets = list(sockets)
    listener = Listener(sockets, protocol_factory)
    try:
        listener.start()
    except NotImplementedError:
        listener.close_readers()
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(protocol_factory, sock=sock, backlog=backlog) for sock in sockets]
        return _AsyncioServers(sockets, servers)
    return listener


class _AsyncioServers:
    """asyncio.Server objects behind the Listener interface (sockets, close, wait_closed)."""

    def __init__(self, sockets: Iterable[socket.socket], servers: Sequence[asyncio.AbstractServer]) -> None:
        self.sockets = list(sockets)
        self._servers = servers

    def close(self) -> None:
        for server in self._servers:
            server.close()

    async def wait_closed(self) -> None:
        """Nothing to wait for: close() closed the listening sockets. (asyncio.Server.wait_closed would wait
        for every connection to end since Python 3.12, and the caller closes those after this.)"""


class Listener:
    """Accepts on `sockets` and runs `protocol_factory()` for each connection."""

    def __init__(self, sockets: Iterable[socket.socket], protocol_factory: ProtocolFactory) -> None:
        self.sockets = list(sockets)
        self._protocol_factory = protocol_factory
        self._loop = asyncio.get_running_loop()
        self._retry_s = ACCEPT_RETRY_S
        self._retry_handle: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Task[None]] = set()  # connect_accepted_socket tasks not finished (kept referenced)
        self._closed = False

    def start(self) -> None:
        for sock in self.sockets:
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def close_readers(self) -> None:
        """Stop accepting without closing the sockets."""
        for sock in self.sockets:
            try:
                self._loop.remove_reader(sock.fileno())
            except NotImplementedError:
                pass

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_READY):
            try:
                connection, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:
                if error.errno in RESOURCE_ERRNOS:
                    self._back_off(error)
                else:  # e.g. EPERM from a firewall hook: this connection is lost, accepting goes on
                    logger.info("accept() failed: %s", error.strerror or error)
                return
            self._retry_s = ACCEPT_RETRY_S
            connection.setblocking(False)
            task = self._loop.create_task(self._connect(connection))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _connect(self, connection: socket.socket) -> None:
        try:
            # (typeshed has it on BaseEventLoop only; every loop has it since Python 3.5.3)
            await cast(asyncio.BaseEventLoop, self._loop).connect_accepted_socket(self._protocol_factory, connection)
        except Exception as error:  # the peer reset before the transport was made, or the like
            logger.debug("accepted connection dropped: %s", type(error).__name__)
            connection.close()

    def _back_off(self, error: OSError) -> None:
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
        logger.warning("cannot accept connections: %s; accepting again in %.1f s",
                       error.strerror or error, self._retry_s)
        self._retry_handle = self._loop.call_later(self._retry_s, self._resume)
        self._retry_s = min(self._retry_s * 2, ACCEPT_RETRY_MAX_S)

    def _resume(self) -> None:
        self._retry_handle = None
        if not self._closed:
            self.start()

    def close(self) -> None:
        """Stop accepting and close the listening sockets (connections already made are not touched)."""
        if self._closed:
            return
        self._closed = True
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None
        self.close_readers()
        for sock in self.sockets:
            sock.close()

    async def wait_closed(self) -> None:
        """Wait until the connections accepted before `close()` have their transport (or failed)."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=CONNECT_TIMEOUT_S)
