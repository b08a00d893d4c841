"""The tool loop's events (a request with `mcp` tools) as Responses stream events: `mcp_list_tools`
items first, then per round the model's text, reasoning and calls, MCP calls as `mcp_call` items
(`response.mcp_call.*`, `response.mcp_call_arguments.*`), calls to the client's own function tools as
`function_call` items (they end the loop: the client runs them). A pure state machine over
`ResponseEvents`, which numbers the events and builds the final response."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from openlms.parsers.output.events import ContentDelta, ReasoningDelta, ToolCallArgs, ToolCallBegin
from openlms.server.responses import convert
from openlms.server.responses.events import Event, ResponseEvents
from openlms.services.tool_loop import (
    InvalidToolCall,
    LoopEvent,
    RoundDone,
    ToolCallArgsDelta,
    ToolCallArguments,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
)


@dataclass(slots=True)
class LoopEvents:
    base: ResponseEvents
    client_names: frozenset[str]  # the client's function tools: their calls are function_call items
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # call id -> its mcp_call item
    client: dict[str, int] = field(default_factory=dict)  # call id -> its index for `base`

    def lists(self, items: list[dict[str, Any]]) -> list[Event]:
        """The `mcp_list_tools` items (listed before the first round)."""
        out: list[Event] = []
        for item in items:
            index = self._append(item)
            where = {"item_id": item["id"], "output_index": index}
            out += [
                self.base.event("response.output_item.added", output_index=index, item=item | {"tools": []}),
                self.base.event("response.mcp_list_tools.in_progress", **where),
                self.base.event("response.mcp_list_tools.completed", **where),
                self.base.event("response.output_item.done", output_index=index, item=item),
            ]
        return out

    def on(self, event: LoopEvent) -> list[Event]:
        if isinstance(event, ContentDelta | ReasoningDelta):
            return self.base.on(event)
        if isinstance(event, RoundDone):
            return self.base.close()  # the next round's text is a new item
        if isinstance(event, ToolCallStarted):
            return self._started(event)
        if isinstance(event, ToolCallArgsDelta):
            return self._delta(event)
        if isinstance(event, ToolCallArguments):
            item = self.calls.get(event.call_id)
            if item is None:
                return []
            item["arguments"] = item["arguments"] or json.dumps(dict(event.arguments))
            return [
                self.base.event(
                    "response.mcp_call_arguments.done", **self._where(item), arguments=item["arguments"]
                )
            ]
        if isinstance(event, ToolCallSucceeded | ToolCallFailed | InvalidToolCall):
            return self._outcome(event)
        return []

    def _started(self, event: ToolCallStarted) -> list[Event]:
        if event.name in self.client_names:
            index = self.client.setdefault(event.call_id, len(self.client))
            return self.base.on(ToolCallBegin(index, event.call_id, event.name))
        out = self.base.close()
        label = event.tool.source.label if event.tool is not None else ""
        item = convert.mcp_call_item(convert.new_id("mcp"), label, event.name)
        self.calls[event.call_id] = item
        index = self._append(item)
        return [
            *out,
            self.base.event("response.output_item.added", output_index=index, item=dict(item)),
            self.base.event("response.mcp_call.in_progress", **self._where(item)),
        ]

    def _delta(self, event: ToolCallArgsDelta) -> list[Event]:
        if event.call_id in self.client:
            return self.base.on(ToolCallArgs(self.client[event.call_id], event.text))
        item = self.calls.get(event.call_id)
        if item is None or not event.text:
            return []
        item["arguments"] += event.text
        return [self.base.event("response.mcp_call_arguments.delta", **self._where(item), delta=event.text)]

    def _outcome(self, event: ToolCallSucceeded | ToolCallFailed | InvalidToolCall) -> list[Event]:
        item = self.calls.get(event.call_id)
        if item is None:
            return []
        if isinstance(event, ToolCallSucceeded):
            item.update(status="completed", output=event.output)
            done = "response.mcp_call.completed"
        else:
            reason = event.reason if isinstance(event, InvalidToolCall) else event.error
            item.update(status="failed", error=convert.mcp_error(reason))
            done = "response.mcp_call.failed"
        item["arguments"] = item["arguments"] or "{}"
        index = self._where(item)["output_index"]
        return [
            self.base.event(done, **self._where(item)),
            self.base.event("response.output_item.done", output_index=index, item=dict(item)),
        ]

    def _append(self, item: dict[str, Any]) -> int:
        self.base.output.append(item)
        return len(self.base.output) - 1

    def _where(self, item: dict[str, Any]) -> dict[str, Any]:
        index = next(i for i, kept in enumerate(self.base.output) if kept is item)
        return {"item_id": item["id"], "output_index": index}
