"""Epic files (README, "`data` of each kind"): id, header fields, story count, summary, unreadable and non-epic
files."""

import os

from madace_status.project.epics import (MAX_EPIC_STORY_IDS, epic_id_from_filename, parse_epic_file,
                                         read_epic_file, strip_symbols)
from madace_status.project.model import Epic
from madace_status.sync.replica import record_from_dict

EPIC = """# EPIC-V3-002: Universal Workflow Status Checker

**Priority:** P0 (Critical)
**Effort Estimate:** 21 points (2 weeks)
**Target Quarter:** Q2 2026
**Owner:** SM + DEV
**Status:** 🔄 In Progress
**Last Updated:** 2026-11-22

## Epic Summary

One command and one page,
updated live.

Second paragraph.

## User Stories

### US-001: Check story status
### US-002: Check epic status
### US-002: Check epic status again
1. **US-003:** Numbered form
"""


def test_id_comes_from_the_file_name_upper_case_segments():
    assert epic_id_from_filename("EPIC-V3-002-universal-status-checker.md") == "EPIC-V3-002"
    assert epic_id_from_filename("EPIC-MAM.md") == "EPIC-MAM"
    assert epic_id_from_filename("README.md") is None
    assert epic_id_from_filename("EPIC-V3-002.txt") is None


def test_header_fields_are_read_and_cleaned():
    epic = parse_epic_file(EPIC, "EPIC-V3-002-universal-status-checker.md")
    assert epic.to_dict() == {
        "id": "EPIC-V3-002", "name": "Universal Workflow Status Checker", "priority": "P0", "effort": 21,
        "quarter": "Q2 2026", "owner": "SM + DEV", "status": "In Progress", "lastUpdated": "2026-11-22",
        "storyCount": 3, "storyIds": ["US-001", "US-002", "US-003"], "summary": "One command and one page, updated live.\n\nSecond paragraph.",
        "source": "", "error": None}


def test_epic_id_field_overrides_the_file_name():
    assert parse_epic_file("# EPIC: x\n**Epic ID:** EPIC-V9-001\n", "EPIC-OLD.md").id == "EPIC-V9-001"


def test_short_field_names_and_summary_heading():
    epic = parse_epic_file("# EPIC-MAM: Core\n**Effort:** 8 points\n**Quarter:** Q3\n**Status:** 📋 Planning\n"
                           "\n## Summary\n\nThe state machine.\n\n## Stories\n1. **US-010:** a\n2. **US-011:** b\n",
                           "EPIC-MAM.md")
    assert (epic.effort, epic.quarter, epic.status, epic.summary, epic.story_count) == \
        (8, "Q3", "Planning", "The state machine.", 2)


def test_fields_after_the_first_section_are_not_header_fields():
    epic = parse_epic_file("# EPIC-A: x\n## Details\n**Priority:** P3\n", "EPIC-A.md")
    assert epic.priority is None


def test_missing_fields_are_null_and_name_falls_back_to_the_title():
    epic = parse_epic_file("# EPIC-A Untitled thing\n", "EPIC-A.md")
    assert (epic.name, epic.priority, epic.effort, epic.summary, epic.story_count) == \
        ("Untitled thing", None, None, None, 0)


def test_strip_symbols_removes_emoji_and_keeps_words():
    assert strip_symbols("📋 Planning") == "Planning"
    assert strip_symbols("✅ Done") == "Done"
    assert strip_symbols("🔄 In Progress ⏳") == "In Progress"


def test_an_unreadable_epic_keeps_a_record_with_the_error(project):
    os.makedirs(os.path.join(project.epics, "EPIC-DIR.md"))
    epic, warning = read_epic_file(os.path.join(project.epics, "EPIC-DIR.md"), project.root)
    assert (epic.id, epic.error, warning) == ("EPIC-DIR", "is a directory, not a file", None)


def test_invalid_utf8_in_an_epic_is_replaced_with_a_warning(project):
    path = project.epic("EPIC-X.md", b"# EPIC-X: caf\xe9\n**Priority:** P2\n")
    epic, warning = read_epic_file(path, project.root)
    assert (epic.name, epic.priority) == ("caf\ufffd", "P2")
    assert "not valid UTF-8" in warning


def test_crlf_and_bom_in_an_epic(project):
    path = project.epic("EPIC-Y.md", b"\xef\xbb\xbf# EPIC-Y: Why\r\n**Priority:** P1\r\n\r\n## Summary\r\n\r\nS.\r\n")
    epic, warning = read_epic_file(path, project.root)
    assert (epic.name, epic.priority, epic.summary, warning) == ("Why", "P1", "S.", None)


def test_story_ids_are_upper_case_in_file_order_without_duplicates():
    text = ("# EPIC-A: x\n## Stories\n### us-010: later first\n1. **US-002:** numbered\n"
            "### [US-010]: again, other case\n2. **[us-001]** bracketed\n```\n### US-999: in a fence\n```\n")
    epic = parse_epic_file(text, "EPIC-A.md")
    assert (epic.story_ids, epic.story_count, epic.warnings) == (["US-010", "US-002", "US-001"], 3, [])
    assert epic.to_dict()["storyIds"] == ["US-010", "US-002", "US-001"]


def test_an_epic_without_stories_or_unreadable_has_empty_story_ids(project):
    assert parse_epic_file("# EPIC-A: x\n", "EPIC-A.md").to_dict()["storyIds"] == []
    os.makedirs(os.path.join(project.epics, "EPIC-DIR.md"))
    epic, _ = read_epic_file(os.path.join(project.epics, "EPIC-DIR.md"), project.root)
    assert epic.to_dict()["storyIds"] == []


def test_story_ids_are_capped_with_a_warning_and_story_count_counts_all(project):
    extra = 5
    lines = ["### US-%d: s" % n for n in range(MAX_EPIC_STORY_IDS + extra)] + ["### US-0: duplicate"]
    path = project.epic("EPIC-BIG.md", "# EPIC-BIG: big\n## Stories\n" + "\n".join(lines) + "\n")
    epic, warning = read_epic_file(path, project.root)
    assert len(epic.story_ids) == MAX_EPIC_STORY_IDS
    assert epic.story_ids[:2] == ["US-0", "US-1"] and epic.story_ids[-1] == "US-%d" % (MAX_EPIC_STORY_IDS - 1)
    assert epic.story_count == MAX_EPIC_STORY_IDS + extra
    assert "storyIds keeps the first %d" % MAX_EPIC_STORY_IDS in warning and "EPIC-BIG.md" in warning


def test_story_ids_survive_the_round_trip_a_replica_makes():
    epic = parse_epic_file(EPIC, "EPIC-V3-002-universal-status-checker.md")
    again = record_from_dict(Epic, epic.to_dict())
    assert again == epic and again.story_ids == ["US-001", "US-002", "US-003"]
