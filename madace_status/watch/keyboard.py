"""The watch's keyboard: stdin key by key (cbreak), so `q` quits, and the terminal mode restored on every way out."""

import os

from madace_status.console import is_terminal


class KeyboardMode(object):
    """Stdin in cbreak mode (keys arrive one by one, not echoed; Ctrl+C still signals), restored by `restore()`.

    Only for a terminal this process owns: a background job (`&`) leaves the terminal alone.
    """

    def __init__(self, stream):
        self.fd = None
        self.saved = None
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

    def __enter__(self):
        if self.fd is not None:
            import termios
            import tty
            try:
                self.saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd, termios.TCSANOW)
            except (OSError, termios.error):
                self.fd = self.saved = None
        return self

    def __exit__(self, *exc_info):
        self.restore()

    @property
    def active(self):
        return self.saved is not None

    def restore(self):
        if self.saved is not None:
            import termios
            saved, self.saved = self.saved, None
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
            except (OSError, termios.error):
                pass
