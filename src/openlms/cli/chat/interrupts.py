"""Ctrl+C while an answer streams: raised at once while waiting for the server (which stops the request),
held back while the view draws (a half-written screen update would leave the terminal garbled)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType


class Interrupts:
    def __init__(self) -> None:
        self._shielded = False
        self._pending = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._shielded:
            self._pending = True
        else:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """This handler for SIGINT while the block runs (where signals can be handled: the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """A Ctrl+C during the block is raised as KeyboardInterrupt when it ends."""
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt


@contextmanager
def no_echo() -> Iterator[None]:
    """The terminal does not echo keys (`^C`, keys typed ahead) while the block runs: an echo would move
    the cursor under rich's live region, which then erases the wrong lines. Ctrl+C still interrupts."""
    try:
        import termios
    except ImportError:  # not POSIX: nothing to do
        yield
        return
    stdin = sys.stdin
    if not stdin.isatty():
        yield
        return
    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    quiet = list(saved)
    quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        with suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)
