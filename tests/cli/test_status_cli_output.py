"""Options, environment variables, terminal handling (ASCII, width, colour) and what the command imports."""

import json
import os
import re
import select
import subprocess
import sys

import pytest

from status_cli_helpers import REPO_ROOT, clean_env, run_status

BOX = set("┌┬┐├┼┤└┴┘│─")


def test_env_vars_set_every_option(sample_root, tmp_path):
    env = clean_env(MADACE_STATUS_ROOT=sample_root, MADACE_STATUS_FORMAT="json")
    document = json.loads(run_status(env=env).stdout)
    assert document["data"]["total"]["count"] == 11
    env = clean_env(MADACE_STATUS_ROOT=sample_root, MADACE_STATUS_FORMAT="json",
                    MADACE_STATUS_STATE_DIR=os.pathsep.join(["nowhere", "madace-data/workflow-states"]),
                    MADACE_STATUS_STATUS_FILE="docs/none.md", MADACE_STATUS_EPICS_DIR="docs")
    document = json.loads(run_status(env=env).stdout)
    assert document["data"]["workflowCount"] == 5
    assert document["data"]["total"]["count"] == 0 and document["data"]["epicCount"] == 0
    assert "workflow state directory nowhere does not exist" in document["warnings"]
    assert "story status file docs/none.md does not exist" in document["warnings"]


def test_the_command_line_wins_over_the_environment(sample_root, tmp_path):
    env = clean_env(MADACE_STATUS_ROOT=str(tmp_path), MADACE_STATUS_FORMAT="markdown",
                    MADACE_STATUS_STATUS_FILE="docs/none.md")
    result = run_status("--root", sample_root, "-f", "json", "--status-file", "docs/workflow-status.md", env=env)
    assert json.loads(result.stdout)["data"]["total"]["count"] == 11


def test_a_bad_format_in_the_environment_is_a_usage_error(sample_root):
    result = run_status("--root", sample_root, env=clean_env(MADACE_STATUS_FORMAT="yaml"))
    assert result.returncode == 2 and "MADACE_STATUS_FORMAT must be one of table, json, markdown" in result.stderr


def test_ascii_flag_and_env_draw_plain_ascii(sample_root):
    for result in (run_status("--root", sample_root, "--ascii"),
                   run_status("--root", sample_root, env=clean_env(MADACE_STATUS_ASCII="1"))):
        assert result.returncode == 0
        assert not BOX & set(result.stdout) and "█" not in result.stdout
        assert "+-" in result.stdout and "[########------------] 40%" in result.stdout
        assert re.search(r"\| BACKLOG\s+\|\s+5 \|\s+15 \|\s+inf \|", result.stdout)


@pytest.mark.parametrize("how", ["--ascii", "PYTHONIOENCODING=ascii"])
@pytest.mark.parametrize("entity", ["summary", "pm-planning", "stories"])
def test_markdown_falls_back_to_ascii_like_the_table_not_to_question_marks(sample_root, how, entity):
    env = clean_env(PYTHONIOENCODING="ascii") if how.startswith("PYTHONIOENCODING") else clean_env()
    flags = ["--ascii"] if how == "--ascii" else []
    result = subprocess.run([sys.executable, "-m", "madace_status", "status", entity, "-f", "markdown", "--root",
                             sample_root] + flags, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert result.returncode == 0 and result.stderr == b""
    text = result.stdout.decode("ascii")  # nothing but ASCII, and no character replaced by "?"
    assert "?" not in text
    if entity == "summary":
        assert "| BACKLOG | 5 | 15 | inf |" in text and "`[########------------] 40%`" in text
    elif entity == "pm-planning":
        assert "- **Progress:** `[########------------] 40%`" in text
    else:
        assert "| STORY-V3-020 |" in text


@pytest.mark.parametrize("how", ["--ascii", "PYTHONIOENCODING=ascii", "PYTHONIOENCODING=latin-1"])
def test_markdown_marks_violations_and_errors_in_ascii_like_the_table(tmp_path, how):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "workflow-status.md").write_text("## TODO\n- [US-1] a | @alex\n- [US-2] b\n")
    (tmp_path / "madace-data" / "workflow-states").mkdir(parents=True)
    (tmp_path / "madace-data" / "workflow-states" / ".broken.state.json").write_text("{not json")
    env = clean_env(PYTHONIOENCODING=how.partition("=")[2]) if "=" in how else clean_env()
    flags = ["--ascii"] if how == "--ascii" else []
    texts = []
    for entity in ("summary", "US-1"):
        result = subprocess.run([sys.executable, "-m", "madace_status", "status", entity, "-f", "markdown",
                                 "--root", str(tmp_path)] + flags, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert result.returncode == 0 and result.stderr == b""
        texts.append(result.stdout.decode("ascii"))  # nothing but ASCII
    summary, story = texts
    assert "| TODO ! | 2 | 0 | 1 |" in summary and "| BACKLOG | 0 | 0 | inf |" in summary
    assert "> ! **WIP limit exceeded: TODO holds 2 stories (limit 1): US-1, US-2**" in summary
    assert "\n- x madace-data/workflow-states/.broken.state.json: invalid JSON" in summary
    assert "- **Status:** TODO ! (WIP limit exceeded)" in story and "- **Assignee:** @alex" in story


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_an_output_encoding_without_box_drawing_falls_back_to_ascii(sample_root, encoding):
    env = clean_env(PYTHONIOENCODING=encoding)
    result = subprocess.run([sys.executable, "-m", "madace_status", "status", "stories", "--root", sample_root],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert result.returncode == 0 and b"Traceback" not in result.stderr
    text = result.stdout.decode(encoding)
    assert "+-" in text and not BOX & set(text)
    assert "STORY-V3-020" in text


def test_json_on_an_ascii_stream_is_escaped_not_broken(tmp_path):
    status_file = tmp_path / "docs" / "workflow-status.md"
    status_file.parent.mkdir()
    status_file.write_text("## TODO\n- [US-1] Café 🚀\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "madace_status", "status", "US-1", "-f", "json",
                             "--root", str(tmp_path)], cwd=REPO_ROOT, env=clean_env(PYTHONIOENCODING="ascii"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert result.returncode == 0
    assert json.loads(result.stdout.decode("ascii"))["data"]["title"] == "Café 🚀"


@pytest.mark.parametrize("columns", [50, 80, 200])
def test_tables_fit_the_terminal_width(sample_root, columns):
    for entity in ("", "stories", "epics", "workflows", "EPIC-V3-002", "pm-planning"):
        result = run_status(entity, "--root", sample_root, env=clean_env(COLUMNS=str(columns)))
        assert result.returncode == 0
        for line in result.stdout.splitlines():
            assert len(line) <= columns, (entity, line)


def test_long_titles_are_cut_with_an_ellipsis(tmp_path):
    status_file = tmp_path / "docs" / "workflow-status.md"
    status_file.parent.mkdir()
    status_file.write_text("## BACKLOG\n- [US-1] " + "very long title " * 30 + "\n", encoding="utf-8")
    result = run_status("stories", "--root", str(tmp_path), env=clean_env(COLUMNS="80"))
    assert "…" in result.stdout
    result = run_status("stories", "--root", str(tmp_path), "--ascii", env=clean_env(COLUMNS="80"))
    assert "..." in result.stdout and "…" not in result.stdout


def test_no_colour_when_piped(sample_root):
    assert "\x1b[" not in run_status("--root", sample_root).stdout


def run_on_tty(args, env):
    """Run the command with stdout on a pseudo-terminal; returns (returncode, output)."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "madace_status", "status"] + args, cwd=REPO_ROOT, env=env,
                               stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:          # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    process.wait(timeout=30)
    process.stderr.close()
    return process.returncode, b"".join(chunks).decode("utf-8", "replace")


def test_colour_on_a_tty(sample_root):
    code, output = run_on_tty(["--root", sample_root], clean_env())
    assert code == 0 and "\x1b[" in output and "BACKLOG" in output


def test_no_colour_on_a_tty_with_no_color(sample_root):
    code, output = run_on_tty(["--root", sample_root], clean_env(NO_COLOR="1"))
    assert code == 0 and "\x1b[" not in output and "BACKLOG" in output


def test_the_one_shot_path_imports_neither_asyncio_nor_http_server(sample_root):
    probe = ("import io, json, sys\n"
             "from madace_status.cli import main\n"
             "out = sys.stdout\n"
             "codes = []\n"
             "for fmt in ('table', 'json', 'markdown'):\n"
             "    sys.stdout = io.StringIO()\n"
             "    codes.append(main(['status', '--root', sys.argv[1], '-f', fmt]))\n"
             "    codes.append(main(['status', 'nothing-here', '--root', sys.argv[1], '-f', fmt]))\n"
             "sys.stdout = out\n"
             "print(json.dumps({'codes': codes, 'modules': sorted(sys.modules)}))\n")
    result = subprocess.run([sys.executable, "-c", probe, sample_root], cwd=REPO_ROOT, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    report = json.loads(result.stdout.decode("utf-8").splitlines()[-1])
    assert report["codes"] == [0, 1, 0, 1, 0, 1]
    modules = set(report["modules"])
    for heavy in ("asyncio", "http.server", "http", "socket", "ssl", "socketserver", "madace_status.websocket",
                  "madace_status.sync", "madace_status.web"):
        assert heavy not in modules, heavy


def test_json_path_does_not_load_the_table_renderer(sample_root):
    probe = ("import io, sys\nfrom madace_status.cli import main\nsys.stdout = io.StringIO()\n"
             "main(['status', '--root', sys.argv[1], '-f', 'json'])\nsys.stdout = sys.__stdout__\n"
             "print(sorted(m for m in sys.modules if m.startswith('madace_status.project.render')))\n")
    result = subprocess.run([sys.executable, "-c", probe, sample_root], cwd=REPO_ROOT, env=clean_env(),
                            stdout=subprocess.PIPE)
    assert result.stdout.decode().strip() == "['madace_status.project.render', 'madace_status.project.render.envelope']"


def test_help_documents_the_options_and_environment():
    result = subprocess.run([sys.executable, "-m", "madace_status", "status", "--help"], cwd=REPO_ROOT,
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    text = result.stdout.decode()
    assert result.returncode == 0
    for word in ("--format", "--root", "--state-dir", "--status-file", "--epics-dir", "--ascii", "--watch",
                 "--interval", "--server", "--token", "MADACE_STATUS_ROOT", "MADACE_STATUS_STATE_DIR",
                 "MADACE_STATUS_FORMAT", "Exit codes"):
        assert word in text, word


def test_a_closed_pipe_ends_quietly(tmp_path):
    status_file = tmp_path / "docs" / "workflow-status.md"
    status_file.parent.mkdir()
    status_file.write_text("## BACKLOG\n" + "".join("- [US-%d] story %d\n" % (i, i) for i in range(3000)))
    process = subprocess.Popen([sys.executable, "-m", "madace_status", "status", "stories", "-f", "json",
                                "--root", str(tmp_path)], cwd=REPO_ROOT, env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.read(100)
    process.stdout.close()
    stderr = process.stderr.read()
    process.wait(timeout=30)
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr
