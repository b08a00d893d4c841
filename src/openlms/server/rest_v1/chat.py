"""POST /api/v1/chat: LM Studio 0.4's native chat. Stateful (`store`, `previous_response_id`, kept like
/v1/responses' under `<home>/openlms/chat-responses`), with MCP tools (`integrations`) run server-side by
the tool loop, and LM Studio's named stream events."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from openlms.core.types import LoadedInstance
from openlms.server import openapi as doc
from openlms.server.errors import lmstudio_error
from openlms.server.responses.convert import new_id
from openlms.server.rest_v1 import chat_convert as convert
from openlms.server.rest_v1.chat_events import ChatEvents, Event, event
from openlms.server.rest_v1.chat_model import ModelPick
from openlms.server.rest_v1.chat_protocol import (
    STREAM_DESCRIPTION,
    STREAM_EVENTS,
    ChatRequestBody,
    ChatResponseBody,
)
from openlms.server.sse import dumps
from openlms.server.state import AppState, State
from openlms.services.mcp.types import McpTool, ToolHost, ToolSource
from openlms.services.response_store import ResponseStore
from openlms.services.tool_loop import LoopDone, LoopEvent, ToolLoop

router = APIRouter(prefix="/api/v1")

CHAT_DOC = doc.responses(
    doc.ok_or_stream(ChatResponseBody, STREAM_DESCRIPTION, STREAM_EVENTS), 404, 500, 502, 503
)


@router.post("/chat", response_model=None, responses=CHAT_DOC)
async def chat(body: ChatRequestBody, state: State) -> Response:
    """Chat with a model; with `integrations`, the model may call MCP tools (run here, in a loop)."""
    store = ResponseStore(state.settings.state_dir / "chat-responses")
    previous = body.previous_response_id
    history = await to_thread.run_sync(store.load, previous) if previous else []
    run = ChatRun(
        state,
        body,
        convert.conversation(body, history),
        convert.tool_sources(body.integrations),
        store,
        new_id("resp") if body.store is not False else None,
    )
    if not body.stream:
        return JSONResponse(await run.answer())
    events = run.stream()
    await anext(events)  # tools listed, model found (or its load started), slot taken: errors are HTTP
    return EventSourceResponse(_framed(events), sep="\n", ping=15, background=BackgroundTask(events.aclose))


async def _framed(events: AsyncIterator[Event | None]) -> AsyncIterator[dict[str, str]]:
    async for item in events:
        if item is not None:
            yield {"event": item[0], "data": dumps(item[1])}


@dataclass
class ChatRun:
    state: AppState
    body: ChatRequestBody
    messages: list[dict[str, Any]]
    sources: list[ToolSource]
    store: ResponseStore
    response_id: str | None

    async def answer(self) -> dict[str, Any]:
        async with self.state.mcp.session() as host:
            tools = await host.tools(self.sources) if self.sources else []
            pick = await self._pick()
            instance = await pick.finish()
            loop = self._loop(host, tools, instance)
            await loop.prepare()
            machine = ChatEvents(instance.identifier)
            done: LoopDone | None = None
            async for item in loop.events():
                done = item if isinstance(item, LoopDone) else done
                machine.on(item)
            return await self._finish(machine, done, pick)

    async def stream(self) -> AsyncGenerator[Event | None, None]:
        """None first (everything an error could stop before the answer starts is done), then events."""
        async with self.state.mcp.session() as host:
            tools = await host.tools(self.sources) if self.sources else []
            pick = await self._pick()
            events: AsyncGenerator[LoopEvent, None] | None = None
            first: list[LoopEvent] = []
            try:
                if pick.instance is not None:
                    loop = self._loop(host, tools, pick.instance)
                    await loop.prepare()
                    events = loop.events()
                    first.append(await anext(events))  # the prediction's slot is taken (or a 503)
                yield None
                machine = ChatEvents(pick.instance.identifier if pick.instance else pick.key)
                for item in machine.start():
                    yield item
                done: LoopDone | None = None
                try:
                    if events is None:
                        async for item in self._load(pick, machine):
                            yield item
                        loop = self._loop(host, tools, await pick.finish())
                        await loop.prepare()
                        events = loop.events()
                    async for loop_event in _chained(first, events):
                        done = loop_event if isinstance(loop_event, LoopDone) else done
                        for item in machine.on(loop_event):
                            yield item
                except Exception as exc:  # after the 200: the stream says what happened, then ends
                    yield event("error", error=lmstudio_error(exc))
                    done = None
                yield event("chat.end", result=await self._finish(machine, done, pick))
            finally:
                if events is not None:
                    await events.aclose()  # a prediction still running stops, its slot is freed

    async def _pick(self) -> ModelPick:
        return await ModelPick.begin(
            self.state.models, self.body.model, self.body.context_length, self.body.ttl
        )

    def _loop(self, host: ToolHost, tools: list[McpTool], instance: LoadedInstance) -> ToolLoop:
        chat = convert.chat_request(self.body, self.messages, instance.identifier)
        rounds = self.state.settings.mcp_max_tool_rounds
        return ToolLoop(self.state.predictor, host, chat, tools, rounds)

    async def _load(self, pick: ModelPick, machine: ChatEvents) -> AsyncIterator[Event]:
        yield event("model_load.start", model_instance_id=pick.key)
        async for fraction in pick.progress():
            yield event("model_load.progress", model_instance_id=pick.key, progress=fraction)
        instance = await pick.finish()
        machine.instance_id = instance.identifier
        seconds = round(pick.load_time_s or 0.0, 3)
        yield event("model_load.end", model_instance_id=instance.identifier, load_time_seconds=seconds)

    async def _finish(self, machine: ChatEvents, done: LoopDone | None, pick: ModelPick) -> dict[str, Any]:
        """The answer; kept (with its conversation) unless `store` is false or it failed."""
        rid = self.response_id if done is not None else None
        result = machine.result(done, pick.load_time_s, rid)
        if rid is not None and done is not None:
            conversation = [*self.messages, *done.messages]
            await to_thread.run_sync(self.store.save, rid, conversation, result)
        return result


async def _chained(first: list[LoopEvent], rest: AsyncGenerator[LoopEvent, None]) -> AsyncIterator[LoopEvent]:
    for item in first:
        yield item
    async for item in rest:
        yield item
