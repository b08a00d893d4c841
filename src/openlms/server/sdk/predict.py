"""The `llm` namespace's prediction endpoints: the `predict` channel (chat, `complete()` mode, tools for
`act()`, structured output, reasoning fragments, cancellation) and `applyPromptTemplate`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from openlms.core.errors import InvalidRequestError
from openlms.core.kvconfig import load_fields
from openlms.core.types import Done, GenerationStats, PromptProgress, StopReason
from openlms.parsers.output.events import (
    ContentDelta,
    ReasoningDelta,
    ToolCallArgs,
    ToolCallBegin,
    ToolCallEnd,
)
from openlms.server.sdk import convert
from openlms.server.sdk.convert import as_object
from openlms.server.sdk.files import FileStore
from openlms.server.sdk.kvconfig import client_config
from openlms.server.sdk.transport import Channel, Client
from openlms.services.chat_documents import ChatDocuments
from openlms.services.generation import (
    ChatRequest,
    CompletionRequest,
    OutputEvent,
    Prediction,
    Predictor,
    PreparedPrediction,
)
from openlms.services.kvconfig import prediction_fields
from openlms.services.params import PredictionParams, ResolvedParams


@dataclass
class _Stream:
    """What one prediction has sent so far."""

    channel: Channel
    prediction: Prediction
    reported_tokens: int = 0
    in_reasoning: bool = False
    calls: dict[int, tuple[str, str, list[str]]] = field(default_factory=dict)  # index -> id, name, args
    any_call: bool = False

    def tokens(self) -> int:
        delta = self.prediction.tokens - self.reported_tokens
        self.reported_tokens = self.prediction.tokens
        return delta

    async def fragment(self, text: str, reasoning_type: str = "none") -> None:
        drafted = self.prediction.drafted
        await self.channel.send(convert.fragment(text, self.tokens(), reasoning_type, drafted=drafted))

    async def end_reasoning(self) -> None:
        if self.in_reasoning:
            self.in_reasoning = False
            await self.fragment("</think>", "reasoningEndTag")

    async def event(self, event: OutputEvent) -> None:
        if isinstance(event, PromptProgress):
            await self.channel.send({"type": "promptProcessingProgress", "progress": float(event.fraction)})
        elif isinstance(event, ReasoningDelta) and event.text:
            if not self.in_reasoning:
                self.in_reasoning = True
                await self.fragment("<think>", "reasoningStartTag")
            await self.fragment(event.text, "reasoning")
        elif isinstance(event, ContentDelta) and event.text:
            await self.end_reasoning()
            await self.fragment(event.text)
        elif isinstance(event, ToolCallBegin):
            await self.end_reasoning()
            self.calls[event.index] = (event.id, event.name, [])
            await self.channel.send({"type": "toolCallGenerationStart", "toolCallId": event.id})
            await self.channel.send({"type": "toolCallGenerationNameReceived", "name": event.name})
        elif isinstance(event, ToolCallArgs) and event.index in self.calls:
            self.calls[event.index][2].append(event.text)
            await self.channel.send(
                {"type": "toolCallGenerationArgumentFragmentGenerated", "content": event.text}
            )
        elif isinstance(event, ToolCallEnd) and event.index in self.calls:
            await self._call_end(*self.calls.pop(event.index))

    async def _call_end(self, call_id: str, name: str, pieces: list[str]) -> None:
        raw = "".join(pieces)
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            error = {"title": f"The model wrote invalid arguments for tool '{name}': {raw[:200]}"}
            await self.channel.send({"type": "toolCallGenerationFailed", "error": error, "rawContent": raw})
            return
        self.any_call = True
        request = convert.tool_call_request(call_id, name, arguments)
        await self.channel.send(
            {"type": "toolCallGenerationEnd", "toolCallRequest": request, "rawContent": raw}
        )


class _History(NamedTuple):
    messages: list[dict[str, Any]]
    files: list[tuple[str, bytes]]  # (name, bytes) of every file part, in the chat's order


def _stop_reason(stats: GenerationStats, settings: ResolvedParams, *, any_call: bool) -> str | None:
    """`toolCalls` after a tool call, or at one of the config's `toolCallStopStrings`; None: the engine's."""
    if stats.stop_reason not in (StopReason.EOS, StopReason.STOP_STRING):
        return None
    tool_stop = stats.stop_string in settings.tool_call_stops and stats.stop_string not in settings.stop
    return StopReason.TOOL_CALLS.value if any_call or tool_stop else None


class PredictEndpoints:
    def __init__(self, predictor: Predictor, files: FileStore, documents: ChatDocuments) -> None:
        self.predictor = predictor
        self.files = files
        self.documents = documents

    def _history(self, client: Client, obj: Mapping[str, Any]) -> _History:
        """The chat's messages and the uploaded files its messages hold (read from the disk)."""
        files: list[tuple[str, bytes]] = []
        messages = convert.history_messages(obj.get("history"), self.files.collect_for(client, files))
        return _History(messages, files)

    async def _with_documents(
        self, obj: Mapping[str, Any], history: _History, params: PredictionParams
    ) -> list[dict[str, Any]]:
        """The chat's files go into its last user message (in full or retrieved: `ChatDocuments`)."""
        if not history.files:
            return history.messages
        documents = [await self.documents.extract(name, data) for name, data in history.files]
        model = convert.model_specifier(obj.get("modelSpecifier"))
        prepared = await self.documents.prepare(
            model, history.messages, documents, max_tokens=params.max_tokens
        )
        return prepared.messages

    def _request(
        self,
        obj: Mapping[str, Any],
        messages: list[dict[str, Any]],
        params: PredictionParams,
        completion_mode: bool,
    ) -> ChatRequest | CompletionRequest:
        """The services' request (the preset is named, not applied: services resolve it)."""
        model = convert.model_specifier(obj.get("modelSpecifier"))
        preset = str(obj.get("fuzzyPresetIdentifier") or "") or None
        if completion_mode:
            prompt = "".join(str(m.get("content") or "") for m in messages)
            return CompletionRequest(model, prompt, params, preset)
        return ChatRequest(model, messages, params, preset)

    async def _prepare(self, request: ChatRequest | CompletionRequest) -> PreparedPrediction:
        if isinstance(request, CompletionRequest):
            return await self.predictor.prepare_completion(request)
        return await self.predictor.prepare_chat(request)

    async def predict(self, channel: Channel, parameter: Any) -> None:
        obj = as_object(parameter, "creationParameter")
        # off the event loop: the config's schema becomes a grammar and its template is compiled; the
        # history's file parts are read from the uploads on disk
        config = await asyncio.to_thread(client_config, obj.get("predictionConfigStack"))
        history = await asyncio.to_thread(self._history, channel.client, obj)
        messages = await self._with_documents(obj, history, config.params)
        request = self._request(obj, messages, config.params, config.completion_mode)
        prepared = await self._prepare(request)
        async with self.predictor.run(prepared) as prediction:
            stream = _Stream(channel, prediction)
            watcher = asyncio.create_task(_cancel_on(channel, prediction))
            try:
                done = await _relay(stream)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        await stream.end_reasoning()
        await channel.send(_success(prepared, done.stats, config.fields, any_call=stream.any_call))

    async def apply_prompt_template(self, _client: Client, parameter: Any) -> dict[str, Any]:
        obj = as_object(parameter)
        params = (await asyncio.to_thread(client_config, obj.get("predictionConfigStack"))).params
        given = obj.get("opts")
        opts: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        tools = opts.get("toolDefinitions") or params.tools
        result = await self.predictor.apply_template(
            convert.model_specifier(obj.get("specifier")),
            convert.history_messages(obj.get("history")),
            PredictionParams(tools=tools, template=params.template),
            omit_bos=bool(opts.get("omitBosToken")),
            omit_eos=bool(opts.get("omitEosToken")),
        )
        return {"formatted": result.prompt}


def _success(
    prepared: PreparedPrediction, stats: GenerationStats, fields: Mapping[str, Any], *, any_call: bool
) -> dict[str, Any]:
    """The `success` message: stats, the model, and the load and prediction configs used."""
    instance = prepared.instance
    reason = _stop_reason(stats, prepared.settings, any_call=any_call)
    return {
        "type": "success",
        "stats": convert.stats(stats, stop_reason=reason),
        "modelInfo": convert.instance_info(instance),
        "loadModelConfig": {
            "fields": load_fields(instance.load_config, instance.context_length, instance.descriptor.kind)
        },
        "predictionConfig": {"fields": prediction_fields(prepared.settings, fields)},
    }


QUEUE_HEARTBEAT_S = 20.0  # the SDK gives up after 60 s without a message


async def _relay(stream: _Stream) -> Done:
    """Send the prediction's events; while it waits its turn (other predictions on the same instance), a
    0.0 progress message every 20 s keeps the client waiting (the SDK drops repeated values)."""
    started = asyncio.Event()
    heartbeat = asyncio.create_task(_heartbeat(stream.channel, started))
    try:
        async for event in stream.prediction.output():
            started.set()
            if isinstance(event, Done):
                return event
            if not stream.channel.connection.closed:
                await stream.event(event)
    finally:
        heartbeat.cancel()
    raise InvalidRequestError("The prediction ended without a result.")  # pragma: no cover


async def _heartbeat(channel: Channel, started: asyncio.Event) -> None:
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(QUEUE_HEARTBEAT_S):
                await started.wait()
            return
        await channel.send({"type": "promptProcessingProgress", "progress": 0.0})


async def _cancel_on(channel: Channel, prediction: Prediction) -> None:
    await channel.cancelled.wait()
    prediction.cancel()
