"""The HTTP server's request reader (web/limits.py says why): one thread with one selector reads every
connection's request head, and its body when it declares one, within the idle, head and body deadlines; a
whole request is handed over, and 408, 414 and 431 are answered here. What a half-sent request costs is its
socket and the bytes it sent (README, "Security").
"""

from __future__ import annotations

import enum
import heapq
import itertools
import json
import logging
import queue
import re
import selectors
import socket
import threading
import time
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

if TYPE_CHECKING:
    from madace_status.web.limits import Address, HttpLimits

__all__ = ["HTTP_BODY_MAX_BYTES", "HTTP_HEAD_MAX_BYTES", "READ_CHUNK_BYTES", "Pending", "ReadPhase", "RequestReader",
           "close_quietly", "declared_body_length", "raw_response"]

logger = logging.getLogger("madace_status.http")

HTTP_HEAD_MAX_BYTES = 64 * 1024  # request line and headers (http.server's own line limit)
HTTP_BODY_MAX_BYTES = 64 * 1024  # a body read before its request is handed over (the API's JSON bodies)
READ_CHUNK_BYTES = 16 * 1024  # one recv() of a request
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]{1,7})[ \t]*(?=\r\n)", re.IGNORECASE)


def raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.0 answer in the JSON error envelope, for places with no handler to write it."""
    body = json.dumps({"success": False, "error": message, "code": code}, allow_nan=False).encode("utf-8")
    head = ("HTTP/1.0 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n"
            % (status, reason, len(body), "Retry-After: 1\r\n" if status == 503 else ""))
    return head.encode("ascii") + body


def declared_body_length(head: bytes) -> Optional[int]:
    """The Content-Length a request head declares, when it is one the reader waits for (a single field of at
    most HTTP_BODY_MAX_BYTES); else None: the handler answers 400, 411 or 413 without reading a body."""
    lengths = _CONTENT_LENGTH.findall(head)
    if len(lengths) != 1 or head.lower().count(b"\r\ncontent-length:") != 1:
        return None
    length = int(lengths[0])
    return length if length <= HTTP_BODY_MAX_BYTES else None


class ReadPhase(enum.Enum):
    """Where a connection's request is: nothing yet (IDLE), its head arriving (HEAD), its body arriving (BODY)."""

    IDLE = "idle"
    HEAD = "head"
    BODY = "body"


class Pending:
    """A connection whose request is being read."""

    __slots__ = ("sock", "address", "data", "phase", "deadline", "head_end", "needed")

    def __init__(self, sock: socket.socket, address: Address, deadline: float) -> None:
        self.sock: Optional[socket.socket] = sock  # None once handed over or closed
        self.address = address
        self.data = bytearray()
        self.phase = ReadPhase.IDLE
        self.deadline: Optional[float] = deadline  # None once handed over or closed
        self.head_end = -1
        self.needed = 0  # body: the total size the request must reach


class RequestReader:
    """One thread with one selector: reads the request of every connection (see the module's docstring) and
    hands each complete one to `dispatch(sock, address, data)`; answers 408/414/431 and closes on its own."""

    def __init__(self, limits: HttpLimits, dispatch: Callable[[socket.socket, Address, bytes], None],
                 release: Callable[[], None]) -> None:
        self._limits = limits
        self._dispatch = dispatch
        self._release = release  # called once per connection this reader closes
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._incoming: queue.SimpleQueue[Tuple[socket.socket, Address]] = queue.SimpleQueue()
        # A heap of (deadline, sequence, pending): stale entries are skipped.
        self._deadlines: List[Tuple[float, int, Pending]] = []
        self._sequence = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="http-requests", daemon=True)
        self._thread.start()

    def add(self, sock: socket.socket, address: Address) -> None:
        self._incoming.put((sock, address))
        self._wake()

    def stop(self) -> None:
        self._stopped = True
        self._wake()
        self._thread.join(2.0)

    def _wake(self) -> None:
        try:
            self._wake_write.send(b"\0")
        except OSError:  # its buffer is full: the thread is awake anyway
            pass

    def _run(self) -> None:
        try:
            while not self._stopped:
                timeout: Optional[float] = None
                while self._deadlines and self._deadlines[0][2].deadline != self._deadlines[0][0]:
                    heapq.heappop(self._deadlines)  # a deadline that was moved on, or a connection gone
                if self._deadlines:
                    timeout = max(0.0, self._deadlines[0][0] - time.monotonic())
                for key, _ in self._selector.select(timeout):
                    if key.fileobj is self._wake_read:
                        self._take_incoming()
                    else:
                        self._readable(key.data)
                self._expire(time.monotonic())
        except Exception:  # a bug: never a silent stop of every HTTP request
            logger.exception("HTTP request reader failed")
        finally:
            for key in list(self._selector.get_map().values()):
                if key.data is not None:
                    self._close(key.data)
            self._selector.close()
            self._wake_read.close()
            self._wake_write.close()

    def _take_incoming(self) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except OSError:
            pass
        while True:
            try:
                sock, address = self._incoming.get_nowait()
            except queue.Empty:
                return
            pending = Pending(sock, address, time.monotonic() + self._limits.idle_timeout_s)
            try:
                sock.setblocking(False)
                self._selector.register(sock, selectors.EVENT_READ, pending)
            except (OSError, ValueError):
                self._close(pending, registered=False)
                continue
            self._push_deadline(pending)

    def _push_deadline(self, pending: Pending) -> None:
        assert pending.deadline is not None  # only a connection still being read has a deadline to keep
        heapq.heappush(self._deadlines, (pending.deadline, next(self._sequence), pending))

    def _readable(self, pending: Pending) -> None:
        assert pending.sock is not None  # registered with the selector only while being read
        try:
            chunk = pending.sock.recv(READ_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            if pending.phase is ReadPhase.BODY:
                self._hand_over(pending)  # the body ended before its Content-Length: the handler says so (400)
            else:
                self._close(pending)  # the peer left (or reset) before its head was whole: nothing to answer
            return
        data = pending.data
        data += chunk
        now = time.monotonic()
        if pending.phase is ReadPhase.IDLE:
            pending.phase = ReadPhase.HEAD
            self._move_deadline(pending, now + self._limits.head_timeout_s)
        if pending.phase is ReadPhase.HEAD:
            end = data.find(b"\r\n\r\n", max(0, len(data) - len(chunk) - 3))  # only where the new bytes reach
            if end < 0 and len(data) <= HTTP_HEAD_MAX_BYTES:
                return
            if end < 0 or end + 4 > HTTP_HEAD_MAX_BYTES:
                self._too_large(pending)
                return
            pending.head_end = end + 4
            length = declared_body_length(bytes(data[:end + 2]))
            pending.needed = pending.head_end + (length or 0)
            pending.phase = ReadPhase.BODY
            self._move_deadline(pending, now + self._limits.body_timeout_s)
        if len(data) >= pending.needed:
            self._hand_over(pending)

    def _too_large(self, pending: Pending) -> None:
        if pending.data.find(b"\r\n", 0, HTTP_HEAD_MAX_BYTES) < 0:
            self._answer(pending, 414, "Request-URI Too Long", "URI_TOO_LONG",
                         "the request line is longer than %d bytes" % HTTP_HEAD_MAX_BYTES)
        else:
            self._answer(pending, 431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE",
                         "the request head is larger than %d bytes" % HTTP_HEAD_MAX_BYTES)

    def _move_deadline(self, pending: Pending, deadline: float) -> None:
        pending.deadline = deadline
        self._push_deadline(pending)

    def _expire(self, now: float) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, _, pending = heapq.heappop(deadlines)
            if pending.deadline != deadline or pending.sock is None:
                continue  # moved on, or already handed over or closed
            if pending.phase is ReadPhase.IDLE:
                self._close(pending)  # nothing was asked: nothing to answer
            elif pending.phase is ReadPhase.HEAD:
                logger.debug("%s: request head not complete within %g s; closed", pending.address[0],
                             self._limits.head_timeout_s)
                self._answer(pending, 408, "Request Timeout", "REQUEST_TIMEOUT",
                             "the request head did not arrive within %g s" % self._limits.head_timeout_s)
            else:
                self._answer(pending, 408, "Request Timeout", "REQUEST_TIMEOUT",
                             "the body did not arrive within %g s" % self._limits.body_timeout_s)

    def _unregister(self, pending: Pending) -> Optional[socket.socket]:
        sock, pending.sock = pending.sock, None
        pending.deadline = None
        if sock is not None:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
        return sock

    def _hand_over(self, pending: Pending) -> None:
        sock = self._unregister(pending)
        assert sock is not None  # handed over once, while still being read
        sock.setblocking(True)
        self._dispatch(sock, pending.address, bytes(pending.data))

    def _answer(self, pending: Pending, status: int, reason: str, code: str, message: str) -> None:
        """A short answer written at once (the peer's buffer takes it, or it is dropped), then the close."""
        sock = pending.sock
        if sock is not None:
            try:
                sock.send(raw_response(status, reason, code, message))
            except OSError:
                pass
        self._close(pending)

    def _close(self, pending: Pending, registered: bool = True) -> None:
        sock = self._unregister(pending) if registered else pending.sock
        pending.sock = None
        if sock is not None:
            close_quietly(sock)
            self._release()


def close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
