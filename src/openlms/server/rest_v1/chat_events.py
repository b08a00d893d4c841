"""The tool loop's events as LM Studio 0.4's `/api/v1/chat` stream events and output items.

`ChatEvents` is fed every loop event in order (`on`) and returns the named events to send; it builds the
answer's `output` items at the same time, so a streamed answer's `chat.end` result and a non-streamed
answer are the same object. Reasoning and message text come in blocks (`*.start`, `*.delta`, `*.end`);
a block of whitespace only is left out. Tool calls of MCP tools are `tool_call.start`, `.arguments`
(the whole arguments object, once complete), then `.success` or `.failure`; an invalid call is a
`tool_call.failure` with LM Studio's metadata and an `invalid_tool_call` item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openlms.core.types import FirstToken, PromptProgress
from openlms.parsers.output.events import ContentDelta, ReasoningDelta
from openlms.server.rest_v1 import chat_convert as convert
from openlms.services.tool_loop import (
    InvalidToolCall,
    LoopDone,
    LoopEvent,
    RoundStarted,
    ToolCallArguments,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)

Event = tuple[str, dict[str, Any]]  # (event name, data: the event object, its "type" the name)


def event(name: str, **data: Any) -> Event:
    return name, {"type": name, **data}


@dataclass
class ChatEvents:
    instance_id: str
    output: list[dict[str, Any]] = field(default_factory=list)
    _block: str | None = None  # "message" or "reasoning" while one is open
    _texts: list[str] = field(default_factory=list)
    _pending: str = ""  # leading whitespace of a block not opened yet
    _prompting: bool = False

    def start(self) -> list[Event]:
        return [event("chat.start", model_instance_id=self.instance_id)]

    def on(self, item: LoopEvent) -> list[Event]:
        if isinstance(item, RoundStarted):
            self._prompting = True
            return [event("prompt_processing.start")]
        if isinstance(item, PromptProgress):
            return [event("prompt_processing.progress", progress=item.fraction)] if self._prompting else []
        out = self._prompted()
        if isinstance(item, ContentDelta | ReasoningDelta):
            kind = "message" if isinstance(item, ContentDelta) else "reasoning"
            return out + self._text(kind, item.text)
        if isinstance(item, FirstToken):
            return out
        out += self.close()
        if isinstance(item, ToolCallStarted) and item.tool is not None:
            out.append(
                event("tool_call.start", tool=item.name, provider_info=convert.provider_info(item.tool))
            )
        elif isinstance(item, ToolCallArguments):
            info = convert.provider_info(item.tool)
            out.append(
                event(
                    "tool_call.arguments", tool=item.tool.name, arguments=item.arguments, provider_info=info
                )
            )
        elif isinstance(item, ToolCallSucceeded | ToolCallFailed | InvalidToolCall):
            out.append(self._outcome(item))
        return out

    def close(self) -> list[Event]:
        """Close the open text block (its item goes into `output`)."""
        kind, self._block, self._pending = self._block, None, ""
        if kind is None:
            return []
        self.output.append({"type": kind, "content": "".join(self._texts)})
        self._texts = []
        return [event(f"{kind}.end")]

    def result(
        self, done: LoopDone | None, load_time_s: float | None, response_id: str | None
    ) -> dict[str, Any]:
        """The whole answer (the non-streamed body, and `chat.end`'s `result`)."""
        self.close()
        body: dict[str, Any] = {"model_instance_id": self.instance_id, "output": self.output}
        if done is not None:
            body["stats"] = convert.stats(done.stats, done.reasoning_tokens, load_time_s)
        if response_id is not None:
            body["response_id"] = response_id
        return body

    def _prompted(self) -> list[Event]:
        if not self._prompting:
            return []
        self._prompting = False
        return [event("prompt_processing.end")]

    def _text(self, kind: str, text: str) -> list[Event]:
        out: list[Event] = []
        if self._block != kind:
            out += self.close()
            if not (self._pending + text).strip():
                self._pending += text
                return out
            text, self._pending = self._pending + text, ""
            self._block = kind
            out.append(event(f"{kind}.start"))
        if text:
            self._texts.append(text)
            out.append(event(f"{kind}.delta", content=text))
        return out

    def _outcome(self, item: ToolCallSucceeded | ToolCallFailed | InvalidToolCall) -> Event:
        if isinstance(item, InvalidToolCall):
            metadata: dict[str, Any] = {"type": item.kind, "tool_name": item.name}
            if item.kind == "invalid_arguments":
                metadata["arguments"] = convert.arguments_object(item.arguments)
                if item.tool is not None:
                    metadata["provider_info"] = convert.provider_info(item.tool)
            self.output.append({"type": "invalid_tool_call", "reason": item.reason, "metadata": metadata})
            return event("tool_call.failure", reason=item.reason, metadata=metadata)
        info = convert.provider_info(item.tool)
        call = {"tool": item.tool.name, "arguments": dict(item.arguments), "output": item.output}
        self.output.append({"type": "tool_call", **call, "provider_info": info})
        if isinstance(item, ToolCallSucceeded):
            return event("tool_call.success", **call, provider_info=info)
        metadata = {"type": "tool_error", "tool_name": item.tool.name, "arguments": dict(item.arguments)}
        return event("tool_call.failure", reason=item.error, metadata=metadata | {"provider_info": info})
