"""What an output parser emits, and the one-shot view of a message built from those events.

A parser turns the model's text into a stream of events: content, reasoning, and tool calls that begin
(id and name), stream their arguments as pieces of JSON text, and end. `collect` accumulates a stream into
a `ParsedMessage`; the non-streaming result of a prediction is exactly that accumulation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallBegin:
    index: int
    id: str
    name: str  # exactly as the model wrote it


@dataclass(frozen=True, slots=True)
class ToolCallArgs:
    index: int
    text: str  # a piece of the arguments object's JSON text


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    index: int


ParsedEvent = ContentDelta | ReasoningDelta | ToolCallBegin | ToolCallArgs | ToolCallEnd


class OutputParser(Protocol):
    def feed(self, text: str) -> list[ParsedEvent]:
        """Parse the next piece of the model's text (any split, in order)."""
        ...

    def finish(self) -> list[ParsedEvent]:
        """End of generation: flush everything held back and close an open call."""
        ...


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text of an object (see the parsers' notes on truncated calls)


@dataclass(slots=True)
class ParsedMessage:
    content: str
    reasoning: str
    tool_calls: list[ToolCall] = field(default_factory=list)


def collect(events: Iterable[ParsedEvent]) -> ParsedMessage:
    """Accumulate a stream of events into one message."""
    content: list[str] = []
    reasoning: list[str] = []
    heads: dict[int, ToolCallBegin] = {}
    args: dict[int, list[str]] = {}
    for event in events:
        if isinstance(event, ContentDelta):
            content.append(event.text)
        elif isinstance(event, ReasoningDelta):
            reasoning.append(event.text)
        elif isinstance(event, ToolCallBegin):
            heads[event.index] = event
            args.setdefault(event.index, [])
        elif isinstance(event, ToolCallArgs):
            args.setdefault(event.index, []).append(event.text)
    calls = [
        ToolCall(id=head.id, name=head.name, arguments="".join(args[index]))
        for index, head in sorted(heads.items())
    ]
    return ParsedMessage(content="".join(content), reasoning="".join(reasoning), tool_calls=calls)


def parse_all(parser: OutputParser, text: str) -> ParsedMessage:
    """Parse a whole output at once: feed, finish, collect."""
    return collect([*parser.feed(text), *parser.finish()])
