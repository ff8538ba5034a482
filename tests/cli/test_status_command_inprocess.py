"""The status command called in-process through `cli.main(argv)`: inputs a subprocess cannot carry (NUL)."""

import io
import json

import pytest

from madace_status import cli, status_command


def run(argv, monkeypatch, env=None):
    """cli.main(argv) with captured stdout/stderr and a controlled environment."""
    for key in ("MADACE_STATUS_ROOT", "MADACE_STATUS_FORMAT", "MADACE_STATUS_STATE_DIR", "MADACE_STATUS_STATUS_FILE",
                "MADACE_STATUS_EPICS_DIR", "MADACE_STATUS_ASCII", "NO_COLOR", "COLUMNS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("entity", ["\x00", "STORY\x00-1", "pm-planning\x00", "story:\x00", "\x00" * 10000])
def test_nul_in_entity_is_a_usage_error_without_echoing_it(sample_root, monkeypatch, entity):
    code, out, err = run(["status", entity, "--root", sample_root], monkeypatch)
    assert (code, out) == (2, "")
    assert "\x00" not in err
    assert "control characters" in err or "too long" in err


@pytest.mark.parametrize("entity", ["\x07bell", "a\rb", "\x9bc", "x" * 10240, "../../etc/passwd"])
def test_hostile_entities_are_usage_errors(sample_root, monkeypatch, entity):
    code, out, err = run(["status", entity, "--root", sample_root], monkeypatch)
    assert (code, out) == (2, "")
    assert not any(ch in err for ch in "\x07\r\x9b")
    assert "accepted ENTITY values:" in err


def test_env_root_is_used_and_the_option_overrides_it(sample_root, tmp_path, monkeypatch):
    code, out, _ = run(["status", "-f", "json"], monkeypatch, {"MADACE_STATUS_ROOT": sample_root})
    assert code == 0 and json.loads(out)["data"]["total"]["count"] == 11
    code, out, _ = run(["status", "-f", "json", "--root", str(tmp_path)], monkeypatch,
                       {"MADACE_STATUS_ROOT": sample_root})
    assert code == 0 and json.loads(out)["data"]["total"]["count"] == 0


def test_state_dir_option_is_repeatable(sample_root, monkeypatch):
    code, out, _ = run(["status", "workflows", "-f", "json", "--root", sample_root, "--state-dir", "nope",
                        "--state-dir", "madace-data/workflow-states"], monkeypatch)
    document = json.loads(out)
    assert code == 0 and document["data"]["count"] == 5
    assert document["warnings"] == ["workflow state directory nope does not exist"]


def test_unreadable_root_exits_3(tmp_path, monkeypatch):
    code, out, err = run(["status", "--root", str(tmp_path / "missing")], monkeypatch)
    assert (code, out) == (3, "")
    assert err.startswith("madace-status: cannot read the project: ")


def test_run_takes_explicit_streams_and_environment(sample_root):
    args = cli.build_parser().parse_args(["status", "EPIC-MAM", "-f", "markdown"])
    out, err = io.StringIO(), io.StringIO()
    code = status_command.run(args, stdout=out, stderr=err, environ={"MADACE_STATUS_ROOT": sample_root})
    assert code == 0 and err.getvalue() == ""
    assert out.getvalue().startswith("# Epic EPIC-MAM: MADACE Agile Method core\n")
