"""Epic files `EPIC-*.md` (README, "`data` of each kind")."""

from __future__ import annotations

import os
import re

from madace_status.project.files import MAX_MARKDOWN_BYTES, SourceError, decode_markdown, display_path, read_source
from madace_status.project.model import Epic, whole_number

__all__ = ["EPIC_FILE_RE", "MAX_EPIC_STORY_IDS", "epic_id_from_filename", "parse_epic_file", "strip_symbols",
           "read_epic_file", "list_epic_files"]

EPIC_FILE_RE = re.compile(r"\AEPIC-[^/\\]*\.md\Z")
_FILE_ID = re.compile(r"EPIC(?:-[A-Z0-9]+)*(?=[-.])")
_NOT_ID_CHARS = re.compile(r"[^A-Z0-9-]+")
_FIELD = re.compile(r"[ \t]*(?:[-*][ \t]+)?\*\*([^*:]+):[ \t]*\*\*[ \t]*(.*)\Z|"
                    r"[ \t]*(?:[-*][ \t]+)?\*\*([^*]+)\*\*[ \t]*:[ \t]*(.*)\Z")
_STORY_HEADING = re.compile(r"###[ \t]+\[?([A-Za-z]+(?:-[A-Za-z0-9]+)+)\]?[ \t]*:")
_STORY_ITEM = re.compile(r"[ \t]*\d+\.[ \t]+\*\*\[?([A-Za-z]+(?:-[A-Za-z0-9]+)+)\]?[ \t]*:?[ \t]*\*\*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SYMBOLS = re.compile(r"[^\w\s()\[\]/&.,:;+'\"!?#%-]")
_SUMMARY_TITLES = frozenset(("summary", "epic summary"))
_ID_SHAPE = re.compile(r"\AEPIC(?:-[A-Z0-9]+)+\Z")
# storyIds kept per epic: every API record and event carries them; a real epic lists tens.
MAX_EPIC_STORY_IDS = 10000


def epic_id_from_filename(filename: str) -> str | None:
    """`EPIC-V3-002-universal-status-checker.md` → `EPIC-V3-002`; None when not an epic file name."""
    if not EPIC_FILE_RE.match(filename):
        return None
    match = _FILE_ID.match(filename)   # always matches an epic file name: `EPIC` then `-`
    epic_id = match.group(0) if match else "EPIC"
    if epic_id == "EPIC":   # no upper-case segment (`EPIC-lower-case.md`): use the whole stem
        epic_id = _NOT_ID_CHARS.sub("-", filename[:-3].upper()).strip("-")
    return epic_id


def parse_epic_file(text: str, filename: str, source: str = "") -> Epic:
    """Build the Epic record from the markdown text of `filename`. Pure; never raises."""
    epic = Epic(id=epic_id_from_filename(filename) or "EPIC", source=source)
    header = True
    in_summary = False
    summary_lines: list[str] = []
    story_ids = StoryIds()
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if fence is not None:
            if stripped.startswith(fence):
                fence = None
            continue
        if stripped.startswith("```") or stripped.startswith("~~~"):
            fence = stripped[:3]
            continue
        if line.startswith("## "):
            header = False
            in_summary = strip_symbols(line[3:]).lower().rstrip(":") in _SUMMARY_TITLES
            continue
        if line.startswith("# "):
            if header and epic.name is None:
                epic.name = _title_name(line[2:].strip(), epic.id)
            in_summary = False
            continue
        if line.startswith("###"):
            match = _STORY_HEADING.match(line)
            if match:
                story_ids.add(match.group(1))
            in_summary = in_summary and not line.startswith("### ")
            continue
        if in_summary:
            summary_lines.append(stripped)
        if header and "**" in line:
            _header_field(epic, line)
        elif stripped[:1].isdigit():
            match = _STORY_ITEM.match(line)
            if match:
                story_ids.add(match.group(1))
    epic.story_count = len(story_ids.seen)
    epic.story_ids = story_ids.ids
    if story_ids.dropped:
        epic.warnings.append("lists %d story ids; storyIds keeps the first %d"
                             % (len(story_ids.seen), MAX_EPIC_STORY_IDS))
    epic.summary = _paragraphs(summary_lines)
    return epic


class StoryIds:
    """The story ids of one epic file: upper-case, in file order, deduplicated, at most MAX_EPIC_STORY_IDS."""

    __slots__ = ("ids", "seen", "dropped")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.seen: set[str] = set()     # every distinct id (bounded by the file's size): storyCount
        self.dropped = 0

    def add(self, story_id: str) -> None:
        story_id = story_id.upper()
        if story_id in self.seen:
            return
        self.seen.add(story_id)
        if len(self.ids) < MAX_EPIC_STORY_IDS:
            self.ids.append(story_id)
        else:
            self.dropped += 1


def _title_name(title: str, epic_id: str) -> str | None:
    if ":" in title:
        return title.split(":", 1)[1].strip() or None
    if title.upper().startswith(epic_id):
        title = title[len(epic_id):].lstrip(" -–—")
    return title or None


def _header_field(epic: Epic, line: str) -> None:
    match = _FIELD.match(line)
    if not match:
        return
    key = (match.group(1) or match.group(3) or "").strip().lower()
    value = (match.group(2) if match.group(1) is not None else match.group(4) or "").strip()
    if not value:
        return
    if key == "epic id":
        candidate = strip_symbols(value).split()[0].upper() if strip_symbols(value) else ""
        if _ID_SHAPE.match(candidate):
            epic.id = candidate
    elif key == "priority":
        cleaned = strip_symbols(value)
        epic.priority = cleaned.split()[0] if cleaned else None
    elif key in ("effort estimate", "effort", "estimate"):
        number = _NUMBER.search(value)
        if number:
            epic.effort = whole_number(float(number.group(0)))
    elif key in ("target quarter", "quarter"):
        epic.quarter = strip_symbols(value) or None
    elif key == "owner":
        epic.owner = strip_symbols(value) or None
    elif key == "status":
        epic.status = strip_symbols(value) or None
    elif key == "last updated":
        epic.last_updated = strip_symbols(value) or None


def strip_symbols(text: str) -> str:
    """Drop emoji and pictographic symbols: `📋 Planning` → `Planning`, `🔄 In Progress` → `In Progress`."""
    text = _SYMBOLS.sub("", text)
    return " ".join(_strip_edges(text.strip()).split())


def _strip_edges(text: str) -> str:
    """Drop leading symbols (keeping `(`/`[`) and trailing ones (keeping `)`/`]`/`.`/`!`/`?`).

    Two index walks, linear in the text: the former regex `[^\\w)\\].!?]+\\Z` was searched from every
    position and backtracked quadratically on a long run of symbols that did not reach the end.
    """
    start, end = 0, len(text)
    while start < end and not _is_word(text[start]) and text[start] not in "([":
        start += 1
    while end > start and not _is_word(text[end - 1]) and text[end - 1] not in ")].!?":
        end -= 1
    return text[start:end]


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"     # what `\\w` matches in a str pattern


def _paragraphs(lines: list[str]) -> str | None:
    paragraphs = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs) or None


def read_epic_file(path: str, root: str, boundary: str | None = None) -> tuple[Epic, str | None]:
    """Read one epic file: (Epic, warning or None). An unusable file still gives a record, with `error`
    saying why. Paths are shown relative to `root`; a symlink may not leave `boundary` (default `root`)."""
    filename = os.path.basename(path)
    source = display_path(path, root)
    try:
        data = read_source(path, boundary or root, MAX_MARKDOWN_BYTES)
    except SourceError as exc:
        return Epic(id=epic_id_from_filename(filename) or "EPIC", source=source, error=str(exc)), None
    text, decode_warning = decode_markdown(data)
    epic = parse_epic_file(text, filename, source)
    messages = ([decode_warning] if decode_warning else []) + epic.warnings
    warning = "%s: %s" % (source, "; ".join(messages)) if messages else None
    return epic, warning


def list_epic_files(directory: str) -> tuple[list[str], list[str]]:
    """(epic paths, other file names) in `directory`, both sorted (may raise OSError)."""
    epic_paths: list[str] = []
    others: list[str] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if EPIC_FILE_RE.match(entry.name):
                epic_paths.append(entry.path)
            elif not entry.name.startswith("."):
                others.append(entry.name)
    epic_paths.sort()
    others.sort()
    return epic_paths, others
