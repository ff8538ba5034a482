"""The watch's keyboard: stdin key by key (cbreak), so `q` quits, and the terminal mode restored on every way out."""

from __future__ import annotations

import os
from typing import Any, List, Optional, TextIO

from madace_status.console import is_terminal

__all__ = ["KeyboardMode"]


class KeyboardMode:
    """Stdin in cbreak mode (keys arrive one by one, not echoed; Ctrl+C still signals), restored by `restore()`.

    Only for a terminal this process owns: a background job (`&`) leaves the terminal alone.
    """

    def __init__(self, stream: TextIO) -> None:
        self.fd: Optional[int] = None
        self.saved: Optional[List[Any]] = None  # termios attributes
        if not is_terminal(stream):
            return
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            return
        try:
            if os.tcgetpgrp(fd) != os.getpgrp():
                return
        except OSError:
            pass  # not our controlling terminal: its mode is still ours to set
        self.fd = fd

    def __enter__(self) -> KeyboardMode:
        if self.fd is not None:
            import termios
            import tty
            try:
                self.saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd, termios.TCSANOW)
            except (OSError, termios.error):
                self.fd = self.saved = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    @property
    def active(self) -> bool:
        return self.saved is not None

    def restore(self) -> None:
        if self.saved is not None:
            import termios
            saved, self.saved = self.saved, None
            assert self.fd is not None  # saved only once fd was set
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
            except (OSError, termios.error):
                pass
