"""One streamed prediction as OpenAI chunks (chat or text completion), shared by /v1 and /api/v0."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from openlms.core.types import Done, GenerationStats
from openlms.parsers.output.events import (
    ContentDelta,
    ParsedEvent,
    ReasoningDelta,
    ToolCallArgs,
    ToolCallBegin,
)
from openlms.server.openai import convert
from openlms.services.generation import OutputEvent, Predictor, PreparedPrediction


@dataclass(frozen=True, slots=True)
class ChunkShape:
    """How one response frames its chunks: chat deltas or completion text."""

    cid: str
    model: str
    created: int
    chat: bool
    reasoning_field: str = "reasoning_content"

    @classmethod
    def new(cls, model: str, *, chat: bool) -> ChunkShape:
        return cls(convert.new_id("chatcmpl" if chat else "cmpl"), model, convert.now(), chat)

    def with_reasoning(self, reasoning_field: str) -> ChunkShape:
        return ChunkShape(self.cid, self.model, self.created, self.chat, reasoning_field)

    def role(self) -> dict[str, Any]:
        return self.delta({"role": "assistant", "content": ""})

    def delta(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return convert.chat_chunk(self.cid, self.model, self.created, delta, finish)

    def text(self, text: str, finish: str | None = None) -> dict[str, Any]:
        if self.chat:
            return self.delta({"content": text} if text else {}, finish)
        return convert.text_chunk(self.cid, self.model, self.created, text, finish)

    def parsed(self, event: ParsedEvent) -> dict[str, Any] | None:
        """The chunk for one parsed event (None for events with nothing to send)."""
        if isinstance(event, ContentDelta):
            return self.text(event.text) if event.text else None
        if not self.chat:
            return None
        if isinstance(event, ReasoningDelta):
            return self.delta({self.reasoning_field: event.text}) if event.text else None
        if isinstance(event, ToolCallBegin):
            call = {"name": event.name, "arguments": ""}
            return self.delta(
                {"tool_calls": [{"index": event.index, "id": event.id, "type": "function", "function": call}]}
            )
        if isinstance(event, ToolCallArgs):
            return self.delta({"tool_calls": [{"index": event.index, "function": {"arguments": event.text}}]})
        return None

    def usage(self, stats: GenerationStats) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return convert.usage_chunk(self.cid, self.model, self.created, stats, kind)


async def stream_chunks(
    predictor: Predictor,
    prepared: PreparedPrediction,
    shape: ChunkShape,
    *,
    include_usage: bool = False,
    echo: str = "",
    final_extras: Callable[[GenerationStats], dict[str, Any]] | None = None,
    mark_drafted: bool = False,
) -> AsyncGenerator[dict[str, Any], None]:
    """Start the prediction now and return its chunks: a role (chat) or echo (completion) first, content /
    reasoning / tool-call deltas, a chunk with the finish reason (plus `final_extras`), then a usage chunk
    if asked for. Whatever starting it raises (a model whose prediction queue is full: ServerBusyError)
    is raised here, before the route commits to a 200 event stream, so it leaves as the HTTP status (503
    with Retry-After). Close the returned generator if it is not run to the end (`sse_response` does).
    `mark_drafted` (openlms extension, /api/v0 only): a chunk whose text holds tokens a draft model
    proposed and the model accepted carries `"contains_drafted": true`."""
    chunks = _chunks(predictor, prepared, shape, include_usage, echo, final_extras, mark_drafted)
    await anext(chunks)  # the prediction's slot or queue place is taken (or refused) here
    return chunks


async def _chunks(
    predictor: Predictor,
    prepared: PreparedPrediction,
    shape: ChunkShape,
    include_usage: bool,
    echo: str,
    final_extras: Callable[[GenerationStats], dict[str, Any]] | None,
    mark_drafted: bool = False,
) -> AsyncGenerator[dict[str, Any], None]:
    async with predictor.run(prepared) as prediction:
        yield {}  # started: what stream_chunks waits for (never sent)
        if shape.chat:
            yield shape.role()
        elif echo:
            yield shape.text(echo)
        called = False
        event: OutputEvent
        async for event in prediction.output():
            if isinstance(event, Done):
                last = shape.text("", convert.finish_reason(event.stats, called))
                yield (last | final_extras(event.stats)) if final_extras else last
                if include_usage:
                    yield shape.usage(event.stats)
            elif isinstance(event, ContentDelta | ReasoningDelta | ToolCallBegin | ToolCallArgs):
                called = called or isinstance(event, ToolCallBegin)
                chunk = shape.parsed(event)
                if (
                    chunk is not None
                    and mark_drafted
                    and prediction.drafted
                    and isinstance(event, ContentDelta)
                ):
                    chunk["contains_drafted"] = True
                if chunk is not None:
                    yield chunk
