"""A real terminal for screen tests: the installed ``automix-local`` in a pseudo-terminal, read by pyte.

Pilot drives the app inside the test's own event loop and renders to no terminal, so it cannot see
what a person sees: a frame that was drawn but never reached the terminal, or a screen that is only
repainted after a key press (issue 11). Here the app runs as its own process on a pty of a fixed
size, exactly as from a shell; everything it writes (Textual draws on stderr, which is the pty) is
fed to pyte, a VT100/xterm emulator, and tests read the emulated screen as text. Keys are written to
the pty as a terminal would send them.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pyte

KEYS = {
    "enter": b"\r",
    "escape": b"\x1b",
    "tab": b"\t",
    "backspace": b"\x7f",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "f1": b"\x1bOP",
    **{f"ctrl+{c}": bytes([ord(c) - ord("a") + 1]) for c in "abcdefghijklmnopqrstuvwxyz"},
}


class Terminal:
    """One program on a pty of ``cols`` × ``rows``; the screen as pyte sees it."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cols: int = 120,
        rows: int = 40,
        cwd: Path | None = None,
    ) -> None:
        self.cols, self.rows = cols, rows
        self.screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.output = bytearray()  # everything the program wrote, for a failure's report
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", **(env or {})}
        for var in ("COLUMNS", "LINES", "TEXTUAL", "TEXTUAL_DRIVER"):
            full_env.pop(var, None)
        self.proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=full_env,
            cwd=cwd,
            start_new_session=True,  # its own session: the pty becomes its controlling terminal
            close_fds=True,
        )
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: the program closed the pty
                break
            if not data:
                break
            with self._changed:
                self.output += data
                self._stream.feed(data)
                self._fed()
                self._changed.notify_all()

    def _fed(self) -> None:
        """Called (under the lock) after each write from the program reached the screen; a hook for benches."""

    # ------------------------------------------------------------------ reading the screen
    def text(self) -> str:
        """The screen as it is now, one line per row."""
        with self._lock:
            return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, cond: str | Callable[[str], bool], timeout: float = 120, what: str | None = None) -> str:
        """Wait until the screen holds ``cond`` (a string) or ``cond(screen)`` is true; return the screen.

        Nothing is sent to the program while waiting: the screen must get there on its own.
        """
        test = (lambda s: cond in s) if isinstance(cond, str) else cond
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if test(screen):
                return screen
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(
                    f"the program exited ({self.proc.returncode}) before {what or cond!r}:\n{screen}\n"
                    f"its last output:\n{self.tail()}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what or cond!r}; the screen:\n{screen}"
                )
            with self._changed:
                self._changed.wait(min(left, 0.2))

    def tail(self, n: int = 3000) -> str:
        """The end of what the program wrote after leaving the alternate screen (e.g. a traceback), as text."""
        with self._lock:
            raw = bytes(self.output)
        after = raw.rsplit(b"\x1b[?1049l", 1)[-1] if b"\x1b[?1049l" in raw else raw[-n:]
        return after[-n:].decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ typing
    def type(self, text: str) -> None:
        os.write(self._master, text.encode("utf-8"))

    def press(self, *keys: str) -> None:
        for key in keys:
            os.write(self._master, KEYS[key])

    # ------------------------------------------------------------------ ending
    def close(self, timeout: float = 10) -> int | None:
        """Quit with ctrl+q; kill the program if it does not exit."""
        if self.proc.poll() is None:
            try:
                self.press("ctrl+q")
                self.proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._reader.join(5)
        os.close(self._master)
        return self.proc.returncode

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
