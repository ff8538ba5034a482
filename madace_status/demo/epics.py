"""The demo's epics: each epic file of the sample, its status moved along a cycle and written back.

The file's title, header fields and body are the sample's; only the `**Status:**` and `**Last Updated:**`
lines change.
"""

from __future__ import annotations

import re

__all__ = ["EPIC_STATUSES", "DemoEpic"]

# The cycle the simulator moves an epic's status along.
EPIC_STATUSES = ("\U0001f4cb Planning", "\U0001f504 In Progress", "\u2705 Done")

_STATUS_LINE = re.compile(r"^\*\*Status:\*\*[ \t]*(.*)$", re.MULTILINE)
_STATUS_PREFIX = "**Status:**"
_UPDATED_PREFIX = "**Last Updated:**"


class DemoEpic:
    """One epic file: `# title`, a blank line, header fields, Status, Last Updated, a blank line, the body."""

    def __init__(self, filename: str, sample_text: str) -> None:
        lines = sample_text.split("\n")
        at = next(index for index, line in enumerate(lines) if line.startswith(_STATUS_PREFIX))
        self.filename = filename
        self.title = lines[0][2:] if lines[0].startswith("# ") else filename
        self.epic_id = self.title.split(":", 1)[0]
        self.fields = tuple(lines[2:at])
        self.updated = lines[at + 1][len(_UPDATED_PREFIX):].strip()
        self.body = tuple(lines[at + 3:])
        if self.body and self.body[-1] == "":
            self.body = self.body[:-1]  # the file's final newline
        self.status_index = 0
        self.load(sample_text)

    @property
    def status(self) -> str:
        return EPIC_STATUSES[self.status_index]

    def render(self) -> str:
        """The epic file's text with the current status."""
        return "\n".join(("# " + self.title, "") + self.fields
                         + (_STATUS_PREFIX + " " + self.status, _UPDATED_PREFIX + " " + self.updated, "")
                         + self.body + ("",))

    def load(self, text: str) -> None:
        """Take the status from an epic file written earlier (by the simulator or by hand)."""
        match = _STATUS_LINE.search(text)
        if match:
            value = match.group(1).lower()
            for index, label in enumerate(EPIC_STATUSES):
                if label.split(" ", 1)[1].lower() in value:
                    self.status_index = index
