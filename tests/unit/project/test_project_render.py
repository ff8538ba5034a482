"""Renderers: table (box drawing, ASCII, width, colour), markdown and the JSON envelope, for every kind."""

import json
import re

import pytest

from madace_status.project.loader import ProjectPaths, load_project
from madace_status.project.registry import resolve
from madace_status.project.render.envelope import ENVELOPE_KEYS, render_json, utc_timestamp
from madace_status.project.render.markdown import md, render_markdown
from madace_status.project.render.table import Column, TableStyle, draw_table, render_table
from madace_status.project.render.text import (ASCII, UNICODE, cut, display_width, glyphs_for, progress_bar,
                                               wrap)

ENTITIES = ["", "stories", "epics", "workflows", "STORY-V3-020", "EPIC-V3-002", "pm-planning",
            "dev-implementation", "architecture-review"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def sample(sample_root):
    return load_project(ProjectPaths(sample_root))


def table(entity, width=120, glyphs=UNICODE, color=False):
    return render_table(entity, TableStyle(glyphs=glyphs, color=color, width=width))


@pytest.mark.parametrize("percent,bar", [(0, "[░░░░░░░░░░░░░░░░░░░░] 0%"), (40, "[████████░░░░░░░░░░░░] 40%"),
                                         (33, "[███████░░░░░░░░░░░░░] 33%"), (100, "[" + "█" * 20 + "] 100%")])
def test_progress_bar_has_twenty_cells(percent, bar):
    assert progress_bar(percent, UNICODE) == bar


def test_ascii_progress_bar():
    assert progress_bar(40, ASCII) == "[########------------] 40%"


def test_glyphs_fall_back_to_ascii_when_the_encoding_cannot_carry_box_drawing():
    assert glyphs_for("utf-8") is UNICODE
    assert glyphs_for("ascii") is ASCII
    assert glyphs_for("latin-1") is ASCII
    assert glyphs_for("utf-8", force_ascii=True) is ASCII
    assert glyphs_for("no-such-codec") is ASCII


def test_cut_uses_an_ellipsis_and_counts_wide_characters():
    assert cut("abcdefghij", 6, "…") == "abcde…"
    assert cut("abcdefghij", 6, "...") == "abc..."
    assert cut("short", 6, "…") == "short"
    assert display_width("日本語") == 6 and display_width(cut("日本語テキスト", 7, "…")) <= 7


def test_wrap_breaks_at_spaces_and_splits_long_words():
    assert wrap("one two three", 7) == ["one two", "three"]
    assert wrap("abcdefghij", 4) == ["abcd", "efgh", "ij"]


def test_summary_table_shows_the_state_rows_limits_and_workflow_bars(sample):
    text = table(resolve(sample, ""))
    assert re.search(r"│ BACKLOG\s+│\s+5 │\s+15 │\s+∞ │", text)
    assert re.search(r"│ TODO\s+│\s+1 │\s+5 │\s+1 │", text)
    assert re.search(r"│ IN PROGRESS\s+│\s+1 │\s+3 │\s+1 │", text)
    assert re.search(r"│ DONE\s+│\s+4 │\s+9 │\s+∞ │", text)
    assert re.search(r"│ TOTAL\s+│\s+11 │\s+32 │", text)
    assert "[████████░░░░░░░░░░░░] 40%" in text and "3/5" in text
    assert "architecture-review: LLM API timeout" in text
    assert "⚠" not in text
    for glyph in "┌┬┐├┼┤└┴┘│─":
        assert glyph in text


def test_a_violated_row_is_marked_in_table_and_markdown(project):
    project.stories("## TODO\n- [US-1] a\n- [US-2] b\n")
    entity = resolve(load_project(ProjectPaths(project.root)), "")
    text = table(entity)
    assert re.search(r"│ TODO ⚠\s+│\s+2 │", text)
    assert "⚠ WIP limit exceeded: TODO holds 2 stories (limit 1): US-1, US-2" in text
    assert "| TODO ⚠ | 2 |" in render_markdown(entity)
    assert "(!)" not in text
    assert "TODO !" in table(entity, glyphs=ASCII)


@pytest.mark.parametrize("width", [40, 60, 80, 100, 160])
@pytest.mark.parametrize("entity_text", ENTITIES)
def test_every_table_line_fits_the_width(sample, entity_text, width):
    text = table(resolve(sample, entity_text), width=width)
    for line in text.splitlines():
        assert display_width(line) <= width, (width, line)


def test_ascii_tables_use_only_ascii_box_characters(sample):
    for entity_text in ENTITIES:
        text = table(resolve(sample, entity_text), glyphs=ASCII)
        assert not set("┌┬┐├┼┤└┴┘│─█░∞…") & set(text)
        assert "+-" in text and "|" in text


def test_long_text_is_cut_with_an_ellipsis(project):
    project.stories("## BACKLOG\n- [US-1] " + "word " * 100 + "\n")
    text = table(resolve(load_project(ProjectPaths(project.root)), "stories"), width=80)
    assert "…" in text
    assert "..." in table(resolve(load_project(ProjectPaths(project.root)), "stories"), width=80, glyphs=ASCII)


def test_colour_only_when_asked_and_it_never_changes_the_layout(sample):
    entity = resolve(sample, "workflows")
    plain = table(entity)
    coloured = table(entity, color=True)
    assert "\x1b[" not in plain and "\x1b[" in coloured
    assert ANSI.sub("", coloured) == plain


def test_control_characters_from_files_never_reach_the_terminal(project):
    project.stories("## TODO\n- [US-1] evil \x1b[2J title \x07\n")
    entity = resolve(load_project(ProjectPaths(project.root)), "US-1")
    for text in (table(entity), render_markdown(entity)):
        assert "\x1b" not in text and "\x07" not in text
    assert "\\u001b" in render_json(entity)


def test_draw_table_drops_the_optional_column_first():
    columns = [Column("A"), Column("B", drop=1)]
    lines = draw_table(columns, [["x" * 30, "y" * 30]], TableStyle(width=40))
    assert "B" not in lines[1] and "x" * 30 in lines[3]


@pytest.mark.parametrize("entity_text,kind,entity_id", [
    ("", "summary", None), ("stories", "stories", None), ("epics", "epics", None), ("workflows", "workflows", None),
    ("STORY-V3-020", "story", "STORY-V3-020"), ("EPIC-MAM", "epic", "EPIC-MAM"),
    ("pm-planning", "workflow", "pm-planning")])
def test_json_envelope_is_the_same_for_every_kind(sample, entity_text, kind, entity_id):
    document = json.loads(render_json(resolve(sample, entity_text)))
    assert tuple(document) == ENVELOPE_KEYS
    assert (document["entityType"], document["entityId"]) == (kind, entity_id)
    assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z", document["timestamp"])
    assert document["warnings"] == [] and document["errors"] == []


def test_json_list_data_holds_count_items_and_violations(sample):
    stories = json.loads(render_json(resolve(sample, "stories")))["data"]
    assert (stories["count"], len(stories["stories"]), stories["violations"]) == (11, 11, [])
    epics = json.loads(render_json(resolve(sample, "epics")))["data"]
    assert epics["count"] == 3 and [e["id"] for e in epics["epics"]] == ["EPIC-MAM", "EPIC-V3-001", "EPIC-V3-002"]
    flows = json.loads(render_json(resolve(sample, "workflows")))["data"]
    assert flows["count"] == 5 and flows["workflows"][0]["name"] == "architecture-review"


def test_utc_timestamp_format():
    assert utc_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert utc_timestamp(1.5) == "1970-01-01T00:00:01.500Z"


def test_markdown_summary_is_gfm(sample):
    text = render_markdown(resolve(sample, ""))
    assert text.startswith("# Project status\n")
    assert "| State | Count | Points | Limit |\n| --- | ---: | ---: | ---: |" in text
    assert "| BACKLOG | 5 | 15 | ∞ |" in text and "| **TOTAL** | **11** | **32** |" in text
    assert "| pm-planning | `in_progress` | 3/5 | `[████████░░░░░░░░░░░░] 40%` |" in text


@pytest.mark.parametrize("entity_text", ENTITIES)
def test_markdown_tables_have_consistent_column_counts(sample, entity_text):
    blocks = [[]]
    for line in render_markdown(resolve(sample, entity_text)).splitlines():
        if line.startswith("| "):
            blocks[-1].append(len(re.split(r"(?<!\\)\|", line)))
        elif blocks[-1]:
            blocks.append([])
    tables = [block for block in blocks if block]
    assert tables or entity_text in ("STORY-V3-020", "EPIC-V3-002")   # these two are bullet lists
    for block in tables:
        assert len(block) >= 2 and len(set(block)) == 1, block


def test_markdown_escapes_pipes_and_html():
    assert md("a | b <script>") == "a \\| b &lt;script&gt;"


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from madace_status.project.model import Project, Story  # noqa: E402
from madace_status.project.registry import find, Query  # noqa: E402

cell_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60) | \
    st.sampled_from(["日本語のタイトル", "🚀 launch ✅", "e\u0301t\u0301e\u0301", "a\tb\nc", "x" * 200])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(cell_text, cell_text, cell_text), min_size=1, max_size=6), st.integers(60, 200),
       st.booleans())
def test_story_tables_fit_any_width_whatever_the_text(rows, width, ascii_glyphs):
    stories = [Story("US-%d" % i, title, "BACKLOG", assignee=who or None, milestone=group or None)
               for i, (title, who, group) in enumerate(rows)]
    entity = find(Project("/", [], stories, []), Query("stories"))
    text = table(entity, width=width, glyphs=ASCII if ascii_glyphs else UNICODE)
    for line in text.splitlines():
        assert display_width(line) <= width, line
