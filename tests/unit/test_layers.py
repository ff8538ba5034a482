"""The package's layer rules (madace_status/README.md, "Code layout"), held by a test rather than by prose.

Every module of `madace_status/` is parsed (imports inside functions count too) and each import of another
part of the package is checked against the allow-list of the importer's part. `websocket` and `sync` are
used from outside only through their package interface: `from madace_status.websocket import X` with X in
its `__all__`, never a module inside them.
"""

import ast
import pathlib

import pytest

PACKAGE = "madace_status"
PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[2] / PACKAGE

# The packages other parts may use only through their `__init__` and its `__all__`.
INTERFACE_ONLY = ("madace_status.websocket", "madace_status.sync")

# part → the parts it may import (besides itself and the standard library). A part is a subpackage or a
# top-level module; "madace_status" alone is the root package (its `__version__`).
ALLOWED = {
    "madace_status": (),
    "madace_status.__main__": ("madace_status.cli",),
    "madace_status.choices": (),
    "madace_status.logsafe": (),
    "madace_status.security": (),
    "madace_status.forwarded": (),
    "madace_status.deploy": (),
    "madace_status.project": (),
    "madace_status.websocket": ("madace_status.logsafe",),
    "madace_status.sync": ("madace_status.choices", "madace_status.logsafe", "madace_status.security",
                           "madace_status.forwarded", "madace_status.project", "madace_status.websocket"),
    "madace_status.web": ("madace_status", "madace_status.choices", "madace_status.logsafe",
                          "madace_status.security", "madace_status.forwarded", "madace_status.project",
                          "madace_status.sync"),
    "madace_status.demo": ("madace_status.logsafe", "madace_status.project"),
    "madace_status.console": ("madace_status.choices", "madace_status.project"),
    "madace_status.settings": ("madace_status.choices", "madace_status.project"),
    "madace_status.watch": ("madace_status", "madace_status.choices", "madace_status.console",
                            "madace_status.settings", "madace_status.logsafe", "madace_status.project",
                            "madace_status.sync", "madace_status.websocket"),
    "madace_status.status_command": ("madace_status", "madace_status.choices", "madace_status.console",
                                     "madace_status.settings", "madace_status.project", "madace_status.sync",
                                     "madace_status.watch"),
    "madace_status.serve_settings": ("madace_status.choices", "madace_status.settings", "madace_status.forwarded",
                                     "madace_status.project", "madace_status.sync", "madace_status.web"),
    "madace_status.serve_command": ("madace_status", "madace_status.choices", "madace_status.settings",
                                    "madace_status.serve_settings", "madace_status.logsafe", "madace_status.security",
                                    "madace_status.forwarded", "madace_status.project", "madace_status.sync",
                                    "madace_status.web", "madace_status.demo"),
    # argparse only: the commands are loaded when one runs
    "madace_status.cli": ("madace_status", "madace_status.choices", "madace_status.status_command",
                          "madace_status.serve_command"),
}


def module_name(path):
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules():
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


MODULES = all_modules()


def part_of(module):
    """The most specific part of ALLOWED that `module` belongs to."""
    candidates = [part for part in ALLOWED if module == part or module.startswith(part + ".")]
    candidates = [part for part in candidates if part != PACKAGE or module == PACKAGE]
    return max(candidates, key=len) if candidates else None


def imports_of(module):
    """(imported module, names taken from it, line) for each import of the package in `module`."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, (), node.lineno) for alias in node.names if alias.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            names = tuple(alias.name for alias in node.names)
            submodules = [name for name in names if target + "." + name in MODULES]
            found += [(target + "." + name, (), node.lineno) for name in submodules]
            rest = tuple(name for name in names if name not in submodules)
            if rest:
                found.append((target, rest, node.lineno))
    return found


def declared_interface(package):
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return {element.value for element in node.value.elts}
    return set()


def violations_of(module):
    own = part_of(module)
    problems = []
    for target, names, line in imports_of(module):
        where = "%s:%d imports %s" % (MODULES[module].relative_to(PACKAGE_DIR.parent), line, target)
        target_part = part_of(target)
        if target_part == own:
            continue
        if target_part not in ALLOWED[own]:
            problems.append("%s: %s may not import %s" % (where, own, target_part))
            continue
        interface = next((p for p in INTERFACE_ONLY if target == p or target.startswith(p + ".")), None)
        if interface is None:
            continue
        if target != interface:
            problems.append("%s: use %s's interface (its __init__), not a module inside it" % (where, interface))
        else:
            missing = set(names) - declared_interface(interface)
            if missing:
                problems.append("%s: %s not in %s.__all__" % (where, ", ".join(sorted(missing)), interface))
    return problems


def test_every_module_belongs_to_a_part_with_rules():
    assert [module for module in MODULES if part_of(module) is None] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layer_rules(module):
    assert violations_of(module) == []


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The rules bite: a project module importing the sync service, or a module reaching inside `websocket`."""
    monkeypatch.setitem(MODULES, "madace_status.project.fake", tmp_path / "fake.py")
    (tmp_path / "fake.py").write_text("def late():\n    from madace_status.sync import SyncService\n")
    monkeypatch.setattr(pathlib.Path, "relative_to", lambda self, other: self)
    assert violations_of("madace_status.project.fake") == [
        "%s:2 imports madace_status.sync: madace_status.project may not import madace_status.sync"
        % (tmp_path / "fake.py")]
    (tmp_path / "fake.py").write_text("from madace_status.websocket import frames\n")
    monkeypatch.setitem(MODULES, "madace_status.sync.fake", tmp_path / "fake.py")
    assert violations_of("madace_status.sync.fake") == [
        "%s:1 imports madace_status.websocket.frames: use madace_status.websocket's interface (its __init__), "
        "not a module inside it" % (tmp_path / "fake.py")]


README = PACKAGE_DIR / "README.md"
README_TABLE_TITLE = "| part | may import, besides itself and the standard library |"


def readme_rules():
    """The layer table of madace_status/README.md's "Code layout" section, as {part: (allowed parts)}."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(README_TABLE_TITLE) + 2  # after the title row and the |---| row
    rules = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        part, allowed = [cell.strip() for cell in line.strip("|").split("|")]
        rules[readme_part(part)] = frozenset() if allowed == "nothing" else frozenset(
            readme_part(name.strip()) for name in allowed.split(","))
    return rules


def readme_part(cell):
    """`project/` → madace_status.project, `cli.py` → madace_status.cli, `__init__.py` → madace_status."""
    name = cell.strip("`").replace("(interface)", "").strip().strip("`")
    if name == "__init__.py":
        return PACKAGE
    return PACKAGE + "." + name.rstrip("/").replace(".py", "").replace("/", ".")


def test_the_readme_states_exactly_the_rules_this_test_enforces():
    assert readme_rules() == {part: frozenset(allowed) for part, allowed in ALLOWED.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_says_what_it_exports_with_all(module):
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
             for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
             if isinstance(target, ast.Name)]
    assert "__all__" in names
