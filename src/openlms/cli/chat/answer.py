"""One answer: stream it from the server into a view; Ctrl+C stops it by closing the connection."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openlms.cli.chat.interrupts import Interrupts
from openlms.cli.chat.session import CHAT_PATH, STOPPED, ChatSession, Stats
from openlms.cli.chat.view import AnswerView
from openlms.cli.errors import CliError

if TYPE_CHECKING:
    from openlms.cli.client import ApiClient


@dataclass(frozen=True, slots=True)
class Answer:
    content: str
    stats: Stats | None
    stopped: bool


def ask(client: ApiClient, session: ChatSession, view: AnswerView) -> Answer:
    """Stream the answer to the conversation so far and keep it in `session`. A Ctrl+C (KeyboardInterrupt)
    while it streams leaves the request (the server stops generating) and returns what came so far; a
    failure raises `CliError` with the question forgotten."""
    collected = _Collected(time.monotonic())
    interrupts = Interrupts()
    try:
        with interrupts.installed(), client.stream_json(CHAT_PATH, session.body()) as chunks, view:
            collected.read(chunks, view, interrupts)
    except KeyboardInterrupt:
        content = "".join(collected.parts)
        stats = Stats(STOPPED, time_to_first_token_s=collected.first_token_s)
        session.answered(content, stats)
        return Answer(content, stats, stopped=True)
    except CliError:
        session.failed()
        raise
    content = "".join(collected.parts)
    session.answered(content, collected.stats)
    return Answer(content, collected.stats, stopped=False)


class _Collected:
    def __init__(self, started: float) -> None:
        self.started = started
        self.parts: list[str] = []
        self.stats: Stats | None = None
        self.first_token_s: float | None = None

    def read(self, chunks: Iterable[Mapping[str, Any]], view: AnswerView, interrupts: Interrupts) -> None:
        for chunk in chunks:
            _raise_error(chunk)
            delta = _delta(chunk)
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            content = delta.get("content")
            if (reasoning or content) and self.first_token_s is None:
                self.first_token_s = time.monotonic() - self.started
            with interrupts.shielded():
                if isinstance(reasoning, str) and reasoning:
                    view.reasoning(reasoning)
                if isinstance(content, str) and content:
                    self.parts.append(content)
                    view.content(content)
            if "stats" in chunk:
                self.stats = Stats.from_chunk(chunk)


def _delta(chunk: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = chunk.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    delta = first.get("delta") if isinstance(first, Mapping) else None
    return delta if isinstance(delta, Mapping) else {}


def _raise_error(chunk: Mapping[str, Any]) -> None:
    """An error the server reports mid-stream (`{"error": {...}}`) as one line."""
    error = chunk.get("error")
    if error is None:
        return
    message = error.get("message") if isinstance(error, Mapping) else error
    raise CliError(f"The server stopped the answer: {message}")
