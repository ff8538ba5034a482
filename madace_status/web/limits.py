"""The HTTP server's bounds: deadlines for a request, a cap on connections, and an accept loop that survives
running out of file descriptors. The routes know nothing of this (see http.py).

- Idle: a connection must send the first byte of its request within `idle_timeout_s`.
- Head: from that byte, the whole request line and headers must arrive within `head_timeout_s`, however
  slowly they drip (one deadline for the head, not a timeout per read: a slow-loris peer that sends a header
  line every few seconds is closed with 408 all the same).
- Body: the body (at most 64 KiB) must arrive within `body_timeout_s` once its reading starts.
- Connections: at most `max_connections` are served at once, one thread each; the next ones get a 503 from
  a single refusal thread and are closed, so a flood costs a bounded number of threads and descriptors.
- Out of descriptors (EMFILE/ENFILE) on accept: wait, doubling from ACCEPT_BACKOFF_MIN_S to
  ACCEPT_BACKOFF_MAX_S, instead of retrying at once (which spins a core); accepting resumes by itself.
"""

import collections
import errno
import io
import json
import logging
import queue
import selectors
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from madace_status.logsafe import escape

logger = logging.getLogger("madace_status.http")

HTTP_IDLE_TIMEOUT_S = 30.0  # from the connection (or the last answer) to the first byte of a request
HTTP_HEAD_TIMEOUT_S = 10.0  # for the whole request line and headers: a browser sends them in one packet
HTTP_BODY_TIMEOUT_S = 10.0  # for the whole body of a POST (at most 64 KiB)
HTTP_SEND_TIMEOUT_S = 30.0  # a peer that takes nothing of an answer for this long is dropped
MAX_HTTP_CONNECTIONS = 64  # served at once, one thread each; the dashboard itself needs a handful
REFUSAL_QUEUE_MAX = 256  # connections waiting for their 503; beyond, they are closed at once
REFUSAL_READ_TIMEOUT_S = 1.0  # read what a refused peer sent before answering, so the close is not a reset
REFUSAL_READ_BYTES = 16 * 1024
ACCEPT_BACKOFF_MIN_S = 0.05
ACCEPT_BACKOFF_MAX_S = 0.5  # also bounds how long a shutdown waits for the accept loop
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

HttpLimits = collections.namedtuple("HttpLimits", "idle_timeout_s head_timeout_s body_timeout_s max_connections")
DEFAULT_LIMITS = HttpLimits(HTTP_IDLE_TIMEOUT_S, HTTP_HEAD_TIMEOUT_S, HTTP_BODY_TIMEOUT_S, MAX_HTTP_CONNECTIONS)


def raw_response(status, reason, code, message):
    """A whole HTTP/1.0 answer in the JSON error envelope, for places with no handler to write it."""
    body = json.dumps({"success": False, "error": message, "code": code}, allow_nan=False).encode("utf-8")
    head = ("HTTP/1.0 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n"
            % (status, reason, len(body), "Retry-After: 1\r\n" if status == 503 else ""))
    return head.encode("ascii") + body


class _DeadlineReader(io.RawIOBase):
    """The socket as a raw stream whose reads all stop at one deadline (`start(phase, seconds)`), whatever
    the number of reads it takes; `expired` names the phase that ran out."""

    def __init__(self, sock):
        super().__init__()
        self._sock = sock
        self.deadline = None
        self.phase = None
        self.expired = None

    def readable(self):
        return True

    def start(self, phase, seconds):
        self.phase = phase
        self.deadline = None if seconds is None else time.monotonic() + seconds

    def readinto(self, buffer):
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.expired = self.phase
                raise socket.timeout("%s deadline passed" % self.phase)
            self._sock.settimeout(left)
        try:
            return self._sock.recv_into(buffer)
        except socket.timeout:
            self.expired = self.phase
            raise
        finally:
            self._sock.settimeout(HTTP_SEND_TIMEOUT_S)  # what the answer's writes are allowed


class TimedRequestHandler(BaseHTTPRequestHandler):
    """BaseHTTPRequestHandler with the idle / head / body deadlines of `server.limits`."""

    def setup(self):
        super().setup()
        self.rfile.close()  # http.server's own reader: replaced by one that keeps the deadlines
        self.connection.settimeout(HTTP_SEND_TIMEOUT_S)
        self.deadline_reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self.deadline_reader)

    def handle_one_request(self):
        limits = self.server.limits
        reader = self.deadline_reader
        reader.start("idle", limits.idle_timeout_s)
        try:
            if not self.rfile.peek(1):
                self.close_connection = True
                return
        except OSError:  # idle for too long, or the peer reset: nothing was asked, nothing to answer
            self.close_connection = True
            return
        reader.start("head", limits.head_timeout_s)
        super().handle_one_request()
        if reader.expired == "head":
            self.close_connection = True
            logger.debug("%s: request head not complete within %g s; closed", self.client_address[0],
                         limits.head_timeout_s)
            self._write_quietly(raw_response(408, "Request Timeout", "REQUEST_TIMEOUT", "the request head did not "
                                             "arrive within %g s" % limits.head_timeout_s))

    def parse_request(self):
        parsed = super().parse_request()
        self.deadline_reader.start(None, None)  # the head is in: the answer is not held to the head's deadline
        return parsed

    def read_body(self, length):
        """`length` bytes of body within the body deadline; raises socket.timeout when they do not come."""
        self.deadline_reader.start("body", self.server.limits.body_timeout_s)
        try:
            return self.rfile.read(length)
        finally:
            self.deadline_reader.start(None, None)

    def _write_quietly(self, data):
        try:
            self.wfile.write(data)
        except OSError:
            pass


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `limits.max_connections` handler threads and an accept loop that backs
    off when the process is out of descriptors."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: connections the kernel completes while we are busy

    def __init__(self, address, handler_class, limits=DEFAULT_LIMITS):
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._refuser = _Refuser(raw_response(503, "Service Unavailable", "SERVER_BUSY",
                                              "too many connections (limit %d); try again" % limits.max_connections))
        self._backoff_s = 0.0
        self._at_capacity = False
        super().__init__(address, handler_class)

    def get_request(self):
        try:
            request = super().get_request()
        except OSError as error:
            if error.errno not in OUT_OF_DESCRIPTORS:
                raise
            if not self._backoff_s:
                logger.warning("HTTP server out of file descriptors (%s); accepting again when some are freed",
                               error.strerror or error)
            self._backoff_s = min(ACCEPT_BACKOFF_MAX_S, max(ACCEPT_BACKOFF_MIN_S, self._backoff_s * 2))
            time.sleep(self._backoff_s)  # the accept thread only: the handlers keep answering meanwhile
            raise
        if self._backoff_s:
            self._backoff_s = 0.0
            logger.warning("HTTP server accepting connections again")
        return request

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            if not self._at_capacity:
                self._at_capacity = True
                logger.warning("HTTP server at its limit of %d connections; answering 503 to the next ones",
                               self.limits.max_connections)
            self._refuser.refuse(request)
            return
        self._at_capacity = False
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        """One escaped line instead of socketserver's traceback on stderr: a peer must not write tracebacks."""
        error = sys.exc_info()[1]
        logger.info("error handling a request from %s: %s", escape(client_address[0] if client_address else ""),
                    escape(repr(error)))

    def server_close(self):
        super().server_close()
        self._refuser.stop()


class _Refuser:
    """One thread that answers 503 to the connections beyond the cap: it reads what each sent (at most
    REFUSAL_READ_BYTES, for at most REFUSAL_READ_TIMEOUT_S), writes the answer and closes."""

    def __init__(self, response):
        self._response = response
        self._queue = queue.Queue(REFUSAL_QUEUE_MAX)
        self._stopped = False
        self._thread = None
        self._lock = threading.Lock()

    def refuse(self, sock):
        try:
            sock.setblocking(False)
            self._queue.put_nowait(sock)
        except (queue.Full, OSError):
            _close(sock)
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-refuser", daemon=True)
                self._thread.start()

    def stop(self):
        self._stopped = True

    def _run(self):
        selector = selectors.DefaultSelector()
        pending = {}  # socket → (deadline, bytes received)
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
                    _close(sock)
        for sock in pending:
            _close(sock)
        selector.close()


def _close(sock):
    try:
        sock.close()
    except OSError:
        pass
