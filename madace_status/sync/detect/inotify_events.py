"""Sans-I/O parsing of inotify event records: bytes in, events out (no file descriptor, no ctypes).

A record is `struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; }` in native byte
order, the name NUL-padded. A read may end in the middle of a record: the rest is kept for the next feed
(README, "How changes are found").
"""

from __future__ import annotations

import struct

__all__ = [
    "DIRECTORY_MASK", "IN_ATTRIB", "IN_CLOEXEC", "IN_CLOSE_WRITE", "IN_CREATE", "IN_DELETE", "IN_DELETE_SELF",
    "IN_IGNORED", "IN_ISDIR", "IN_MODIFY", "IN_MOVED_FROM", "IN_MOVED_TO", "IN_MOVE_SELF", "IN_NONBLOCK",
    "IN_ONLYDIR", "IN_Q_OVERFLOW", "MAX_PENDING_BYTES", "REARM_MASK", "SELF_GONE_MASK", "InotifyEvent",
    "InotifyParser", "encode_event",
]

_HEADER = struct.Struct("=iIII")

# Masks from <sys/inotify.h>.
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

# What a watched directory is asked for: in-place writes and truncations (MODIFY, CLOSE_WRITE, ATTRIB), atomic
# renames in and out (MOVED_TO / MOVED_FROM), creation, deletion, and the directory itself going away.
DIRECTORY_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
                  | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
# Events after which the set of watches must be computed again (a directory appeared, went, or the queue lost
# events).
REARM_MASK = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW
SELF_GONE_MASK = IN_DELETE_SELF | IN_MOVE_SELF  # a watched directory itself deleted or moved away
MAX_PENDING_BYTES = 1 << 20  # a record's name is at most NAME_MAX: more unparsed bytes than this is corruption


class InotifyEvent:
    """One inotify record: the watch descriptor it is about, its mask, its cookie and the entry's name."""

    __slots__ = ("wd", "mask", "cookie", "name")

    def __init__(self, wd: int, mask: int, cookie: int, name: str) -> None:
        self.wd = wd
        self.mask = mask
        self.cookie = cookie
        self.name = name  # str (surrogateescape-decoded), "" for an event about the watched directory itself

    @property
    def overflow(self) -> bool:
        return bool(self.mask & IN_Q_OVERFLOW)

    @property
    def needs_rearm(self) -> bool:
        return bool(self.mask & REARM_MASK) or bool(self.mask & IN_ISDIR and self.mask & (IN_CREATE | IN_MOVED_TO))

    @property
    def write_in_progress(self) -> bool:
        """A file written (or created) but not closed yet: its IN_CLOSE_WRITE is still to come. Reading it now
        could catch it between a truncate and the write that follows."""
        return bool(self.mask & (IN_MODIFY | IN_CREATE)) and not self.mask & (IN_ISDIR | IN_CLOSE_WRITE)

    def __repr__(self) -> str:
        return "InotifyEvent(wd=%d, mask=%#x, cookie=%d, name=%r)" % (self.wd, self.mask, self.cookie, self.name)


class InotifyParser:
    """Feed it what read(2) returned; it returns the complete events, keeping a partial record for later."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[InotifyEvent]:
        buffer = self._pending + bytes(data)
        events = []
        offset = 0
        while len(buffer) - offset >= _HEADER.size:
            wd, mask, cookie, length = _HEADER.unpack_from(buffer, offset)
            end = offset + _HEADER.size + length
            if end > len(buffer):
                break
            raw = buffer[offset + _HEADER.size:end].split(b"\0", 1)[0]
            events.append(InotifyEvent(wd, mask, cookie, raw.decode("utf-8", "surrogateescape")))
            offset = end
        self._pending = buffer[offset:]
        if len(self._pending) > MAX_PENDING_BYTES:
            raise ValueError("inotify stream out of step")
        return events


def encode_event(wd: int, mask: int, cookie: int = 0, name: str = "") -> bytes:
    """One record as the kernel writes it (for recorded streams in tests)."""
    raw = name.encode("utf-8", "surrogateescape")
    if raw:
        raw += b"\0" * (16 - len(raw) % 16)
    return _HEADER.pack(wd, mask, cookie, len(raw)) + raw
