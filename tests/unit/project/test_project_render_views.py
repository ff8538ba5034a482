"""What every human view shows the same way: a WIP violation on a big board (a few ids, then "and N more", the
JSON keeping them all), the ASCII marks markdown shares with the table, and the assignee written `@name`."""

import json
import re

import pytest

from madace_status.project.loader import ProjectPaths, load_project
from madace_status.project.model import VIOLATION_IDS_SHOWN
from madace_status.project.registry import resolve
from madace_status.project.render.envelope import render_json
from madace_status.project.render.markdown import render_markdown
from madace_status.project.render.table import TableStyle, render_table
from madace_status.project.render.text import ASCII, UNICODE

SAMPLE_ENTITIES = ["", "stories", "epics", "workflows", "STORY-V3-020", "EPIC-V3-002", "EPIC-MAM", "pm-planning",
                   "dev-implementation", "architecture-review"]
TODO_IDS = ["US-%d" % n for n in range(1001, 1501)]   # 500 stories in TODO, limit 1


def table(entity, glyphs=UNICODE, width=300):
    return render_table(entity, TableStyle(glyphs=glyphs, color=False, width=width))


@pytest.fixture
def big_board(project):
    """2,000 stories: 1,000 in BACKLOG, 500 in TODO, 2 IN PROGRESS, 498 DONE."""
    sections = [("BACKLOG", range(1, 1001)), ("TODO", range(1001, 1501)), ("IN PROGRESS", range(1501, 1503)),
                ("DONE", range(1503, 2001))]
    project.stories("".join("## %s\n" % state + "".join("- [US-%d] story %d | @alex\n" % (n, n) for n in numbers)
                            for state, numbers in sections))
    return load_project(ProjectPaths(project.root))


SHORT_TODO = ("WIP limit exceeded: TODO holds 500 stories (limit 1): US-1001, US-1002, US-1003, US-1004, US-1005 "
              "and 495 more")


@pytest.mark.parametrize("entity_text", ["", "stories", "US-1400"])
def test_a_big_boards_violation_names_a_few_stories_in_every_human_view(big_board, entity_text):
    entity = resolve(big_board, entity_text)
    for text in (table(entity), table(entity, glyphs=ASCII), render_markdown(entity),
                 render_markdown(entity, ASCII)):
        assert SHORT_TODO in text
        flagged = [line for line in text.splitlines() if "WIP limit exceeded" in line]
        assert not any("US-1006" in line for line in flagged)   # the sixth TODO story is counted, not named
        assert max(len(line) for line in flagged) < 160


def test_the_json_keeps_every_id_of_a_big_boards_violation(big_board):
    assert VIOLATION_IDS_SHOWN == 5
    for entity_text in ("", "stories"):
        document = json.loads(render_json(resolve(big_board, entity_text)))
        todo, in_progress = document["data"]["violations"]
        assert (todo["state"], todo["count"], todo["limit"]) == ("TODO", 500, 1)
        assert todo["storyIds"] == TODO_IDS and todo["message"] == SHORT_TODO
        assert in_progress["storyIds"] == ["US-1501", "US-1502"]
        assert in_progress["message"] == "WIP limit exceeded: IN PROGRESS holds 2 stories (limit 1): US-1501, US-1502"
        assert SHORT_TODO in document["warnings"]


def test_a_story_the_message_does_not_name_still_shows_its_states_violation(big_board):
    entity = resolve(big_board, "US-1400")
    assert re.search(r"│ Status\s+│ TODO ⚠", table(entity))
    assert "- **Status:** TODO ⚠ (WIP limit exceeded)" in render_markdown(entity)
    assert "- **Status:** TODO ! (WIP limit exceeded)" in render_markdown(entity, ASCII)


@pytest.mark.parametrize("entity_text", SAMPLE_ENTITIES)
def test_ascii_markdown_is_plain_ascii_like_the_ascii_table(sample_root, entity_text):
    entity = resolve(load_project(ProjectPaths(sample_root)), entity_text)
    text = render_markdown(entity, ASCII)
    assert text.isascii(), [line for line in text.splitlines() if not line.isascii()]
    assert table(entity, glyphs=ASCII).isascii()


def test_ascii_markdown_uses_the_tables_ascii_marks_bars_and_infinity(sample_root):
    entity = resolve(load_project(ProjectPaths(sample_root)), "")
    unicode_text, ascii_text = render_markdown(entity), render_markdown(entity, ASCII)
    assert "| BACKLOG | 5 | 15 | ∞ |" in unicode_text and "| BACKLOG | 5 | 15 | inf |" in ascii_text
    assert "`[████████░░░░░░░░░░░░] 40%`" in unicode_text
    assert "`[########------------] 40%`" in ascii_text
    assert re.search(r"\| BACKLOG\s+\|\s+5 \|\s+15 \|\s+inf \|", table(entity, glyphs=ASCII))  # the same symbols


def test_ascii_markdown_marks_violations_warnings_and_errors_like_the_table(project):
    project.stories("## TODO\n- [US-1] a\n- [US-2] b\n")
    project.state("broken", "{not json")
    entity = resolve(load_project(ProjectPaths(project.root)), "")
    text = render_markdown(entity, ASCII)
    assert text.isascii()
    assert "| TODO ! | 2 | 0 | 1 |" in text
    assert "> ! **WIP limit exceeded: TODO holds 2 stories (limit 1): US-1, US-2**" in text
    assert "- ! WIP limit exceeded: TODO holds 2 stories (limit 1): US-1, US-2" in text
    assert re.search(r"^- x madace-data/workflow-states/\.broken\.state\.json: ", text, re.M)
    unicode_text = render_markdown(entity)
    assert "| TODO ⚠ | 2 | 0 | 1 |" in unicode_text and re.search(r"^- ✖ madace-data/", unicode_text, re.M)
    ascii_table = table(entity, glyphs=ASCII)
    assert "! WIP limit exceeded" in ascii_table and "x madace-data/workflow-states/" in ascii_table


BARE_NAME = re.compile(r"(?<![@\w])(alex|dana|sam)\b")


@pytest.mark.parametrize("entity_text", ["stories", "STORY-V3-020", "STORY-V3-016", "STORY-V3-021"])
def test_every_human_view_writes_the_assignee_at_name_and_the_json_the_bare_name(sample_root, entity_text):
    entity = resolve(load_project(ProjectPaths(sample_root)), entity_text)
    for text in (table(entity), table(entity, glyphs=ASCII), render_markdown(entity),
                 render_markdown(entity, ASCII)):
        assert "@alex" in text or "@sam" in text
        assert not BARE_NAME.search(text), BARE_NAME.search(text)
    data = json.loads(render_json(entity))["data"]
    for story in data["stories"] if entity_text == "stories" else [data]:
        assert story["assignee"] in (None, "alex", "dana", "sam")


def test_the_stories_list_and_a_storys_view_agree_on_the_assignee(sample_root):
    loaded = load_project(ProjectPaths(sample_root))
    listed = table(resolve(loaded, "stories"))
    single = table(resolve(loaded, "STORY-V3-020"))
    assert re.search(r"│ STORY-V3-020 .*│ @alex\s+│", listed)
    assert re.search(r"│ Assignee\s+│ @alex\s+│", single)
    assert re.search(r"^\| STORY-V3-020 \|.*\| @alex \|", render_markdown(resolve(loaded, "stories")), re.M)
    assert "- **Assignee:** @alex" in render_markdown(resolve(loaded, "STORY-V3-020"))
