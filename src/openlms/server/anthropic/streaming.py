"""One streamed prediction as Anthropic Messages SSE events (`event:` names as Anthropic sends them)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from openlms.core.errors import OpenLMSError
from openlms.core.types import Done
from openlms.parsers.output.events import ContentDelta, ReasoningDelta, ToolCallArgs, ToolCallBegin
from openlms.server.anthropic import convert
from openlms.server.errors import encodable, status_of
from openlms.services.generation import OutputEvent, Predictor, PreparedPrediction

log = logging.getLogger("openlms.server")

Event = tuple[str, dict[str, Any]]


@dataclass(slots=True)
class Blocks:
    """The content block being streamed: its index and kind (text, thinking, tool_use)."""

    index: int = -1
    kind: str | None = None
    called: bool = False
    one_call: bool = False  # disable_parallel_tool_use: later tool calls are left out
    skipping: bool = False  # inside a tool call that is left out
    events: list[Event] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)  # the open thinking block's text, for its signature

    def open(self, kind: str, block: dict[str, Any]) -> None:
        self.close()
        self.index, self.kind = self.index + 1, kind
        self.events.append(("content_block_start", {"index": self.index, "content_block": block}))

    def close(self) -> None:
        if self.kind == "thinking":
            delta = {"type": "signature_delta", "signature": convert.signature("".join(self.thinking))}
            self.events.append(("content_block_delta", {"index": self.index, "delta": delta}))
            self.thinking = []
        if self.kind is not None:
            self.events.append(("content_block_stop", {"index": self.index}))
            self.kind = None

    def delta(self, kind: str, delta: dict[str, Any], block: dict[str, Any]) -> None:
        if self.kind != kind:
            self.open(kind, block)
        self.events.append(("content_block_delta", {"index": self.index, "delta": delta}))

    def feed(self, event: OutputEvent) -> None:
        if isinstance(event, ContentDelta) and event.text:
            self.delta("text", {"type": "text_delta", "text": event.text}, {"type": "text", "text": ""})
        elif isinstance(event, ReasoningDelta) and event.text:
            thinking = {"type": "thinking", "thinking": "", "signature": ""}
            self.delta("thinking", {"type": "thinking_delta", "thinking": event.text}, thinking)
            self.thinking.append(event.text)
        elif isinstance(event, ToolCallBegin):
            self.skipping = self.one_call and self.called
            if self.skipping:
                return
            self.called = True
            self.open(
                "tool_use",
                {"type": "tool_use", "id": convert.tool_id(event.id), "name": event.name, "input": {}},
            )
        elif isinstance(event, ToolCallArgs) and self.kind == "tool_use" and not self.skipping:
            delta = {"type": "input_json_delta", "partial_json": event.text}
            self.events.append(("content_block_delta", {"index": self.index, "delta": delta}))

    def take(self) -> list[Event]:
        out, self.events = self.events, []
        return out


async def stream_events(
    predictor: Predictor, prepared: PreparedPrediction, mid: str, model: str, *, one_call: bool = False
) -> AsyncGenerator[Event, None]:
    """Start the prediction now (a full queue raises here, before the 200) and return its events."""
    events = _events(predictor, prepared, mid, model, Blocks(one_call=one_call))
    await anext(events)
    return events


async def _events(
    predictor: Predictor, prepared: PreparedPrediction, mid: str, model: str, blocks: Blocks
) -> AsyncGenerator[Event, None]:
    async with predictor.run(prepared) as prediction:
        yield ("", {})  # started (never sent)
        prompt = prepared.request.prompt
        usage = {"input_tokens": 0 if isinstance(prompt, str) else len(prompt), "output_tokens": 0}
        yield ("message_start", {"message": convert.message_shell(mid, model) | {"usage": usage}})
        yield ("ping", {})
        async for event in prediction.output():
            if isinstance(event, Done):
                if blocks.index < 0:
                    blocks.open("text", {"type": "text", "text": ""})
                blocks.close()
                for item in blocks.take():
                    yield item
                reason = convert.stop_reason(event.stats, blocks.called)
                stop = event.stats.stop_string if reason == "stop_sequence" else None
                delta = {"stop_reason": reason, "stop_sequence": stop}
                yield ("message_delta", {"delta": delta, "usage": convert.usage(event.stats)})
                yield ("message_stop", {})
            else:
                blocks.feed(event)
                for item in blocks.take():
                    yield item


async def framed(events: AsyncIterator[Event]) -> AsyncIterator[dict[str, str]]:
    """Events as SSE frames (`event:` + `data:` with the event's `type`); a failure is an `error` event."""
    try:
        async for name, data in events:
            yield {"event": name, "data": json.dumps({"type": name} | data, ensure_ascii=False)}
    except OpenLMSError as exc:
        body = convert.error_body(status_of(exc)[0], encodable(exc.message))
        yield {"event": "error", "data": json.dumps(body)}
    except Exception as exc:  # never a half-open stream
        log.exception("stream failed")
        yield {"event": "error", "data": json.dumps(convert.error_body(500, f"Internal error: {exc}"))}
