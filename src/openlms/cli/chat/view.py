"""How an answer appears: markdown drawn by rich on a terminal, plain text otherwise.

The terminal view prints each finished markdown block once (up to a blank line outside a code fence)
and keeps only the block being written in rich's live region, so nothing flickers or is printed twice,
however long the answer. Reasoning is shown dimmed while the model thinks, then collapsed to one line.
"""

from __future__ import annotations

import re
import time
from contextlib import ExitStack
from types import TracebackType
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
_REFRESH_S = 0.08  # at most ~12 redraws a second: little CPU beside the model's threads
_THINKING_TAIL = 160  # characters of the reasoning shown while it streams


class AnswerView(Protocol):
    def __enter__(self) -> AnswerView: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def reasoning(self, text: str) -> None: ...

    def content(self, text: str) -> None: ...


def stable_cut(text: str) -> int:
    """Where the finished blocks of `text` end: after its last blank line outside a code fence (0: none)."""
    position = len(text)
    while (found := text.rfind("\n\n", 0, position)) >= 0:
        if len(_FENCE.findall(text, 0, found)) % 2 == 0:
            return found + 2
        position = found
    return 0


class PlainView:
    """Content as it comes, unchanged (a pipe, a file); reasoning is left out. Ends with a newline."""

    def __init__(self, out: IO[str], err: IO[str]) -> None:
        self._out, self._err = out, err
        self._last = "\n"

    def __enter__(self) -> PlainView:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._last != "\n":
            self._out.write("\n")
        self._out.flush()
        if kind is KeyboardInterrupt:
            self._err.write("(stopped)\n")

    def reasoning(self, text: str) -> None:
        pass

    def content(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()
        self._last = text[-1:] or self._last


class RichView:
    """Markdown on a terminal (see the module's docstring)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live: Live | None = None
        self._tail = ""  # the block being written
        self._thinking = ""
        self._thinking_since: float | None = None
        self._drawn_at = 0.0
        self._quiet = ExitStack()

    def __enter__(self) -> RichView:
        from rich.live import Live

        from openlms.cli.chat.interrupts import no_echo

        self._quiet.enter_context(no_echo())
        self._live = Live(console=self._console, auto_refresh=False, transient=True)
        self._live.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        from rich.markdown import Markdown

        with self._quiet:
            if self._live is not None:
                self._live.stop()
            self._end_thinking()
            if self._tail.strip():
                self._console.print(Markdown(self._tail))
            if kind is KeyboardInterrupt:
                self._console.print("(stopped)", style="dim")
            self._console.print()

    def reasoning(self, text: str) -> None:
        from rich.text import Text

        if self._thinking_since is None:
            self._thinking_since = time.monotonic()
        self._thinking += text
        shown = " ".join(self._thinking[-_THINKING_TAIL:].split())
        self._draw(Text(f"Thinking… {shown}", style="dim italic", overflow="ellipsis", no_wrap=True))

    def content(self, text: str) -> None:
        from rich.markdown import Markdown

        self._end_thinking()
        self._tail += text
        cut = stable_cut(self._tail)
        if cut and self._tail[:cut].strip():
            self._console.print(Markdown(self._tail[:cut]))
        self._tail = self._tail[cut:]
        self._draw(Markdown(self._tail), force=cut > 0)

    def _end_thinking(self) -> None:
        if self._thinking_since is None:
            return
        seconds = time.monotonic() - self._thinking_since
        self._thinking_since, self._thinking = None, ""
        if self._live is not None:
            self._live.update("", refresh=True)  # the live region stops showing the reasoning
        self._console.print(f"▸ Thought for {seconds:.1f} s", style="dim")

    def _draw(self, renderable: object, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._live is None or (not force and now - self._drawn_at < _REFRESH_S):
            return
        self._drawn_at = now
        self._live.update(renderable, refresh=True)  # type: ignore[arg-type]
