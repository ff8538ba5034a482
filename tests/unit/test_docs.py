"""The documentation says what the code does, and every reference in it resolves: the README's links and anchors,
the sections the code cites, the options and environment variables of both commands."""

import ast
import os
import re
import subprocess
import sys

import pytest

from madace_status import cli

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE_DIR = os.path.join(REPO_ROOT, "madace_status")
DOCUMENTS = ("README.md", "madace_status/README.md", "tests/benchmarks/README.md", "tests/conformance/README.md",
             "tests/browser/README.md")
MAX_PROSE_LINE = 120  # table rows are exempt: a markdown row cannot be wrapped
LINK = re.compile(r"\]\(([^)\s]+)\)")
# `(README, "Section")`, `(madace_status/README.md, "Section")` in docstrings and comments; a second section may
# follow as `and "Other"`.
CITATION = re.compile(r'((?:madace_status/)?README(?:\.md)?), ((?:"[^"\n]+"(?: and |, )?)+)')
QUOTED = re.compile(r'"([^"\n]+)"')
ENVIRONMENT_VARIABLE = re.compile(r"\bMADACE_STATUS_[A-Z_]*[A-Z]\b")
# Variables the tests and benchmarks read, not the package: not part of the user's documentation.
TEST_ONLY_VARIABLES = {"MADACE_STATUS_README_PICTURES"}
ENV_PREFIX = "MADACE_STATUS_"
TEST_HOOK = "_TEST_"  # MADACE_STATUS_TEST_NO_INOTIFY and the like: how the tests switch a backend off
VARIABLE_NAME = re.compile(r"^[A-Z][A-Z_]*[A-Z]$")
SETTING_READERS = {"env_value", "setting", "text_setting", "flag", "value"}  # settings.py and ServeSettings.resolve


def read(relative_path):
    with open(os.path.join(REPO_ROOT, relative_path), encoding="utf-8") as document:
        return document.read()


def headings(text):
    """The headings of a markdown document, outside fenced code."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            found.append(line.lstrip("#").strip())
    return found


def github_anchor(heading):
    """The anchor GitHub gives a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
    text = heading.lower().replace("`", "")
    text = "".join(character for character in text if character.isalnum() or character in " -_")
    return text.replace(" ", "-")


def source_files():
    for top in ("madace_status", "tests"):
        for directory, subdirectories, names in os.walk(os.path.join(REPO_ROOT, top)):
            subdirectories[:] = [name for name in subdirectories
                                 if not name.startswith(".") and name not in ("__pycache__", "output")]
            for name in names:
                if name.endswith((".py", ".js", ".sh", ".html", ".css")) and name != "test_docs.py":
                    yield os.path.join(directory, name)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_link_and_anchor_of_the_documentation_resolves(document):
    base = os.path.dirname(os.path.join(REPO_ROOT, document))
    broken = []
    for target in LINK.findall(read(document)):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(base, path)) if path else os.path.join(REPO_ROOT, document)
        if not os.path.exists(linked):
            broken.append(target)
        elif anchor and anchor not in {github_anchor(h) for h in headings(open(linked, encoding="utf-8").read())}:
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("document", DOCUMENTS)
def test_prose_lines_are_at_most_120_characters(document):
    long_lines = [number for number, line in enumerate(read(document).splitlines(), start=1)
                  if len(line) > MAX_PROSE_LINE and not line.startswith("|")]
    assert long_lines == []


def test_every_section_the_code_cites_exists():
    known = {document: headings(read(document)) for document in ("README.md", "madace_status/README.md")}
    unresolved = []
    for path in source_files():
        with open(path, encoding="utf-8") as source:
            text = source.read()
        for document, sections in CITATION.findall(text):
            document = "madace_status/README.md" if document.startswith("madace_status/") else "README.md"
            for section in QUOTED.findall(sections):
                # A section is cited by its heading, or by the start of a long one ("`madace-status serve`").
                if not any(heading == section or heading.startswith(section) for heading in known[document]):
                    unresolved.append("%s: %s, %r" % (os.path.relpath(path, REPO_ROOT), document, section))
    assert unresolved == []


def test_nothing_cites_a_document_outside_the_repository():
    citing = [os.path.relpath(path, REPO_ROOT) for path in source_files()
              if "SPEC §" in open(path, encoding="utf-8").read()]
    assert citing == []


def command_options(name):
    parser = cli.build_parser()
    subcommands = next(action for action in parser._actions if action.__class__.__name__ == "_SubParsersAction")
    return {option for action in subcommands.choices[name]._actions for option in action.option_strings
            if option.startswith("--") and option != "--help"}


@pytest.mark.parametrize("command", ["status", "serve"])
def test_every_option_of_both_commands_is_in_the_readme_and_every_option_row_is_an_option(command):
    readme = read("README.md")
    options = command_options(command)
    assert sorted(option for option in options if "`%s" % option not in readme) == []
    # The option tables' first column: each option named there exists in one of the two commands.
    every_option = command_options("status") | command_options("serve")
    named = set()
    for row in readme.splitlines():
        if row.startswith("| `-"):
            named.update(re.findall(r"`(--[a-z][a-z-]*)", row.split(" | ")[0]))
    assert sorted(named - every_option) == []


def variables_the_package_reads():
    """MADACE_STATUS_* names the package reads: written out whole, given to the settings readers as `NAME`, or listed
    in a `*_VARIABLES` table."""
    found = set()
    for path in source_files():
        if not (path.startswith(PACKAGE_DIR) and path.endswith(".py")):
            continue
        source = open(path, encoding="utf-8").read()
        found.update(ENVIRONMENT_VARIABLE.findall(source))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call):
                function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                names = node.args if function in SETTING_READERS else ()
            elif isinstance(node, ast.Assign):
                targets = [target.id for target in node.targets if isinstance(target, ast.Name)]
                names = list(ast.walk(node.value)) if any(t.endswith("_VARIABLES") for t in targets) else ()
            else:
                continue
            found.update(ENV_PREFIX + name.value for name in names
                         if isinstance(name, ast.Constant) and isinstance(name.value, str)
                         and VARIABLE_NAME.match(name.value))
    return found - {ENV_PREFIX}


# Flags the README gives to other programs than ours: the benchmark scripts, mypy, git and systemctl.
OTHER_PROGRAMS_FLAGS = {"--backends", "--clients", "--files", "--minutes", "--seed", "--strict", "--help", "--follow",
                        "--batch", "--now"}
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def test_every_flag_the_readme_names_is_an_option_of_ours_or_of_a_program_it_names():
    ours = command_options("status") | command_options("serve") | {"--version"}
    named = set(FLAG.findall(read("README.md")))
    assert sorted(named - ours - OTHER_PROGRAMS_FLAGS) == []
    assert sorted(OTHER_PROGRAMS_FLAGS - named - {"--help"}) == []  # the allowance holds only what is used


def test_every_environment_variable_the_package_reads_is_documented_and_every_documented_one_is_read():
    package_variables = variables_the_package_reads()
    readme_variables = set(ENVIRONMENT_VARIABLE.findall(read("README.md")))
    assert "MADACE_STATUS_HTTP_HEAD_TIMEOUT" in package_variables and "MADACE_STATUS_FORMAT" in package_variables
    assert sorted(variable for variable in package_variables - readme_variables if TEST_HOOK not in variable) == []
    assert sorted(readme_variables - package_variables - TEST_ONLY_VARIABLES) == []


@pytest.mark.parametrize("command", ["status", "serve"])
def test_the_environment_variables_of_each_command_are_in_its_help(command):
    help_text = subprocess.run([sys.executable, "-m", "madace_status", command, "--help"], cwd=REPO_ROOT,
                               env=dict(os.environ, PYTHONPATH=REPO_ROOT, COLUMNS="200"), stdout=subprocess.PIPE,
                               check=True, text=True).stdout
    readme = read("README.md")
    section = readme[readme.index("## `madace-status %s`" % command):]
    section = section[:section.index("\n## ", 1)]
    table_variables = set()
    for row in section.splitlines():
        if row.startswith("| `-"):
            table_variables.update(ENVIRONMENT_VARIABLE.findall(row))
    assert sorted(variable for variable in table_variables if variable not in help_text) == []
