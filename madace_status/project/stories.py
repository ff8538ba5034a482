"""The story status file (README, "`data` of each kind"): sections, milestones, the five story-line forms,
continuations."""

from __future__ import annotations

import re

from madace_status.project.files import MAX_MARKDOWN_BYTES, SourceError, decode_markdown, display_path, read_source
from madace_status.project.model import Story, whole_number

TYPE_CHECKING = False  # mypy reads True; `typing` is not imported at run time (it would slow every `status`)
if TYPE_CHECKING:
    from madace_status.project.model import Points

__all__ = ["StoryFile", "section_of", "parse_story_file", "read_story_file"]

# Every pattern is linear: no nested or overlapping quantifiers, so a hostile line cannot stall it.
_HEADING = re.compile(r"[ ]{0,3}(#{1,6})(?:[ \t]+(.*))?\Z")
_SECTION = re.compile(r"[\W_]*(BACKLOG|TO[ _-]?DO|IN[ _-]?PROGRESS|DONE)(?![A-Za-z0-9_])", re.IGNORECASE)
_MILESTONE = re.compile(r"[\W_]*milestone\b", re.IGNORECASE)
_FENCE = re.compile(r"[ ]{0,3}(```|~~~)")
# bullet, then (emoji/markers), optional [ ]/[x] checkbox, (markers), optional **, [ID], optional **
_STORY_LINE = re.compile(
    r"[ \t]*[-*+](?=\s)([^\w\[*]*)(?:\[([ xX])\]([^\w\[*]*))?(?:\*\*|__)?"
    r"\[([A-Za-z]+(?:-[A-Za-z0-9]+)+)\](?:\*\*|__)?:?(?:\*\*|__)?(.*)\Z")
_POINTS_BRACKET = re.compile(
    r"[\[(][ \t]*(?:(?:story[ \t]+)?(?:points?|pts?|sp)[ \t]*:[ \t]*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)[ \t]*"
    r"(?:story[ \t]+)?(?:points?|pts?|sp))[ \t]*[\])]", re.IGNORECASE)
_POINTS_FIELD = re.compile(
    r"(?:(?:story[ \t]+)?(?:points?|pts?|sp)[ \t]*:[ \t]*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)[ \t]*"
    r"(?:story[ \t]+)?(?:points?|pts?|sp))\Z", re.IGNORECASE)
_LABELLED_DATE = re.compile(
    r"\(?(?:\*\*)?\b(due|started|start|completed|done|finished)(?:\*\*)?[ \t]*:(?:\*\*)?[ \t]*"
    r"(\d{4}-\d{2}-\d{2})\)?", re.IGNORECASE)
_LONE_DATE = re.compile(r"\((\d{4}-\d{2}-\d{2})\)")
_ASSIGNEE_FIELD = re.compile(r"(?:(?:assignee|owner|developer|dev|assigned[ \t]+to)[ \t]*:[ \t]*)?@([\w.-]+)\Z",
                             re.IGNORECASE)
# `  - **Done**` at the end of a title, matched on the REVERSED title from its start: anchored, so linear
# (the forward pattern searched from every position backtracked quadratically on long runs of spaces).
_TRAILING_STATE_REVERSED = re.compile(r"(?:\*\*|__)[A-Za-z _]*[A-Za-z](?:\*\*|__)?[ \t]+[-–—][ \t]+")
_KEY_VALUE = re.compile(
    r"(?:[-*+][ \t]+)?(?:\*\*([^*:]+):[ \t]*\*\*|\*\*([^*]+)\*\*[ \t]*:|([A-Za-z][A-Za-z ]{0,30}):)"
    r"[ \t]*(.*)\Z")
_ASSIGNEE_VALUE = re.compile(r"@?([\w.-]+)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SPACES = re.compile(r"[ \t]{2,}")
_DONE_MARKS = frozenset("✅✔☑✓")

_DATE_FIELDS: dict[str, str] = {"due": "due_date", "started": "started_date", "start": "started_date",
                "completed": "completed_date", "done": "completed_date", "finished": "completed_date"}
_ASSIGNEE_KEYS = frozenset(("developer", "dev", "assignee", "owner", "assigned to"))
_POINTS_KEYS = frozenset(("points", "story points", "pts", "estimate"))


class StoryFile:
    """What one status file yields: its stories (file order) and warnings ("line N: …")."""

    __slots__ = ("stories", "warnings")

    def __init__(self, stories: list[Story], warnings: list[str]) -> None:
        self.stories = stories
        self.warnings = warnings


def section_of(heading_text: str) -> str | None:
    """`🔄 In Progress (1/1)` → `IN_PROGRESS`; None for a heading that is not a state."""
    match = _SECTION.match(heading_text)
    if not match:
        return None
    word = match.group(1).upper().replace(" ", "").replace("_", "").replace("-", "")
    return {"BACKLOG": "BACKLOG", "TODO": "TODO", "INPROGRESS": "IN_PROGRESS", "DONE": "DONE"}[word]


def parse_story_file(text: str) -> StoryFile:
    """Parse the markdown text of a story status file. Pure; never raises."""
    stories: list[Story] = []
    warnings: list[str] = []
    first_seen: dict[str, int] = {}
    section: str | None = None
    milestone: str | None = None
    current: Story | None = None            # the story that indented lines continue
    fence: str | None = None
    in_comment = False
    for number, line in enumerate(text.splitlines(), 1):
        if fence is not None:
            if line.lstrip().startswith(fence):
                fence = None
            continue
        if in_comment:
            if "-->" in line:
                in_comment = False
            continue
        stripped = line.strip()
        if not stripped:
            continue
        first = stripped[0]
        if first == "<" and stripped.startswith("<!--"):
            in_comment = "-->" not in stripped
            continue
        fence_match = _FENCE.match(line) if first == "`" or first == "~" else None
        if fence_match:
            fence = fence_match.group(1)
            current = None
            continue
        if first == "#":
            heading = _HEADING.match(line)
            if heading:
                current = None
                level = len(heading.group(1))
                title = _heading_text(heading.group(2) or "")
                if level <= 2:
                    section = section_of(title) if level == 2 else None
                    milestone = None
                elif level == 3 and section is not None:
                    if section == "BACKLOG" or _MILESTONE.match(title):
                        milestone = _clean_text(title) or None
                    else:
                        milestone = None
                continue
        story_match = _STORY_LINE.match(line) if first in "-*+" else None
        if story_match:
            current = None
            if section is None:
                continue
            story = _story_from_match(story_match, section, milestone, number)
            if story is None:
                continue
            if story.id in first_seen:
                warnings.append("line %d: duplicate story id %s (first at line %d); the first is used"
                                % (number, story.id, first_seen[story.id]))
                continue
            first_seen[story.id] = number
            stories.append(story)
            current = story
            continue
        if current is not None and line[0] in " \t":
            _continue_story(current, stripped)
            continue
        current = None
    return StoryFile(stories, warnings)


def _story_from_match(match: re.Match[str], section: str, milestone: str | None, number: int) -> Story | None:
    lead, box, after_box, raw_id, rest = match.groups()
    story_id = raw_id.upper()
    if story_id.startswith("EPIC-"):
        return None
    checked = box == "x" or box == "X"
    if not checked:
        marks = (lead + after_box) if after_box else lead
        checked = bool(marks.strip()) and not _DONE_MARKS.isdisjoint(marks)
    story = Story(story_id, "", section, milestone=milestone, checked=checked, line=number)
    notes: list[str] = []
    if "|" in rest:
        parts = rest.split("|")
        title = parts[0]
        for part in parts[1:]:
            field = part.strip()
            if field and not _apply_field(story, field):
                notes.append(_clean_text(field))
    else:
        title = rest
    title = _take_inline_fields(story, title, section)
    story.title = _clean_text(title) or story_id
    if notes:
        story.note = "; ".join(n for n in notes if n) or None
    return story


def _apply_field(story: Story, field: str) -> bool:
    """One `| … |` field of form 1; False when it is none of the known kinds."""
    first = field[0]
    if first.isdigit() or first in "PpSs":           # `3 points`, `Points: 3`, `SP: 3`
        points = _POINTS_FIELD.match(field)
        if points:
            if story.points is None:
                story.points = _to_number(points.group(1) or points.group(2))
            return True
    if "@" in field:                                   # `@john`, `Assignee: @john`
        assignee = _ASSIGNEE_FIELD.match(field)
        if assignee:
            if story.assignee is None:
                story.assignee = assignee.group(1)
            return True
    if ":" in field:                                   # `Due: 2026-01-02`
        date = _LABELLED_DATE.match(field)
        if date and date.end() == len(field):
            _set_date(story, date.group(1), date.group(2))
            return True
    return False


def _take_inline_fields(story: Story, title: str, section: str) -> str:
    """Remove `[Points: 3]`, `(3 pts)`, `Due: …`, a lone `(YYYY-MM-DD)` and `- **DONE**` from the title."""
    if "[" in title or "(" in title:
        match = _POINTS_BRACKET.search(title)
        if match:
            if story.points is None:
                story.points = _to_number(match.group(1) or match.group(2))
            title = title[:match.start()] + " " + title[match.end():]
    if ":" in title:
        for match in list(_LABELLED_DATE.finditer(title)):
            _set_date(story, match.group(1), match.group(2))
        title = _LABELLED_DATE.sub(" ", title)
    if "(" in title and section in ("DONE", "IN_PROGRESS"):
        match = _LONE_DATE.search(title)
        if match:
            # A lone date is when the story entered its state: done in DONE, started in IN PROGRESS.
            if section == "DONE" and story.completed_date is None:
                story.completed_date = match.group(1)
            elif section == "IN_PROGRESS" and story.started_date is None:
                story.started_date = match.group(1)
            title = title[:match.start()] + " " + title[match.end():]
    title = title.rstrip()
    if title.endswith("**") or title.endswith("__"):
        match = _TRAILING_STATE_REVERSED.match(title[::-1])
        if match:
            title = title[:len(title) - match.end()]
    return title


def _continue_story(story: Story, text: str) -> None:
    """An indented line under a story: `**Status:** …` → note, `**Developer:** @x` → assignee, …"""
    match = _KEY_VALUE.match(text)
    if match:
        label = (match.group(1) or match.group(2) or match.group(3)).strip()
        key = label.lower()
        value = match.group(4).strip()
        if key in _ASSIGNEE_KEYS:
            found = _ASSIGNEE_VALUE.match(value)
            if found and story.assignee is None:
                story.assignee = found.group(1)
            return
        if key in _POINTS_KEYS:
            found = _NUMBER.match(value)
            if found and story.points is None:
                story.points = _to_number(found.group(0))
            return
        if key in _DATE_FIELDS:
            found = _DATE.match(value)
            if found:
                _set_date(story, key, found.group(0), overwrite=False)
            return
        if key in ("status", "note", "notes"):
            _add_note(story, _clean_text(value))
            return
        _add_note(story, "%s: %s" % (label, _clean_text(value)))
        return
    if text[0] in "-*+" and len(text) > 1 and text[1] in " \t":
        text = text[2:]
    _add_note(story, _clean_text(text))


def _heading_text(text: str) -> str:
    """Drop a closing `#` sequence (`## DONE ##` → `DONE`) but keep `C#`."""
    text = text.rstrip()
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        text = bare.rstrip()
    return text


def _add_note(story: Story, text: str) -> None:
    if text:
        story.note = text if story.note is None else story.note + "; " + text


def _set_date(story: Story, label: str, value: str, overwrite: bool = True) -> None:
    attr = _DATE_FIELDS[label.lower()]
    if overwrite or getattr(story, attr) is None:
        setattr(story, attr, value)


def _to_number(text: str) -> Points:
    return int(text) if text.isdigit() else whole_number(float(text))


def _clean_text(text: str) -> str:
    """Strip bold/italic wrappers, `[ ]` residue and runs of spaces from a title or value."""
    text = text.strip()
    for wrapper in ("**", "__"):
        if text.startswith(wrapper) and text.endswith(wrapper) and len(text) > 2 * len(wrapper):
            text = text[len(wrapper):-len(wrapper)].strip()
    if text.startswith(":"):
        text = text[1:].strip()
    if "  " in text or "\t" in text:
        text = _SPACES.sub(" ", text.replace("\t", " "))
    return text


def read_story_file(path: str, root: str, boundary: str | None = None) -> tuple[StoryFile, str | None]:
    """Read a story status file: (StoryFile, error or None). Paths in messages are relative to `root`;
    a symlink may not leave `boundary` (default `root`)."""
    source = display_path(path, root)
    try:
        data = read_source(path, boundary or root, MAX_MARKDOWN_BYTES)
    except SourceError as exc:
        return StoryFile([], []), "%s: %s" % (source, exc)
    text, decode_warning = decode_markdown(data)
    parsed = parse_story_file(text)
    warnings = ["%s: %s" % (source, message) for message in parsed.warnings]
    if decode_warning:
        warnings.insert(0, "%s: %s" % (source, decode_warning))
    return StoryFile(parsed.stories, warnings), None
