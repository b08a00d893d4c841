"""Parsed prediction events as Responses stream events (a pure state machine, one per response)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openlms.core.types import GenerationStats, SamplingParams
from openlms.parsers.output.events import (
    ContentDelta,
    ParsedEvent,
    ReasoningDelta,
    ToolCall,
    ToolCallArgs,
    ToolCallBegin,
)
from openlms.server.responses import convert
from openlms.server.responses.protocol import ResponsesRequest

Event = dict[str, Any]


@dataclass(slots=True)
class _Open:
    """The output item being streamed: a message, reasoning, or a function call (`call`)."""

    kind: str
    item_id: str
    index: int
    text: list[str] = field(default_factory=list)
    call: ToolCall | None = None
    call_index: int = -1


@dataclass(slots=True)
class ResponseEvents:
    rid: str
    created: int
    request: ResponsesRequest
    output: list[dict[str, Any]] = field(default_factory=list)
    current: _Open | None = None
    pending: str = ""  # leading whitespace held back until real text opens a message
    seq: int = 0
    sampling: SamplingParams | None = None  # what the prediction uses (echoed in the response)
    calls: int = 0  # function calls opened

    def event(self, kind: str, **fields: Any) -> Event:
        """One event, numbered."""
        event = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return event

    _event = event

    def close(self) -> list[Event]:
        """Close the item being streamed (the events that end it); nothing when none is open."""
        return self._close()

    def start(self) -> list[Event]:
        snapshot = convert.response(self.rid, self.created, self.request, [], None, self.sampling)
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def on(self, event: ParsedEvent) -> list[Event]:
        if isinstance(event, ContentDelta):
            return self._text("message", event.text)
        if isinstance(event, ReasoningDelta):
            return self._text("reasoning", event.text)
        if isinstance(event, ToolCallBegin):
            if self.calls and self.request.parallel_tool_calls is False:
                return []  # one call only: the later ones are left out, as when not streamed
            self.calls += 1
            out = self._close()
            call = ToolCall(event.id, event.name, "")
            self.current = _Open(
                "call", convert.new_id("fc"), len(self.output), call=call, call_index=event.index
            )
            item = convert.call_item(self.current.item_id, call, "in_progress")
            return [
                *out,
                self._event("response.output_item.added", output_index=self.current.index, item=item),
            ]
        if isinstance(event, ToolCallArgs) and self.current and self.current.call_index == event.index:
            self.current.text.append(event.text)
            return [self._event("response.function_call_arguments.delta", **self._where(), delta=event.text)]
        return []

    def finish(self, stats: GenerationStats, reasoning_tokens: int = 0) -> list[Event]:
        if self.current is None and not self.output:  # nothing said: an empty message, as when not streamed
            out = [*self._open("message"), *self._close()]
        else:
            out = self._close()
        final = convert.response(
            self.rid, self.created, self.request, self.output, stats, self.sampling, reasoning_tokens
        )
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        return [*out, self._event(kind, response=final)]

    def _where(self, content: bool = False) -> dict[str, Any]:
        assert self.current is not None
        return _where(self.current, content)

    def _text(self, kind: str, text: str) -> list[Event]:
        if not text:
            return []
        out: list[Event] = []
        if self.current is None or self.current.kind != kind:
            if kind == "message" and not (self.pending + text).strip():
                self.pending += text
                return []
            out = [*self._close(), *self._open(kind)]
            text, self.pending = (self.pending + text if kind == "message" else text), ""
        assert self.current is not None
        self.current.text.append(text)
        name = "response.output_text.delta" if kind == "message" else "response.reasoning_text.delta"
        extra: dict[str, Any] = {"logprobs": []} if kind == "message" else {}
        return [*out, self._event(name, **self._where(content=True), delta=text, **extra)]

    def _open(self, kind: str) -> list[Event]:
        prefix = "msg" if kind == "message" else "rs"
        self.current = _Open(kind, convert.new_id(prefix), len(self.output))
        if kind == "reasoning":
            item = convert.reasoning_item(self.current.item_id, "") | {"content": []}
            return [
                self._event("response.output_item.added", output_index=self.current.index, item=item),
                self._event(
                    "response.content_part.added",
                    **self._where(content=True),
                    part={"type": "reasoning_text", "text": ""},
                ),
            ]
        item = convert.message_item(self.current.item_id, "", "in_progress") | {"content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        return [
            self._event("response.output_item.added", output_index=self.current.index, item=item),
            self._event("response.content_part.added", **self._where(content=True), part=part),
        ]

    def _close(self) -> list[Event]:
        current, self.current = self.current, None
        if current is None:
            return []
        text, where = "".join(current.text), _where(current)
        if current.kind == "call" and current.call is not None:
            call = ToolCall(current.call.id, current.call.name, text or "{}")
            item = convert.call_item(current.item_id, call)
            done = [self._event("response.function_call_arguments.done", **where, arguments=call.arguments)]
        elif current.kind == "reasoning":
            item = convert.reasoning_item(current.item_id, text)
            done = [
                self._event("response.reasoning_text.done", **where, content_index=0, text=text),
                self._event("response.content_part.done", **where, content_index=0, part=item["content"][0]),
            ]
        else:
            item = convert.message_item(current.item_id, text)
            part = item["content"][0]
            done = [
                self._event("response.output_text.done", **where, content_index=0, text=text, logprobs=[]),
                self._event("response.content_part.done", **where, content_index=0, part=part),
            ]
        self.output.append(item)
        return [*done, self._event("response.output_item.done", output_index=current.index, item=item)]


def _where(item: _Open, content: bool = False) -> dict[str, Any]:
    where: dict[str, Any] = {"item_id": item.item_id, "output_index": item.index}
    return where | {"content_index": 0} if content else where
