"""Issue 10 §6: NaN, Infinity and overflowing numbers never get in (invalid state file) nor out (every JSON
writer of the package refuses them)."""
import json
import os
import re

import pytest

from madace_status.project.render.envelope import json_text
from madace_status.project.workflows import parse_workflow_bytes

PACKAGE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "madace_status")


@pytest.mark.parametrize("literal, reason", [
    ("NaN", "NaN is not a JSON number"), ("Infinity", "Infinity is not a JSON number"),
    ("-Infinity", "-Infinity is not a JSON number"), ("1e999", "number 1e999 is out of range"),
    ("-1e999", "number -1e999 is out of range")])
def test_non_standard_numbers_make_the_state_file_invalid(literal, reason):
    workflow = parse_workflow_bytes(('{"workflow": "w", "status": "failed", "x": %s}' % literal).encode(), "w")
    assert workflow.status == "invalid"
    assert reason in workflow.error


def test_finite_floats_still_accepted():
    workflow = parse_workflow_bytes(b'{"workflow": "w", "status": "failed", "x": 1.5e300}', "w")
    assert workflow.status == "failed"


def test_the_terminal_writer_refuses_nan():
    with pytest.raises(ValueError):
        json_text({"x": float("nan")})


def test_every_json_writer_in_the_package_disallows_nan():
    offenders = []
    for folder, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as handle:
                    source = handle.read()
                for match in re.finditer(r"json\.dumps?\(", source):
                    if "#" in source[source.rfind("\n", 0, match.start()):match.start()]:
                        continue   # a comment naming json.dumps, not a call
                    call = source[match.start():source.find("\n\n", match.start())]
                    depth, end = 0, 0
                    for end, char in enumerate(call):
                        depth += char == "("
                        depth -= char == ")"
                        if depth == 0 and char == ")":
                            break
                    if "allow_nan=False" not in call[:end]:
                        offenders.append("%s: %s" % (name, call[:60]))
    assert offenders == []
