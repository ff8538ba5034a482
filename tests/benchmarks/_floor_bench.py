"""The floor of sync_latency.py's 1-client figures: the least a Python watcher can do between a file write and a
client, measured in the same run so that the machine's own stalls show in both.

`--role floor --file PATH` is a bare relay in its own process: one inotify watch (ctypes, blocking read, no
event loop) on PATH's directory for IN_CLOSE_WRITE | IN_MOVED_TO; on an event naming PATH it reads the file,
parses its JSON and sends the `context.benchMarker` it holds, as a line, to the one TCP client. No project
model, no diff, no WebSocket framing, no hub: whatever time it takes is the machine's (the kernel's event, two
process wake-ups, a read and a send), so a p99 far above `serve`'s would point at `serve`, and one close to it
at the machine. Linux only (it is the inotify floor).
"""

import asyncio
import ctypes
import ctypes.util
import json
import os
import socket
import struct
import sys
import threading
import time

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)
READ_BYTES = 64 * 1024


def finished_writes(path):
    """An iterator that yields once per read(2) of an inotify descriptor reporting PATH closed after writing or
    renamed into place (blocking: run it in its own process or thread). The watch is set before it returns."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0 or libc.inotify_add_watch(fd, os.path.dirname(path).encode(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
        raise OSError(ctypes.get_errno(), "inotify")
    return _named_in(fd, os.path.basename(path).encode())


def _named_in(fd, wanted):
    while True:
        data = os.read(fd, READ_BYTES)
        offset, named = 0, False
        while offset < len(data):
            _, _, _, length = EVENT_HEADER.unpack_from(data, offset)
            start = offset + EVENT_HEADER.size
            named = named or data[start:start + length].rstrip(b"\0") == wanted
            offset = start + length
        if named:
            yield


def relay_main(path):
    """Prints `port N`, accepts one client, then relays until stdin closes (or says quit)."""
    changes = finished_writes(path)
    listener = socket.create_server(("127.0.0.1", 0))
    print("port %d" % listener.getsockname()[1], flush=True)
    client, _ = listener.accept()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    for _ in changes:
        with open(path, "rb") as handle:
            marker = json.loads(handle.read())["context"]["benchMarker"]
        client.sendall(marker.encode() + b"\n")


class FloorClient:
    """The benchmark's side: connects to the relay and notes `time.monotonic()` per marker received."""

    def __init__(self):
        self.received = {}  # marker → monotonic time of its line
        self._reader = None

    async def open(self, port):
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", port)
        asyncio.get_running_loop().create_task(self._read())

    async def _read(self):
        while True:
            line = await self._reader.readline()
            if not line:
                return
            self.received.setdefault(line.decode().strip(), time.monotonic())

    def close(self):
        self._writer.close()
