"""`status` on the sample project (tests/fixtures/sample-project) gives exactly the figures of its README, in every format."""

import json
import re

import pytest

KINDS = [("", "summary"), ("summary", "summary"), ("stories", "stories"), ("epics", "epics"),
         ("workflows", "workflows"), ("STORY-V3-020", "story"), ("EPIC-MAM", "epic"), ("EPIC-V3-002", "epic"),
         ("pm-planning", "workflow"), ("dev-implementation", "workflow"), ("V3-016", "story"),
         ("story-v3-020", "story"), ("epic:v3-001", "epic"), ("workflow:code-review", "workflow")]


def test_summary_table_has_the_readme_figures(status, sample_root):
    result = status("--root", sample_root)
    assert (result.returncode, result.stderr) == (0, "")
    out = result.stdout
    for state, count, points, limit in (("BACKLOG", 5, 15, "∞"), ("TODO", 1, 5, "1"), ("IN PROGRESS", 1, 3, "1"),
                                        ("DONE", 4, 9, "∞")):
        assert re.search(r"│ %s\s+│\s+%d │\s+%d │\s+%s │" % (state, count, points, limit), out), state
    assert re.search(r"│ TOTAL\s+│\s+11 │\s+32 │", out)
    assert "⚠" not in out
    assert re.search(r"│ pm-planning\s+│ in_progress\s+│ 3/5\s+│ \[████████░░░░░░░░░░░░\] 40%", out)
    assert re.search(r"│ route-workflow\s+│ completed\s+│ 4/4\s+│ \[█{20}\] 100%", out)
    assert re.search(r"│ architecture-review\s+│ failed\s+│", out) and "LLM API timeout" in out
    assert re.search(r"│ dev-implementation\s+│ in_progress\s+│ 3/6\s+│ \[███████░{13}\] 33%", out)
    assert re.search(r"│ code-review\s+│ pending\s+│ 0/3\s+│ \[░{20}\] 0%", out)
    assert "Epics: 3" in out
    assert out.index("Stories") < out.index("Workflows (5)")


def test_summary_json_has_the_readme_figures(status, sample_root):
    result = status("--root", sample_root, "--format", "json")
    assert (result.returncode, result.stderr) == (0, "")
    document = json.loads(result.stdout)
    assert list(document) == ["entityType", "entityId", "data", "timestamp", "warnings", "errors"]
    data = document["data"]
    assert {s: r["count"] for s, r in data["states"].items()} == {"BACKLOG": 5, "TODO": 1, "IN_PROGRESS": 1, "DONE": 4}
    assert {s: r["points"] for s, r in data["states"].items()} == {"BACKLOG": 15, "TODO": 5, "IN_PROGRESS": 3,
                                                                  "DONE": 9}
    assert data["total"] == {"count": 11, "points": 32}
    assert data["violations"] == [] and data["epicCount"] == 3
    flows = {w["name"]: (w["status"], w["currentStep"], w["totalSteps"], w["progress"]) for w in data["workflows"]}
    assert flows == {"pm-planning": ("in_progress", 3, 5, 40), "route-workflow": ("completed", 4, 4, 100),
                     "architecture-review": ("failed", 2, 3, 33), "dev-implementation": ("in_progress", 3, 6, 33),
                     "code-review": ("pending", 0, 3, 0)}
    assert [w["error"] for w in data["workflows"] if w["name"] == "architecture-review"] == ["LLM API timeout"]


def test_summary_markdown_has_the_readme_figures(status, sample_root):
    result = status("--root", sample_root, "-f", "markdown")
    assert (result.returncode, result.stderr) == (0, "")
    out = result.stdout
    for row in ("| BACKLOG | 5 | 15 | ∞ |", "| TODO | 1 | 5 | 1 |", "| IN PROGRESS | 1 | 3 | 1 |",
                "| DONE | 4 | 9 | ∞ |", "| **TOTAL** | **11** | **32** |",
                "| pm-planning | `in_progress` | 3/5 | `[████████░░░░░░░░░░░░] 40%` |",
                "| route-workflow | `completed` | 4/4 |", "| architecture-review | `failed` | 2/3 |",
                "| dev-implementation | `in_progress` | 3/6 |", "| code-review | `pending` | 0/3 |",
                "error: LLM API timeout", "3 epics."):
        assert row in out, row


def test_story_999_under_notes_is_not_a_story_in_any_format(status, sample_root):
    for fmt in ("table", "json", "markdown"):
        result = status("stories", "--root", sample_root, "-f", fmt)
        assert result.returncode == 0 and "STORY-999" not in result.stdout
    assert status("STORY-999", "--root", sample_root).returncode == 1


def test_story_v3_020_is_assigned_to_alex_in_every_format(status, sample_root):
    assert json.loads(status("STORY-V3-020", "--root", sample_root, "-f", "json").stdout)["data"]["assignee"] == "alex"
    assert re.search(r"│ Assignee\s+│ @alex", status("STORY-V3-020", "--root", sample_root).stdout)
    assert "- **Assignee:** @alex" in status("STORY-V3-020", "--root", sample_root, "-f", "markdown").stdout
    # The lists write it the same way as the single story (the JSON keeps the bare name).
    assert re.search(r"│ STORY-V3-020 .*│ @alex ", status("stories", "--root", sample_root).stdout)
    assert "| @alex |" in status("stories", "--root", sample_root, "-f", "markdown").stdout


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
@pytest.mark.parametrize("entity,kind", KINDS)
def test_every_entity_kind_renders_in_every_format(status, sample_root, entity, kind, fmt):
    result = status(entity, "--root", sample_root, "--format", fmt) if entity else \
        status("--root", sample_root, "--format", fmt)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip()
    if fmt == "json":
        assert json.loads(result.stdout)["entityType"] == kind


def test_the_default_root_is_the_current_directory(status, sample_root):
    result = status("-f", "json", cwd=sample_root)
    assert result.returncode == 0 and json.loads(result.stdout)["data"]["total"]["count"] == 11


def test_epics_json_lists_each_epics_story_ids_in_file_order(status, sample_root):
    result = status("epics", "--root", sample_root, "--format", "json")
    assert (result.returncode, result.stderr) == (0, "")
    epics = {e["id"]: e for e in json.loads(result.stdout)["data"]["epics"]}
    assert epics["EPIC-V3-002"]["storyIds"] == ["US-001", "US-002", "US-003", "US-004"]
    assert epics["EPIC-MAM"]["storyIds"] == []
    assert all(e["storyCount"] == len(e["storyIds"]) for e in epics.values())
