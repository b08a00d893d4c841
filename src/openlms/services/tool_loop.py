"""The server-side tool loop: a chat whose model may call MCP tools, run until it answers.

`ToolLoop(predictor, host, chat, tools, max_rounds)` predicts with the MCP tools offered (beside any
client function tools the request already has in `params.tools`). When the model calls MCP tools, each
is called through the `ToolHost`, the assistant's call and the tool's result are appended to the
conversation and the model predicts again, up to `max_rounds` rounds of calls; calls in the round after
those are not made (each a `ToolCallFailed` saying the limit was reached) and the loop ends. A call to a
client function tool ends the loop: it is the client's to run. Routes only translate the one typed event
stream `ToolLoop.events()` yields:

- the prediction's own events (`ContentDelta`, `ReasoningDelta`, `PromptProgress`, `FirstToken`),
- `RoundStarted` / `RoundDone` around each prediction,
- `ToolCallStarted` and `ToolCallArgsDelta` while the model writes a call, then per call one of
  `ToolCallArguments` + (`ToolCallSucceeded` | `ToolCallFailed`) for an MCP tool, `InvalidToolCall`
  for an unknown name or arguments that are not a JSON object, `ClientToolCall` for a client's tool,
- `LoopDone` with the stats summed over the rounds and the messages the loop added.

A failing or timing-out tool, and an invalid call, go back to the model as the tool's result (and to the
client as an event): the loop goes on. A result larger than the room left in the context is cut, with
a notice saying so. Closing the generator (the client went away) stops the running prediction and any
pending call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from openlms.core.types import Done, FirstToken, GenerationStats, PromptProgress
from openlms.parsers.output.events import (
    ContentDelta,
    ParsedEvent,
    ParsedMessage,
    ReasoningDelta,
    ToolCall,
    ToolCallArgs,
    ToolCallBegin,
    collect,
)
from openlms.services.generation import ChatRequest, Predictor, PreparedPrediction
from openlms.services.mcp.types import McpTool, ToolHost

log = logging.getLogger("openlms.server")

ANSWER_ROOM = 512  # tokens kept free for the answer after a tool result, when max_tokens is unset
MESSAGE_OVERHEAD = 16  # tokens a tool message's template markup may take
NOTICE_ROOM = 24  # tokens the truncation notice may take
FORCED_CHOICES = (None, "auto", "none")  # tool choices that do not force a call

StopKind = Literal["answer", "client_tools", "max_rounds"]
InvalidKind = Literal["invalid_name", "invalid_arguments"]


@dataclass(frozen=True, slots=True)
class RoundStarted:
    round: int  # 1-based
    prepared: PreparedPrediction  # this round's prediction (instance, prompt, settings, truncation)


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    call_id: str
    name: str
    tool: McpTool | None  # None: a client function tool, or a name no tool has


@dataclass(frozen=True, slots=True)
class ToolCallArgsDelta:
    call_id: str
    text: str  # a piece of the arguments' JSON text


@dataclass(frozen=True, slots=True)
class ToolCallArguments:
    """An MCP tool call, complete and checked, about to be made."""

    call_id: str
    tool: McpTool
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCallSucceeded:
    call_id: str
    tool: McpTool
    arguments: Mapping[str, Any]
    output: str  # what the model got (cut, with a notice, when it did not fit)
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ToolCallFailed:
    """The tool reported an error, crashed or timed out; `output` (what the model got) says so."""

    call_id: str
    tool: McpTool
    arguments: Mapping[str, Any]
    output: str
    error: str


@dataclass(frozen=True, slots=True)
class InvalidToolCall:
    """LM Studio's `invalid_tool_call`: fed back to the model as an error, the loop goes on."""

    call_id: str
    name: str
    kind: InvalidKind
    reason: str
    arguments: str  # the arguments' text as the model wrote it
    tool: McpTool | None = None  # the tool, for invalid arguments


@dataclass(frozen=True, slots=True)
class ClientToolCall:
    """A call to one of the client's function tools: returned to the client, the loop ends."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class RoundDone:
    round: int
    stats: GenerationStats
    message: ParsedMessage
    reasoning_tokens: int


@dataclass(frozen=True, slots=True)
class LoopDone:
    stats: GenerationStats  # summed over the rounds (time to first token: the first round's)
    reasoning_tokens: int
    rounds: int
    stop: StopKind
    messages: list[dict[str, Any]] = field(default_factory=list)  # what the loop added to the chat


LoopEvent = (
    ContentDelta
    | ReasoningDelta
    | PromptProgress
    | FirstToken
    | RoundStarted
    | ToolCallStarted
    | ToolCallArgsDelta
    | ToolCallArguments
    | ToolCallSucceeded
    | ToolCallFailed
    | InvalidToolCall
    | ClientToolCall
    | RoundDone
    | LoopDone
)
CallEvent = ToolCallSucceeded | ToolCallFailed | InvalidToolCall


class ToolLoop:
    """One chat with MCP tools. `prepare()` raises every request error of the first round (before a
    route answers); `events()` runs the rounds."""

    def __init__(
        self,
        predictor: Predictor,
        host: ToolHost,
        chat: ChatRequest,
        tools: Sequence[McpTool],
        max_rounds: int,
    ) -> None:
        self.predictor = predictor
        self.host = host
        self.chat = chat
        self.tools = _by_name(tools)
        self.client_names = {_function_name(t) for t in chat.params.tools or ()} - set(self.tools)
        self.max_rounds = max(0, max_rounds)
        self.messages: list[dict[str, Any]] = [dict(m) for m in chat.messages]
        self.added: list[dict[str, Any]] = []
        self._first: PreparedPrediction | None = None

    async def prepare(self) -> PreparedPrediction:
        """The first round's prediction, prepared (model resolved or JIT-loaded, prompt built)."""
        if self._first is None:
            self._first = await self.predictor.prepare_chat(self._round_request(1))
        return self._first

    async def events(self) -> AsyncGenerator[LoopEvent, None]:
        rounds: list[RoundDone] = []
        stop: StopKind = "answer"
        while True:
            ran = len(rounds)  # every round before this one had calls (else the loop ended)
            prepared = await self._prepared(ran + 1)
            done: RoundDone | None = None
            async for event in self._round(ran + 1, prepared):
                if isinstance(event, RoundDone):
                    done = event
                yield event
            assert done is not None
            rounds.append(done)
            calls = done.message.tool_calls
            if not calls:
                self._add({"role": "assistant", "content": done.message.content})
                break
            self._add(_assistant_message(done.message))
            limited = ran >= self.max_rounds  # this round's MCP calls are not made
            client = False
            async for event in self._calls(calls, prepared, done.stats, limited):
                client = client or isinstance(event, ClientToolCall)
                yield event
            if client or limited:
                stop = "client_tools" if client else "max_rounds"
                break
        yield LoopDone(
            _summed([r.stats for r in rounds]),
            sum(r.reasoning_tokens for r in rounds),
            len(rounds),
            stop,
            list(self.added),
        )

    async def _prepared(self, number: int) -> PreparedPrediction:
        if number == 1:
            return await self.prepare()
        return await self.predictor.prepare_chat(self._round_request(number))

    def _round_request(self, number: int) -> ChatRequest:
        """Round 1 as the client asked (MCP tools added); later rounds on the same instance, a forced
        choice relaxed to "auto" (it was honoured once)."""
        params = self.chat.params
        tools = [*(params.tools or ()), *(t.as_function() for t in self.tools.values())]
        choice = params.tool_choice
        if number > 1 and choice not in FORCED_CHOICES:
            choice = "auto"
        model = self.chat.model if self._first is None else self._first.instance.identifier
        return replace(
            self.chat,
            model=model,
            messages=list(self.messages),
            params=replace(params, tools=tools or None, tool_choice=choice),
        )

    async def _round(self, number: int, prepared: PreparedPrediction) -> AsyncIterator[LoopEvent]:
        """One prediction, its events translated."""
        parsed: list[ParsedEvent] = []
        ids: dict[int, str] = {}
        async with self.predictor.run(prepared) as prediction:
            yield RoundStarted(number, prepared)
            async for event in prediction.output():
                if isinstance(event, Done):
                    message = collect(parsed)
                    reasoning = await _count(prepared, message.reasoning)
                    yield RoundDone(number, event.stats, message, reasoning)
                    return
                if isinstance(event, ContentDelta | ReasoningDelta | ToolCallBegin | ToolCallArgs):
                    parsed.append(event)
                translated = self._translate(event, ids)
                if translated is not None:
                    yield translated

    def _translate(self, event: Any, ids: dict[int, str]) -> LoopEvent | None:
        if isinstance(event, ToolCallBegin):
            ids[event.index] = event.id
            return ToolCallStarted(event.id, event.name, self.tools.get(event.name))
        if isinstance(event, ToolCallArgs):
            return ToolCallArgsDelta(ids.get(event.index, ""), event.text)
        if isinstance(event, ContentDelta | ReasoningDelta | PromptProgress | FirstToken):
            return event
        return None  # ToolCallEnd: the call's outcome follows the round

    async def _calls(
        self,
        calls: Sequence[ToolCall],
        prepared: PreparedPrediction,
        stats: GenerationStats,
        limited: bool,
    ) -> AsyncIterator[LoopEvent]:
        """Each call of a round, in order: MCP tools called (results cut to the room left; when `limited`,
        not called: a failure saying the round limit was reached), invalid ones answered with an error,
        client ones returned."""
        budget = _room(prepared, stats, sum(1 for c in calls if c.name not in self.client_names))
        for call in calls:
            if call.name in self.client_names:
                yield ClientToolCall(call)
                continue
            result: CallEvent | None = self._invalid(call)
            if result is None:
                tool = self.tools[call.name]
                arguments = _arguments(call.arguments) or {}
                yield ToolCallArguments(call.id, tool, arguments)  # before the call: it may take a while
                if limited:
                    result = ToolCallFailed(call.id, tool, arguments, self._limit(), self._limit())
                else:
                    result = await self._run(call.id, tool, arguments, prepared, budget)
            self._add(_tool_message(call.id, _model_text(result)))
            yield result

    def _limit(self) -> str:
        return (
            f"Not called: this request reached its limit of {self.max_rounds} "
            f"round{'' if self.max_rounds == 1 else 's'} of tool calls "
            "(the server's mcp_max_tool_rounds setting)."
        )

    def _invalid(self, call: ToolCall) -> InvalidToolCall | None:
        """LM Studio's invalid_tool_call for a name no tool has, or arguments that are no JSON object."""
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted([*self.tools, *self.client_names])) or "none"
            reason = f"Cannot find tool with name {call.name}. The tools available are: {known}."
            return InvalidToolCall(call.id, call.name, "invalid_name", reason, call.arguments)
        if _arguments(call.arguments) is None:
            reason = (
                f"The arguments of {call.name} are not a JSON object ({call.arguments!r}); "
                "call it again with a JSON object that fits its parameters."
            )
            return InvalidToolCall(call.id, call.name, "invalid_arguments", reason, call.arguments, tool)
        return None

    async def _run(
        self,
        call_id: str,
        tool: McpTool,
        arguments: Mapping[str, Any],
        prepared: PreparedPrediction,
        budget: int,
    ) -> ToolCallSucceeded | ToolCallFailed:
        outcome = await self.host.call(tool, arguments)
        output, cut = await fit_output(outcome.output, budget, _tokenizer(prepared))
        if not outcome.ok:
            return ToolCallFailed(call_id, tool, arguments, output, outcome.error or outcome.output)
        return ToolCallSucceeded(call_id, tool, arguments, output, cut)

    def _add(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.added.append(message)


def _by_name(tools: Sequence[McpTool]) -> dict[str, McpTool]:
    """Tools by name; when two servers list the same name, the first source's wins."""
    named: dict[str, McpTool] = {}
    for tool in tools:
        if tool.name in named:
            log.warning(
                "MCP tool %r of %r hidden by the one of %r",
                tool.name,
                tool.source.label,
                named[tool.name].source.label,
            )
            continue
        named[tool.name] = tool
    return named


def _function_name(tool: Mapping[str, Any]) -> str:
    function = tool.get("function")
    name = function.get("name") if isinstance(function, Mapping) else tool.get("name")
    return name if isinstance(name, str) else ""


def _arguments(text: str) -> Mapping[str, Any] | None:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _assistant_message(message: ParsedMessage) -> dict[str, Any]:
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in message.tool_calls
    ]
    return {"role": "assistant", "content": message.content, "tool_calls": calls}


def _tool_message(call_id: str, text: str) -> dict[str, Any]:
    return {"role": "tool", "content": text, "tool_call_id": call_id}


def _model_text(event: CallEvent) -> str:
    """What the model reads as the call's result."""
    if isinstance(event, InvalidToolCall):
        return f"Error: {event.reason}"
    if isinstance(event, ToolCallFailed):
        return event.output if event.output.startswith("Error") else f"Error: {event.output}"
    return event.output


def _room(prepared: PreparedPrediction, stats: GenerationStats, calls: int) -> int:
    """Tokens each tool result of this round may take: the context less what is in it (the prompt and the
    model's call), room for the answer, and the tool messages' markup."""
    n_ctx = prepared.instance.context_length
    answer = min(prepared.settings.max_tokens or ANSWER_ROOM, n_ctx // 2)
    free = n_ctx - stats.prompt_tokens - stats.predicted_tokens - answer - MESSAGE_OVERHEAD * calls
    return max(0, free // max(1, calls))


Counter = Callable[[str], Awaitable[int]]


def _tokenizer(prepared: PreparedPrediction) -> Counter:
    runtime = prepared.instance.runtime

    async def count(text: str) -> int:
        tokens = await asyncio.to_thread(runtime.tokenize, text, add_special=False, parse_special=False)
        return len(tokens)

    return count


async def _count(prepared: PreparedPrediction, text: str) -> int:
    return await _tokenizer(prepared)(text) if text else 0


def notice(kept: int, total: int) -> str:
    return f"\n[output truncated: {kept} of {total} characters]"


async def fit_output(text: str, budget: int, count: Counter) -> tuple[str, bool]:
    """`text` cut to `budget` tokens (counted by `count`), with a notice saying how much was kept; never
    cut silently. A text of no more bytes than the budget fits (a token is at least one byte)."""
    if len(text.encode("utf-8", "surrogatepass")) <= budget:
        return text, False
    total = await count(text)
    if total <= budget:
        return text, False
    room = max(0, budget - NOTICE_ROOM)
    keep = min(len(text), int(len(text) * room / max(1, total)))
    while keep > 0 and await count(text[:keep]) > room:
        keep = int(keep * 0.8)
    return text[:keep] + notice(keep, len(text)), True


def _summed(stats: Sequence[GenerationStats]) -> GenerationStats:
    first, last = stats[0], stats[-1]
    return replace(
        last,
        prompt_tokens=sum(s.prompt_tokens for s in stats),
        predicted_tokens=sum(s.predicted_tokens for s in stats),
        time_to_first_token_s=first.time_to_first_token_s,
        generation_time_s=sum(s.generation_time_s for s in stats),
        prompt_eval_time_s=sum(s.prompt_eval_time_s for s in stats),
        cached_prompt_tokens=sum(s.cached_prompt_tokens for s in stats),
        context_shift_tokens=sum(s.context_shift_tokens for s in stats),
        draft_tokens=sum(s.draft_tokens for s in stats),
        accepted_draft_tokens=sum(s.accepted_draft_tokens for s in stats),
        rejected_draft_tokens=sum(s.rejected_draft_tokens for s in stats),
        ignored_draft_tokens=sum(s.ignored_draft_tokens for s in stats),
    )
