"""The watch's screen: the header line (last update, connection) and the frames under it.

Table format on a terminal redraws in place (cursor home, each line cleared to its end, the rest of the screen
cleared: nothing is blanked first, so nothing flickers, and nothing scrolls); every other case appends: one JSON
document per line (NDJSON), markdown blocks split by `---`, or plain tables. Without a terminal no escape
sequence is written (README, "`madace-status status --watch`").
"""

from __future__ import annotations

import math
import re
import shutil
import time
from typing import Any, Dict, Optional, TextIO, Union

from madace_status.console import can_encode, silence_stdout, write_text
from madace_status.project.render.envelope import json_text
from madace_status.project.render.text import cut, display_width

__all__ = ["EMOJI_SAMPLE", "POLLING", "STREAM", "WEBSOCKET", "Link", "Screen"]

WEBSOCKET = "websocket"
STREAM = "stream"  # the HTTP port's Server-Sent Events (--server http://…)
POLLING = "polling"
EMOJI_SAMPLE = "\U0001f7e2\U0001f534"  # 🟢🔴: the header's emoji are used only where both can be written
_SGR = re.compile(r"\x1b\[[0-9;]*m")


class Link:
    """The connection as the header shows it."""

    __slots__ = ("mode", "rtt_s", "retry_in_s", "server", "note")

    def __init__(self, mode: str, rtt_s: Optional[float] = None, retry_in_s: Optional[int] = None,
                 server: Optional[str] = None, note: Optional[str] = None) -> None:
        self.mode = mode
        self.rtt_s = rtt_s
        self.retry_in_s = retry_in_s  # None while a connection attempt is under way
        self.server = server
        self.note = note  # what the header adds: the server serves another project than --root

    def words(self, emoji: bool) -> str:
        if self.mode == STREAM:
            text = ("\U0001f7e2 " if emoji else "") + "Event stream"
        elif self.mode == WEBSOCKET:
            text = "WebSocket" if self.rtt_s is None else "WebSocket (rtt %d ms)" % math.ceil(self.rtt_s * 1000)
            text = ("\U0001f7e2 " if emoji else "") + text
        else:
            text = "Polling (reconnecting)" if self.retry_in_s is None else "Polling (retry in %d s)" % self.retry_in_s
            text = ("\U0001f534 " if emoji else "") + text
        return text if self.note is None else "%s | %s%s" % (text, "\u26a0 " if emoji else "", self.note)

    def to_dict(self) -> Dict[str, Any]:
        return {"mode": self.mode, "server": self.server,
                "rttMs": None if self.rtt_s is None else round(self.rtt_s * 1000, 1),
                "retryInS": self.retry_in_s, "note": self.note}


class Screen:
    """Where the frames go. `show()` writes only when the content or the connection mode changed."""

    def __init__(self, stream: TextIO, fmt: str, in_place: bool, emoji: bool, lines: bool = False) -> None:
        self.stream = stream
        self.lines = lines  # one "HH:MM:SS state" line per change of the content (waiting in a script, no TTY)
        self.fmt = fmt
        self.in_place = in_place
        self.emoji = emoji
        self.content: object = None
        self.mode: Optional[str] = None
        self.updated_at: Optional[float] = None
        self.frames = 0
        self.header: Optional[str] = None
        self.rows_drawn = 0
        self.cursor_hidden = False
        self.broken = False  # stdout went away (EPIPE)

    def header_text(self, link: Link) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.updated_at))
        return "Last updated: %s | Connection: %s" % (when, link.words(self.emoji))

    def show(self, content: object, body: Union[str, Dict[str, Any]], link: Link, force: bool = False) -> bool:
        """Write a frame for `content` (`body`: its text, or its envelope for json) if anything changed."""
        changed = self.frames == 0 or content != self.content
        if self.lines:
            if changed:  # the connection's changes are not a state change
                self.content = content
                self.frames += 1
                self._write("%s %s\n" % (time.strftime("%H:%M:%S"), str(content).rstrip("\n")))
            return changed
        if not (changed or force or link.mode != self.mode):
            self.refresh_header(link)
            return False
        if changed or self.updated_at is None:
            self.updated_at = time.time()
        self.content = content
        self.mode = link.mode
        if self.fmt == "json":
            assert isinstance(body, dict)  # the envelope, for json
            document = dict(body)
            document["connection"] = link.to_dict()
            text = json_text(document) + "\n"
            if not can_encode(self.stream, text):
                text = json_text(document, ensure_ascii=True) + "\n"
        elif self.in_place:
            assert isinstance(body, str)
            text = self._frame(self.header_text(link), body)
        else:
            separator = ("\n---\n\n" if self.fmt == "markdown" else "\n") if self.frames else ""
            text = "%s%s\n\n%s" % (separator, self.header_text(link), body)
        self.header = self.header_text(link)
        self.frames += 1
        self._write(text)
        return True

    def refresh_header(self, link: Link) -> None:
        """On a terminal, rewrite the header line alone when its text changed (rtt, retry countdown)."""
        if not self.in_place or self.frames == 0:
            return
        header = self.header_text(link)
        if header != self.header:
            self.header = header
            self._write("\x1b[H" + self._line(header, shutil.get_terminal_size().columns))

    def _frame(self, header: str, body: str) -> str:
        columns, rows = shutil.get_terminal_size()
        lines = [header, ""] + body.rstrip("\n").split("\n")
        if len(lines) > rows:
            hidden = len(lines) - rows + 1
            lines = lines[:rows - 1] + ["… %d more line%s: make the terminal taller" % (hidden, "s" * (hidden != 1))]
        self.rows_drawn = len(lines)
        prefix = "\x1b[?25l\x1b[H" if not self.cursor_hidden else "\x1b[H"
        self.cursor_hidden = True
        return prefix + "\n".join(self._line(line, columns) for line in lines) + "\x1b[J"

    def _line(self, line: str, columns: int) -> str:
        width = display_width(_SGR.sub("", line))
        if "\x1b" not in line and width > columns:
            line, width = cut(line, columns, "…"), columns
        # A line as wide as the screen leaves the cursor on its last cell, which an erase would blank.
        return line + "\x1b[K" if width < columns else line

    def finish(self) -> None:
        """Leave the terminal as it was: cursor shown, below the last frame."""
        if self.in_place and self.cursor_hidden:
            self._write("\x1b[%d;1H\n\x1b[?25h" % max(self.rows_drawn, 1))
            self.cursor_hidden = False

    def _write(self, text: str) -> None:
        if self.broken:
            return
        stream = self.stream
        try:
            write_text(stream, text)
        except BrokenPipeError:
            self.broken = True
            silence_stdout(stream)
        except (OSError, ValueError):
            self.broken = True
