"""The story status file: every line form, section, milestone, continuation and bad input of README, "`data` of each
kind"."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from madace_status.project.model import story_violations
from madace_status.project.stories import parse_story_file, read_story_file, section_of


def parse(text):
    return parse_story_file(text)


def only(text):
    stories = parse(text).stories
    assert len(stories) == 1, stories
    return stories[0]


def test_line_form_1_checkbox_bold_id_and_pipe_fields():
    s = only("## TODO\n- [ ] **[STORY-002]** Second story | 3 points | @john | Started: 2025-10-20\n")
    assert (s.id, s.title, s.status, s.points, s.assignee, s.started_date, s.checked) == \
        ("STORY-002", "Second story", "TODO", 3, "john", "2025-10-20", False)


def test_line_form_1_checked_box():
    assert only("## DONE\n- [x] **[STORY-003]** Done one | 1 point\n").checked is True
    assert only("## DONE\n- [X] **[STORY-003]** Done one\n").checked is True


def test_line_form_2_bold_id_lone_date_and_points_in_brackets():
    s = only("## DONE\n- **[STORY-V3-019]** Implement watch mode (2025-10-29) [Points: 1]\n")
    assert (s.id, s.title, s.points, s.completed_date) == ("STORY-V3-019", "Implement watch mode", 1, "2025-10-29")


def test_a_lone_date_in_progress_is_the_start_date():
    s = only("## IN PROGRESS\n- **[STORY-V3-020]** Integrate WebSocket (2026-11-22) [Points: 3]\n")
    assert (s.started_date, s.completed_date, s.title) == ("2026-11-22", None, "Integrate WebSocket")


def test_line_form_3_plain_id():
    s = only("## BACKLOG\n- [TEST-001] Title [Points: 3]\n")
    assert (s.id, s.title, s.points, s.checked) == ("TEST-001", "Title", 3, False)


def test_line_form_4_emoji_marker_parenthesised_points_and_trailing_done():
    s = only("## DONE\n- ✅ [PLAN-001] Assess PRD and create epics (5 points) - **DONE**\n")
    assert (s.id, s.title, s.points, s.checked) == ("PLAN-001", "Assess PRD and create epics", 5, True)


@pytest.mark.parametrize("line,points", [("* [US-1] A [3 pts]", 3), ("* [US-1] A (3 pts)", 3),
                                         ("+ [US-1] A (2 points)", 2), ("* **[US-1]** A | 8 pts", 8),
                                         ("- [US-1] A [0.5 points]", 0.5), ("- [US-1] A", None)])
def test_line_form_5_star_bullets_and_every_points_spelling(line, points):
    s = only("## BACKLOG\n" + line + "\n")
    assert (s.id, s.title, s.points) == ("US-1", "A", points)


def test_ids_are_case_insensitive_and_normalised_to_upper_case():
    assert only("## TODO\n- [ ] **[story-v3-020]** x\n").id == "STORY-V3-020"


def test_epic_ids_are_not_stories():
    assert parse("## BACKLOG\n- [EPIC-MAM] The epic\n- [ ] **[EPIC-V3-001]** x\n").stories == []


def test_due_and_completed_dates_are_read():
    s = only("## DONE\n- [x] **[US-9]** T | 2 points | @a | Due: 2026-01-02 | Started: 2026-01-01 | "
             "Completed: 2026-01-03\n")
    assert (s.due_date, s.started_date, s.completed_date) == ("2026-01-02", "2026-01-01", "2026-01-03")


@pytest.mark.parametrize("heading,state", [
    ("## BACKLOG", "BACKLOG"), ("## backlog", "BACKLOG"), ("## Todo", "TODO"), ("## TODO (max 1)", "TODO"),
    ("## IN PROGRESS", "IN_PROGRESS"), ("## IN_PROGRESS", "IN_PROGRESS"), ("## In Progress", "IN_PROGRESS"),
    ("## 🔄 IN PROGRESS", "IN_PROGRESS"), ("## DONE ✅", "DONE"), ("## ✅ Done", "DONE"),
    ("## Done — shipped", "DONE"), ("## DONE ##", "DONE")])
def test_section_headings_in_any_case_with_emoji_or_trailing_text(heading, state):
    assert only(heading + "\n- [US-1] x\n").status == state


def test_section_of_rejects_other_headings():
    assert section_of("Notes") is None
    assert section_of("DONE_ITEMS") is None
    assert section_of("Backlogged ideas") is None


def test_any_other_level_two_heading_ends_the_section():
    stories = parse("## TODO\n- [US-1] a\n## Notes\n- [US-2] b\n# Title\n- [US-3] c\n").stories
    assert [s.id for s in stories] == ["US-1"]


def test_stories_before_any_section_are_ignored():
    assert parse("# Status\n- [US-1] a\n").stories == []


def test_milestone_headings_set_the_milestone_of_the_stories_below():
    text = ("## BACKLOG\n- [US-0] none\n### Milestone 2.1: Name\n- [US-1] a\n### Other group\n- [US-2] b\n"
            "## TODO\n### Milestone 3: Later\n- [US-3] c\n### Notes\n- [US-4] d\n")
    milestones = {s.id: s.milestone for s in parse(text).stories}
    assert milestones == {"US-0": None, "US-1": "Milestone 2.1: Name", "US-2": "Other group",
                          "US-3": "Milestone 3: Later", "US-4": None}


def test_continuation_lines_give_a_note_and_the_assignee_when_none_was_given():
    s = only("## IN PROGRESS\n- **[STORY-V3-020]** Integrate (2026-11-22) [Points: 3]\n"
             "  **Status:** Implementing CLI watch mode\n  **Developer:** @alex\n")
    assert (s.note, s.assignee) == ("Implementing CLI watch mode", "alex")


def test_continuation_assignee_does_not_override_an_explicit_one():
    s = only("## TODO\n- [ ] **[US-1]** T | @sam\n  **Developer:** @alex\n")
    assert s.assignee == "sam"


def test_other_continuation_lines_are_kept_in_the_note():
    s = only("## TODO\n- [US-1] T\n  **Branch:** feature/x\n\n  free text here\nNot indented\n  more? no\n")
    assert s.note == "Branch: feature/x; free text here"


def test_an_indented_story_line_is_a_story_of_its_own():
    stories = parse("## TODO\n- [US-1] T\n  - [ ] [TASK-2] sub task\n").stories
    assert [(s.id, s.note) for s in stories] == [("US-1", None), ("TASK-2", None)]


def test_placeholders_and_rule_lines_are_not_stories():
    text = ("## TODO\n\n(Empty)\n- (Empty)\n- _None yet_\n**MADACE Rule**: Maximum ONE story in TODO.\n"
            "- **MADACE Rule**: one at a time\n")
    assert parse(text).stories == []


def test_duplicate_ids_warn_and_the_first_wins():
    result = parse("## TODO\n- [US-1] first\n## DONE\n- [us-1] second\n")
    assert [(s.id, s.title, s.status) for s in result.stories] == [("US-1", "first", "TODO")]
    assert result.warnings == ["line 4: duplicate story id US-1 (first at line 2); the first is used"]


def test_two_stories_in_todo_are_a_violation():
    stories = parse("## TODO\n- [US-1] a\n- [US-2] b\n## IN PROGRESS\n- [US-3] c\n## DONE\n- [US-4] d\n- [US-5] e\n").stories
    violations = story_violations(stories)
    assert [(v.state, v.limit, v.story_ids) for v in violations] == [("TODO", 1, ["US-1", "US-2"])]
    assert violations[0].message == "WIP limit exceeded: TODO holds 2 stories (limit 1): US-1, US-2"


def test_crlf_line_endings_parse_like_lf():
    text = "## TODO\r\n- [ ] **[US-1]** Title | 3 points | @sam\r\n  **Status:** note\r\n"
    s = only(text)
    assert (s.title, s.points, s.assignee, s.note) == ("Title", 3, "sam", "note")


def test_fenced_code_is_not_read():
    assert parse("## TODO\n```\n- [US-1] example\n```\n- [US-2] real\n").stories[0].id == "US-2"


def test_html_comments_are_not_read():
    assert [s.id for s in parse("## TODO\n<!--\n- [US-1] hidden\n-->\n- [US-2] real\n").stories] == ["US-2"]


def test_title_keeps_inline_code_and_text():
    assert only("## DONE\n- [x] **[US-1]** Create `madace status` CLI command | 3 points\n").title == \
        "Create `madace status` CLI command"


def test_read_story_file_drops_a_bom(project):
    path = project.stories(b"\xef\xbb\xbf## TODO\n- [US-1] a\n")
    story_file, error = read_story_file(path, project.root)
    assert error is None and [s.id for s in story_file.stories] == ["US-1"] and story_file.warnings == []


def test_read_story_file_replaces_invalid_utf8_and_warns(project):
    path = project.stories(b"## TODO\n- [US-1] caf\xe9 \xff\n- [US-2] b\n")
    story_file, error = read_story_file(path, project.root)
    assert error is None
    assert [s.id for s in story_file.stories] == ["US-1", "US-2"]
    assert story_file.stories[0].title == "caf\ufffd \ufffd"
    assert story_file.warnings == ["docs/workflow-status.md: contains bytes that are not valid UTF-8; "
                                   "they were replaced with \ufffd"]


def test_read_story_file_reports_a_directory_as_an_error(project):
    import os
    os.makedirs(project.status_file)
    story_file, error = read_story_file(project.status_file, project.root)
    assert story_file.stories == [] and error == "docs/workflow-status.md: is a directory, not a file"


def test_a_long_hostile_line_parses_quickly():
    # Every pattern is linear: these would take minutes with a backtracking-prone expression.
    text = "## TODO\n- " + "✅" * 50000 + "x\n# " + "# " * 50000 + "x\n  **" + " " * 50000 + "x\n"
    assert parse(text).stories == []


story_lines = st.sampled_from(["## TODO", "## DONE ✅", "## Notes", "### Milestone 1: x", "- [US-1] a",
                               "- [ ] **[STORY-V3-2]** b | 3 points | @x", "  **Status:** y", "```",
                               "* ✅ [PLAN-1] c (2 pts) - **DONE**", "", "<!--", "-->", "- [x] [A-1] [Points: z]"])


@settings(max_examples=200, deadline=None)
@given(st.lists(story_lines | st.text(max_size=40), max_size=30))
def test_any_text_parses_without_raising(lines):
    result = parse("\n".join(lines))
    ids = [s.id for s in result.stories]
    assert len(ids) == len(set(ids))
    for s in result.stories:
        assert s.status in ("BACKLOG", "TODO", "IN_PROGRESS", "DONE") and s.title


@pytest.mark.parametrize("count, named", [
    (5, "US-1, US-2, US-3, US-4, US-5"),
    (6, "US-1, US-2, US-3, US-4, US-5 and 1 more"),
    (500, "US-1, US-2, US-3, US-4, US-5 and 495 more"),
])
def test_a_violation_message_names_a_few_stories_then_how_many_more_and_the_json_keeps_them_all(count, named):
    text = "## TODO\n" + "".join("- [US-%d] story %d\n" % (n, n) for n in range(1, count + 1))
    violation, = story_violations(parse(text).stories)
    assert violation.message == "WIP limit exceeded: TODO holds %d stories (limit 1): %s" % (count, named)
    document = violation.to_dict()
    assert document["count"] == count and document["storyIds"] == ["US-%d" % n for n in range(1, count + 1)]
