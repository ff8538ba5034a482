"""ENTITY → what to show: the rules of README, "ENTITY", in order, lookups, suggestions and hostile input."""

import pytest

from madace_status.project.loader import ProjectPaths, load_project
from madace_status.project.registry import (ACCEPTED_PATTERNS, MAX_ENTITY_CHARS, EntityNotFound, Query,
                                            UnrecognisedEntity, classify, resolve)


@pytest.fixture
def sample(sample_root):
    return load_project(ProjectPaths(sample_root))


@pytest.mark.parametrize("text", ["", "  ", "summary", "overview", "ALL", "Status", "state", "State-Machine"])
def test_rule_1_keywords_and_empty_mean_the_summary(text):
    assert classify(text) == Query("summary")


@pytest.mark.parametrize("text,kind", [("stories", "stories"), ("EPICS", "epics"), ("workflows", "workflows")])
def test_rule_2_plural_words_mean_the_lists(text, kind):
    assert classify(text) == Query(kind)


@pytest.mark.parametrize("text,query", [("story:us-001", Query("story", "US-001")),
                                        ("EPIC:mam", Query("epic", "MAM")),
                                        ("workflow:Summary", Query("workflow", "Summary")),
                                        ("story:summary", Query("story", "SUMMARY"))])
def test_rule_3_explicit_prefixes_choose_the_type(text, query):
    assert classify(text) == query


@pytest.mark.parametrize("text", ["EPIC-MAM", "epic-mam", "EPIC-V3-002"])
def test_rule_4_epic_ids_in_any_case(text):
    assert classify(text) == Query("epic", text.upper())


def test_rule_5_an_existing_workflow_name_wins_over_the_story_shape():
    assert classify("dev-v2", {"dev-v2"}) == Query("workflow", "dev-v2")
    assert classify("dev-v2") == Query("story", "DEV-V2")
    assert classify("Odd_Name", {"Odd_Name"}) == Query("workflow", "Odd_Name")


@pytest.mark.parametrize("text", ["STORY-V3-020", "US-001", "V3-015", "story-v3-020", "TASK-7"])
def test_rule_6_story_id_shapes(text):
    assert classify(text) == Query("story", text.upper())


@pytest.mark.parametrize("text", ["pm-planning", "review", "code-review"])
def test_rule_7_lower_kebab_case_is_a_workflow(text):
    assert classify(text) == Query("workflow", text)


@pytest.mark.parametrize("text", ["Foo Bar", "../etc/passwd", "STORY", "a/b", "story:../x", "workflow:a/b",
                                  "epic:", "story:", "PM-Planning", "!!", "x" * (MAX_ENTITY_CHARS + 1),
                                  "x" * 10240, "a\x00b", "\x1b[2J", "a\tb", "pm\x7fplanning"])
def test_rule_8_anything_else_is_unrecognised(text):
    with pytest.raises(UnrecognisedEntity) as caught:
        classify(text)
    message = str(caught.value)
    assert "\x00" not in message and "\x1b" not in message and len(message) < 200


def test_the_usage_text_lists_every_pattern_with_examples():
    for example in ("summary", "stories", "story:ID", "workflow:NAME", "EPIC-V3-002", "EPIC-MAM", "pm-planning",
                    "STORY-V3-020", "V3-015"):
        assert example in ACCEPTED_PATTERNS


def test_resolve_finds_multi_segment_ids(sample):
    assert resolve(sample, "STORY-V3-020").record.assignee == "alex"
    assert resolve(sample, "story-v3-020").id == "STORY-V3-020"
    assert resolve(sample, "V3-020").id == "STORY-V3-020"
    assert resolve(sample, "EPIC-MAM").record.name == "MADACE Agile Method core"
    assert resolve(sample, "epic:mam").id == "EPIC-MAM"
    assert resolve(sample, "workflow:PM-PLANNING").id == "pm-planning"


def test_not_found_suggests_the_closest_ids(sample):
    with pytest.raises(EntityNotFound) as caught:
        resolve(sample, "STORY-V3-099")
    assert caught.value.suggestions and all(s.startswith("STORY-V3-0") for s in caught.value.suggestions)
    with pytest.raises(EntityNotFound) as caught:
        resolve(sample, "planning")
    assert caught.value.suggestions == ["pm-planning"]
    assert str(caught.value) == "workflow planning not found; did you mean pm-planning?"


def test_not_found_in_an_empty_project_has_no_suggestions(tmp_path):
    with pytest.raises(EntityNotFound) as caught:
        resolve(load_project(ProjectPaths(str(tmp_path))), "US-1")
    assert caught.value.suggestions == [] and str(caught.value) == "story US-1 not found"


def test_the_entity_carries_only_its_own_notices(project):
    project.stories("## TODO\n- [US-1] a\n- [US-2] b\n## DONE\n- [US-3] c\n- [US-3] dup\n")
    loaded = load_project(ProjectPaths(project.root))
    assert any("WIP limit exceeded" in m for m in resolve(loaded, "US-1").warnings)
    assert resolve(loaded, "US-1").warnings == [m for m in loaded.story_warnings if "WIP" in m]
    assert not any("WIP" in m for m in resolve(loaded, "US-3").warnings)
    assert any("duplicate story id US-3" in m for m in resolve(loaded, "US-3").warnings)


def test_not_found_messages_never_carry_control_characters(project):
    import os
    project.state("evil\x1b[2J", {"workflow": "x", "status": "pending"})
    loaded = load_project(ProjectPaths(project.root))
    with pytest.raises(EntityNotFound) as caught:
        resolve(loaded, "evil")
    assert "\x1b" not in str(caught.value) and "\\x1b" in str(caught.value)
    assert os.path.basename(loaded.workflows[0].source) == ".evil\x1b[2J.state.json"


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_entity_text_resolves_or_raises_one_of_the_two_lookup_errors(text):
    from madace_status.project.model import Project
    empty = Project("/", [], [], [])
    try:
        entity = resolve(empty, text)
    except (UnrecognisedEntity, EntityNotFound) as exc:
        assert not any(ord(ch) < 32 for ch in str(exc))
    else:
        assert entity.kind in ("summary", "stories", "epics", "workflows")


def test_a_story_past_the_ones_a_violation_names_still_shows_its_states_violation(tmp_path):
    root = tmp_path / "project"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "workflow-status.md").write_text(
        "## TODO\n" + "".join("- [US-%d] story %d\n" % (n, n) for n in range(1, 9)) + "## DONE\n- [US-9] done\n")
    loaded = load_project(ProjectPaths(str(root)))
    warnings = resolve(loaded, "US-8").warnings
    assert warnings == ["WIP limit exceeded: TODO holds 8 stories (limit 1): US-1, US-2, US-3, US-4, US-5 and 3 more"]
    assert resolve(loaded, "US-9").warnings == []
