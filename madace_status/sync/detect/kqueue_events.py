"""Sans-I/O side of the kqueue backend: which paths to watch, and what a batch of vnode kevents means.

No descriptor and no `select.kqueue` here: the kevents are any objects with `ident`, `filter`, `flags` and
`fflags` (what `kqueue.control` returns, or plain objects in tests), and a watch is known by its descriptor.

A kqueue vnode filter names no entry: NOTE_WRITE on a directory says "an entry was added, removed or renamed",
not which one, and a write *into* a file of the directory is reported on the file only. So the story file,
every epic file and every state file are watched one by one, beside the directories (whose NOTE_WRITE brings
new and replaced entries), within MAX_DESCRIPTORS (README, "How changes are found").
"""

from __future__ import annotations

from typing import Callable, Iterable, List, Mapping, Protocol, Sequence, Tuple

__all__ = [
    "ENTRIES_FFLAGS", "EVFILT_VNODE", "EV_ERROR", "FD_LIMIT_SHARE_DIVISOR", "GONE_FFLAGS", "MAX_DESCRIPTORS",
    "NOTE_ATTRIB", "NOTE_DELETE", "NOTE_EXTEND", "NOTE_LINK", "NOTE_RENAME", "NOTE_REVOKE", "NOTE_WRITE",
    "VNODE_FFLAGS", "BudgetExceeded", "Kevent", "Plan", "VnodeChange", "Watches", "descriptor_budget",
    "files_by_directory", "interpret", "paths_to_recheck", "plan_watches",
]

# From <sys/event.h> (the same on macOS, FreeBSD, NetBSD, OpenBSD and DragonFly).
EVFILT_VNODE = -4
EV_ERROR = 0x4000
NOTE_DELETE = 0x0001  # unlinked (also: the target of a rename over it)
NOTE_WRITE = 0x0002  # contents written; on a directory: an entry added, removed or renamed
NOTE_EXTEND = 0x0004  # grew
NOTE_ATTRIB = 0x0008  # attributes changed (a truncation to the same size, a touch)
NOTE_LINK = 0x0010  # link count changed (on a directory: a subdirectory created or removed)
NOTE_RENAME = 0x0020  # the watched path itself was renamed
NOTE_REVOKE = 0x0040  # access revoked (an unmounted file system)

VNODE_FFLAGS = NOTE_DELETE | NOTE_WRITE | NOTE_EXTEND | NOTE_ATTRIB | NOTE_LINK | NOTE_RENAME | NOTE_REVOKE
# The descriptor no longer stands for the path: the path must be opened again (and looked at).
GONE_FFLAGS = NOTE_DELETE | NOTE_RENAME | NOTE_REVOKE
# A directory's set of entries changed: new entries (a new epic, a state directory created under a stand-in
# ancestor) must be watched, and replaced ones opened again.
ENTRIES_FFLAGS = NOTE_WRITE | NOTE_LINK | NOTE_EXTEND

# At most this many descriptors (directories + files) are held open for watches; a project needing more is
# polled instead (the reason says so). macOS's default soft limit is 256 descriptors for the whole process,
# so the budget is further capped at a share of the process's limit (FD_LIMIT_SHARE_DIVISOR).
MAX_DESCRIPTORS = 256
FD_LIMIT_SHARE_DIVISOR = 4  # watches take at most 1/4 of RLIMIT_NOFILE: the rest is for clients and files

Plan = List[Tuple[str, bool]]  # [(path, is_directory)]: what is watched, directories first
Watches = Mapping[int, Tuple[str, bool]]  # a watch's descriptor → (its path, is_directory)


class Kevent(Protocol):
    """What `interpret` reads of a kevent (`select.kevent`, or a plain object in tests; `flags` is optional)."""

    @property
    def ident(self) -> int:
        """The descriptor the kevent is about."""

    @property
    def filter(self) -> int:
        """Its filter (EVFILT_VNODE)."""

    @property
    def fflags(self) -> int:
        """Its filter flags (NOTE_*)."""


def descriptor_budget(soft_fd_limit: int | None) -> int:
    """How many watch descriptors may be opened, given the process's soft RLIMIT_NOFILE (None: unknown or
    unlimited)."""
    if soft_fd_limit is None or soft_fd_limit < 0:
        return MAX_DESCRIPTORS
    return max(0, min(MAX_DESCRIPTORS, soft_fd_limit // FD_LIMIT_SHARE_DIVISOR))


class BudgetExceeded(Exception):
    """More paths to watch than descriptors allowed; str() says how many of each."""


def plan_watches(directories: Iterable[str], files: Iterable[str], budget: int) -> Plan:
    """[(path, is_directory)]: the directories first, then the files, each once, in a stable order.

    `directories` are the (existing) directories to watch, `files` the existing files. Raises BudgetExceeded
    when they do not fit in `budget` descriptors: watching some files and not others would make in-place writes
    to the others wait for the safety rescan, a difference nobody could see from the outside."""
    plan = [(path, True) for path in dict.fromkeys(directories)]
    seen = set(path for path, _ in plan)
    plan.extend((path, False) for path in dict.fromkeys(files) if path not in seen)
    if len(plan) > budget:
        raise BudgetExceeded("%d paths to watch (%d directories, %d files) exceed the kqueue descriptor budget "
                             "of %d" % (len(plan), len(seen), len(plan) - len(seen), budget))
    return plan


class VnodeChange:
    """What happened to one watched path in a batch of kevents (its fflags OR'ed together)."""

    __slots__ = ("ident", "path", "is_directory", "fflags")

    def __init__(self, ident: int, path: str, is_directory: bool, fflags: int) -> None:
        self.ident = ident  # the watch's descriptor
        self.path = path
        self.is_directory = is_directory
        self.fflags = fflags

    @property
    def gone(self) -> bool:
        return bool(self.fflags & GONE_FFLAGS)

    @property
    def entries_changed(self) -> bool:
        return self.is_directory and bool(self.fflags & ENTRIES_FFLAGS)

    @property
    def needs_rearm(self) -> bool:
        """The watch set must be computed again: a watched path went, or a directory's entries changed."""
        return self.gone or self.entries_changed

    @property
    def write_in_progress(self) -> bool:
        """Only a file's contents written: kqueue reports no close, so the writer may not be done."""
        return not self.is_directory and not self.fflags & ~(NOTE_WRITE | NOTE_EXTEND | NOTE_ATTRIB)

    def __repr__(self) -> str:
        return "VnodeChange(path=%r, is_directory=%r, fflags=%#x)" % (self.path, self.is_directory, self.fflags)


def interpret(kevents: Iterable[Kevent], watches: Watches, vnode_filter: int = EVFILT_VNODE) -> list[VnodeChange]:
    """[VnodeChange] for a batch of kevents, one per watched path, in order of first appearance.

    `watches` maps a descriptor (the kevent's ident) to (path, is_directory). A kevent for a descriptor no longer
    watched (closed by a rearm since) or of another filter is dropped. An EV_ERROR kevent says the watch is
    broken: it counts as the path gone (opened again at the rearm)."""
    changes: dict[int, VnodeChange] = {}
    for kevent in kevents:
        if kevent.filter != vnode_filter or kevent.ident not in watches:
            continue
        fflags = kevent.fflags
        if getattr(kevent, "flags", 0) & EV_ERROR:
            fflags = NOTE_REVOKE
        change = changes.get(kevent.ident)
        if change is None:
            path, is_directory = watches[kevent.ident]
            changes[kevent.ident] = VnodeChange(kevent.ident, path, is_directory, fflags)
        else:
            change.fflags |= fflags
    return list(changes.values())


def paths_to_recheck(changes: Iterable[VnodeChange], files_by_directory: Mapping[str, Sequence[str]]) -> list[str]:
    """The paths the poller should look at for these changes: a file that was written, extended, touched or
    went; a directory whose entries changed, with every watched file in it (one of them may have been replaced
    by a rename: that is reported on the directory, and on the old file only as deleted). `files_by_directory`
    maps a watched directory to the watched files in it (as planned before the changes)."""
    paths = []
    for change in changes:
        paths.append(change.path)
        if change.entries_changed:
            paths.extend(files_by_directory.get(change.path, ()))
    return list(dict.fromkeys(paths))


def files_by_directory(plan: Sequence[tuple[str, bool]], dirname: Callable[[str], str]) -> dict[str, list[str]]:
    """{directory: [watched files directly in it]} for a plan; `dirname` is os.path.dirname (kept out of here)."""
    directories = {path for path, is_directory in plan if is_directory}
    grouped: dict[str, list[str]] = {}
    for path, is_directory in plan:
        if not is_directory:
            parent = dirname(path)
            if parent in directories:
                grouped.setdefault(parent, []).append(path)
    return grouped
