"""The HTTP server's bounds: deadlines for a request, caps on connections and threads, and an accept loop that
survives running out of file descriptors. The routes know nothing of this (see http.py).

A connection gets a thread only once its whole request is in. One thread (`request_reader.RequestReader`, a
selector loop) reads every connection's request head, and its body when it declares one: a half-sent request
costs a socket and the bytes it sent, never a thread. A complete request goes to one of at most `HTTP_WORKERS`
handler threads, which answer it from memory (nothing of the peer is read there) and close the connection.

- Idle: a connection must send the first byte of its request within `idle_timeout_s`; else it is closed.
- Head: from that byte, the whole request line and headers must arrive within `head_timeout_s`, however
  slowly they drip (one deadline for the head, not a timeout per read: a slow-loris peer that sends a header
  line every few seconds is closed with 408 all the same). At most 64 KiB (HTTP_HEAD_MAX_BYTES): a request line longer
  than that is 414, a head 431.
- Body: a body the head declares with a Content-Length of at most 64 KiB (HTTP_BODY_MAX_BYTES) must arrive within
  `body_timeout_s` of the head's end; else 408.
- Connections: at most `max_connections` are held at once (being read, or answered); the next ones get a 503
  from a single refusal thread and are closed. Complete requests wait for a handler thread in a queue of at
  most READY_QUEUE_MAX; beyond, they get the same 503.
- Out of descriptors (EMFILE/ENFILE) on accept: wait, doubling from ACCEPT_BACKOFF_MIN_S to
  ACCEPT_BACKOFF_MAX_S, instead of retrying at once (which spins a core); accepting resumes by itself.

(README, "Security").
"""

from __future__ import annotations

import errno
import io
import logging
import queue
import selectors
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple, Type

from madace_status.logsafe import escape
from madace_status.web.request_reader import RequestReader, close_quietly, raw_response

__all__ = ["DEFAULT_LIMITS", "HTTP_BODY_TIMEOUT_S", "HTTP_HEAD_TIMEOUT_S", "HTTP_IDLE_TIMEOUT_S", "HTTP_WORKERS",
           "MAX_HTTP_CONNECTIONS", "READY_QUEUE_MAX", "BoundedHTTPServer", "CompleteRequest", "HttpLimits",
           "TimedRequestHandler"]

logger = logging.getLogger("madace_status.http")

Address = Tuple[Any, ...]  # a peer's address as accept() gives it: (host, port) or (host, port, flow, scope)

HTTP_IDLE_TIMEOUT_S = 30.0  # from the connection to the first byte of its request
HTTP_HEAD_TIMEOUT_S = 10.0  # for the whole request line and headers: a browser sends them in one packet
HTTP_BODY_TIMEOUT_S = 10.0  # for the whole body of a POST (at most 64 KiB)
HTTP_SEND_TIMEOUT_S = 30.0  # a peer that takes nothing of an answer for this long is dropped
MAX_HTTP_CONNECTIONS = 4096  # held at once (each a descriptor and the bytes it sent); a browser uses a handful
HTTP_WORKERS = 32  # threads answering complete requests, from memory: none waits on a peer to send
READY_QUEUE_MAX = 256  # complete requests waiting for a handler thread; beyond, 503
REFUSAL_QUEUE_MAX = 256  # connections waiting for their 503; beyond, they are closed at once
REFUSAL_READ_TIMEOUT_S = 1.0  # read what a refused peer sent before answering, so the close is not a reset
REFUSAL_READ_BYTES = 16 * 1024
ACCEPT_BACKOFF_MIN_S = 0.05
ACCEPT_BACKOFF_MAX_S = 0.5  # also bounds how long a shutdown waits for the accept loop
OUT_OF_DESCRIPTORS_LOG_EVERY_S = 60.0  # one warning for a run of episodes (accepts freeing and taking descriptors)
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)



class HttpLimits(NamedTuple):
    """The HTTP server's deadlines and connection cap (README, "Security"; MADACE_STATUS_HTTP_*)."""

    idle_timeout_s: float
    head_timeout_s: float
    body_timeout_s: float
    max_connections: int


DEFAULT_LIMITS = HttpLimits(HTTP_IDLE_TIMEOUT_S, HTTP_HEAD_TIMEOUT_S, HTTP_BODY_TIMEOUT_S, MAX_HTTP_CONNECTIONS)


class CompleteRequest:
    """A connection whose whole request (head and body) has been read: what a handler thread is given."""

    __slots__ = ("sock", "data", "handed_over")

    def __init__(self, sock: socket.socket, data: bytes) -> None:
        self.sock = sock
        self.data = data
        # The handler gave the connection to the event loop (an event stream holds a duplicate of the socket):
        # this one is closed without a shutdown, which would end the stream too.
        self.handed_over = False


class TimedRequestHandler(BaseHTTPRequestHandler):
    """BaseHTTPRequestHandler for a request read in full by `RequestReader`: it parses it from memory, and only
    writes to the peer (each write within HTTP_SEND_TIMEOUT_S)."""

    complete: CompleteRequest

    def setup(self) -> None:
        complete = self.request
        assert isinstance(complete, CompleteRequest)  # what BoundedHTTPServer hands its handlers
        self.complete = complete
        self.request = complete.sock
        super().setup()
        self.rfile.close()  # the socket's own reader: the request is already in memory
        self.rfile = io.BytesIO(complete.data)
        self.connection.settimeout(HTTP_SEND_TIMEOUT_S)

    def read_body(self, length: int) -> bytes:
        """`length` bytes of the body (it was read with the head, within the body deadline)."""
        return self.rfile.read(length)


class _HandlerThreads:
    """At most `count` daemon threads taking work from one queue, started as the work needs them (daemon: a
    thread stuck writing to a peer that reads nothing never holds the process's exit)."""

    def __init__(self, count: int, work: Callable[..., None]) -> None:
        self._count = count
        self._work = work
        self._queue: queue.SimpleQueue[Optional[Tuple[Any, ...]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._idle = 0

    def submit(self, *item: Any) -> None:
        self._queue.put(item)
        with self._lock:
            if self._idle == 0 and self._started < self._count:
                self._started += 1
                threading.Thread(target=self._run, name="http-%d" % self._started, daemon=True).start()

    def stop(self) -> None:
        for _ in range(self._started):
            self._queue.put(None)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                return
            self._work(*item)


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer whose requests are read by one selector thread and answered by at most HTTP_WORKERS
    threads, with at most `limits.max_connections` connections held, and an accept loop that backs off when the
    process is out of descriptors."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: connections the kernel completes while we are busy

    def __init__(self, address: Tuple[str, int], handler_class: Type[BaseHTTPRequestHandler],
                 limits: HttpLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._refuser = _Refuser(raw_response(503, "Service Unavailable", "SERVER_BUSY",
                                              "too many connections (limit %d); try again" % limits.max_connections))
        self._busy = raw_response(503, "Service Unavailable", "SERVER_BUSY",
                                  "too many requests waiting (limit %d); try again" % READY_QUEUE_MAX)
        self._backoff_s = 0.0
        self._warned_at: Optional[float] = None  # when "out of file descriptors" was last logged
        self._recovery_untold = False  # that warning was logged, and the recovery that ends it not yet
        self._at_capacity = False
        self._waiting = 0  # complete requests handed to the handler threads and not done yet
        self._waiting_lock = threading.Lock()
        self._workers = _HandlerThreads(HTTP_WORKERS, self._answer)
        # Started once the port is bound (a port in use closes the server in __init__).
        self._reader: Optional[RequestReader] = None
        super().__init__(address, handler_class)
        self._reader = RequestReader(limits, self._dispatch, self._slots.release)

    def get_request(self) -> Tuple[socket.socket, Address]:
        try:
            request = super().get_request()
        except OSError as error:
            if error.errno not in OUT_OF_DESCRIPTORS:
                raise
            now = time.monotonic()
            if not self._backoff_s and (self._warned_at is None or
                                        now - self._warned_at >= OUT_OF_DESCRIPTORS_LOG_EVERY_S):
                self._warned_at = now
                self._recovery_untold = True
                logger.warning("HTTP server out of file descriptors (%s); accepting again when some are freed",
                               error.strerror or error)
            self._backoff_s = min(ACCEPT_BACKOFF_MAX_S, max(ACCEPT_BACKOFF_MIN_S, self._backoff_s * 2))
            time.sleep(self._backoff_s)  # the accept thread only: the handlers keep answering meanwhile
            raise
        if self._backoff_s:
            self._backoff_s = 0.0
            if self._recovery_untold:
                self._recovery_untold = False
                logger.warning("HTTP server accepting connections again")
        return request

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            if not self._at_capacity:
                self._at_capacity = True
                logger.warning("HTTP server at its limit of %d connections; answering 503 to the next ones",
                               self.limits.max_connections)
            self._refuser.refuse(request)
            return
        self._at_capacity = False
        assert self._reader is not None  # requests come only once serving, after __init__
        self._reader.add(request, client_address)  # its request is read without a thread of its own

    def _dispatch(self, sock: socket.socket, address: Address, data: bytes) -> None:
        """A whole request: to a handler thread, or 503 when READY_QUEUE_MAX are waiting already."""
        with self._waiting_lock:
            full = self._waiting >= HTTP_WORKERS + READY_QUEUE_MAX
            if not full:
                self._waiting += 1
        if full:
            try:
                sock.settimeout(0)
                sock.send(self._busy)
            except OSError:
                pass
            self._finish(sock)
            return
        self._workers.submit(sock, address, data)

    def _answer(self, sock: socket.socket, address: Address, data: bytes) -> None:
        complete = CompleteRequest(sock, data)
        try:
            self.finish_request(complete, address)  # type: ignore[arg-type]  # setup() unwraps it
        except Exception:  # noqa: BLE001 — one escaped line, never a traceback of what a peer sent
            self.handle_error(sock, address)
        finally:
            self._done_waiting()
            if complete.handed_over:
                close_quietly(sock)
                self._slots.release()  # the stream is counted by the sync service (MAX_STREAMS) from now on
            else:
                self._finish(sock)

    def _done_waiting(self) -> None:
        with self._waiting_lock:
            self._waiting -= 1

    def _finish(self, sock: socket.socket) -> None:
        self.shutdown_request(sock)
        self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One escaped line instead of socketserver's traceback on stderr: a peer must not write tracebacks."""
        error = sys.exc_info()[1]
        logger.info("error handling a request from %s: %s", escape(client_address[0] if client_address else ""),
                    escape(repr(error)))

    def server_close(self) -> None:
        super().server_close()
        if self._reader is not None:
            self._reader.stop()
        self._workers.stop()
        self._refuser.stop()


class _Refuser:
    """One thread that answers 503 to the connections beyond the cap: it reads what each sent (at most
    REFUSAL_READ_BYTES, for at most REFUSAL_READ_TIMEOUT_S), writes the answer and closes."""

    def __init__(self, response: bytes) -> None:
        self._response = response
        self._queue: queue.Queue[socket.socket] = queue.Queue(REFUSAL_QUEUE_MAX)
        self._stopped = False
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def refuse(self, sock: socket.socket) -> None:
        try:
            sock.setblocking(False)
            self._queue.put_nowait(sock)
        except (queue.Full, OSError):
            close_quietly(sock)
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-refuser", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stopped = True

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        pending: Dict[socket.socket, Tuple[float, bytearray]] = {}  # socket → (deadline, bytes received)
        while not self._stopped:
            try:
                block = not pending
                sock = self._queue.get(block, 0.5 if block else 0)
                pending[sock] = (time.monotonic() + REFUSAL_READ_TIMEOUT_S, bytearray())
                selector.register(sock, selectors.EVENT_READ)
                continue
            except queue.Empty:
                if not pending:
                    continue
            now = time.monotonic()
            timeout = max(0.0, min(0.05, min(deadline for deadline, _ in pending.values()) - now))
            ready = {key.fileobj for key, _ in selector.select(timeout)}
            now = time.monotonic()
            for sock in list(pending):
                deadline, received = pending[sock]
                done = now >= deadline
                if sock in ready:
                    try:
                        chunk = sock.recv(REFUSAL_READ_BYTES)
                    except OSError:
                        chunk = b""
                    received += chunk
                    done = done or not chunk or b"\r\n\r\n" in received or len(received) >= REFUSAL_READ_BYTES
                if done:
                    selector.unregister(sock)
                    del pending[sock]
                    try:
                        sock.send(self._response)
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    close_quietly(sock)
        for sock in pending:
            close_quietly(sock)
        selector.close()
