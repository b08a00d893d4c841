"""The server-side tool loop (services/tool_loop.py) over the fake engine and a scripted ToolHost: the
fake model's reply depends on the prompt it gets, so each round sees what the loop fed back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from openlms.engine.fake import FakeBackend
from openlms.parsers.output.events import ToolCall
from openlms.server.state import AppState
from openlms.services.generation import ChatRequest
from openlms.services.mcp.types import McpTool, ToolOutcome, ToolSource
from openlms.services.params import PredictionParams
from openlms.services.tool_loop import (
    ClientToolCall,
    InvalidToolCall,
    LoopDone,
    LoopEvent,
    RoundDone,
    RoundStarted,
    ToolCallArguments,
    ToolCallFailed,
    ToolCallStarted,
    ToolCallSucceeded,
    ToolLoop,
    fit_output,
)
from tests.support.tools import DELIVERY_TOOL
from tests.unit.server.conftest import make_app

CHAT = "tiny-chat"
SOURCE = ToolSource("calc")
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
ADD = McpTool(SOURCE, "add", "Add two integers", SCHEMA)
BIG = McpTool(SOURCE, "big", "A long text", {"type": "object", "properties": {}})
ASK = [{"role": "user", "content": "What is 2 + 3?"}]


def call(name: str, arguments: Any) -> str:
    return f'[TOOL_REQUEST]{{"name": "{name}", "arguments": {json.dumps(arguments)}}}[END_TOOL_REQUEST]'


class Host:
    """A ToolHost whose tools answer by name; `hang` blocks until cancelled."""

    def __init__(self, outcomes: Mapping[str, ToolOutcome]) -> None:
        self.outcomes = outcomes
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.entered = asyncio.Event()
        self.cancelled = False

    async def tools(self, sources: Sequence[ToolSource]) -> list[McpTool]:
        return [ADD, BIG]

    async def call(self, tool: McpTool, arguments: Mapping[str, Any]) -> ToolOutcome:
        self.calls.append((tool.name, dict(arguments)))
        self.entered.set()
        if tool.name == "hang":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        return self.outcomes[tool.name]


class Script:
    """The fake model: `first` in the first round, `then` in every later one."""

    def __init__(self, first: str, then: str = "The answer is 5.") -> None:
        self.first, self.then = first, then
        self.rounds = 0

    def __call__(self, prompt: str) -> str:
        self.rounds += 1
        return self.first if self.rounds == 1 else self.then


def prompts(events: list[LoopEvent]) -> list[str]:
    """The exact prompt of each round."""
    return [e.prepared.prompt for e in events if isinstance(e, RoundStarted)]


@pytest.fixture
async def state(home: Path, fake: FakeBackend) -> AsyncIterator[AppState]:
    app = make_app(home, fake)
    async with app.router.lifespan_context(app):
        yield app.state.openlms


async def run(
    state: AppState,
    host: Host,
    tools: Sequence[McpTool] = (ADD,),
    max_rounds: int = 8,
    params: PredictionParams | None = None,
) -> list[LoopEvent]:
    chat = ChatRequest(CHAT, ASK, params or PredictionParams())
    loop = ToolLoop(state.predictor, host, chat, tools, max_rounds)
    await loop.prepare()
    return [event async for event in loop.events()]


def of(events: list[LoopEvent], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def test_tool_is_called_and_its_result_fed_back(state: AppState, fake: FakeBackend) -> None:
    fake.reply = Script(call("add", {"a": 2, "b": 3}))
    host = Host({"add": ToolOutcome(True, "5")})
    events = await run(state, host)
    assert host.calls == [("add", {"a": 2, "b": 3})]
    started = of(events, ToolCallStarted)
    assert [(s.name, s.tool) for s in started] == [("add", ADD)]
    assert [a.arguments for a in of(events, ToolCallArguments)] == [{"a": 2, "b": 3}]
    succeeded = of(events, ToolCallSucceeded)
    assert [(s.output, s.truncated) for s in succeeded] == [("5", False)]
    assert "Result of add" in prompts(events)[1] and "\n5[END_TOOL_RESULT]" in prompts(events)[1]
    done = events[-1]
    assert isinstance(done, LoopDone) and done.stop == "answer" and done.rounds == 2
    rounds = of(events, RoundDone)
    assert done.stats.prompt_tokens == sum(r.stats.prompt_tokens for r in rounds)
    assert done.stats.predicted_tokens == sum(r.stats.predicted_tokens for r in rounds)
    assert [m["role"] for m in done.messages] == ["assistant", "tool", "assistant"]
    assert done.messages[0]["tool_calls"][0]["function"]["name"] == "add"
    assert done.messages[-1]["content"] == "The answer is 5."


async def test_failing_tool_goes_to_the_model_and_the_loop_goes_on(
    state: AppState, fake: FakeBackend
) -> None:
    fake.reply = Script(call("add", {"a": 2, "b": 3}), then="It failed, sorry.")
    host = Host({"add": ToolOutcome(False, "Error: tool add raised: boom", error="boom")})
    events = await run(state, host)
    failed = of(events, ToolCallFailed)
    assert len(failed) == 1 and failed[0].error == "boom"
    assert "boom" in prompts(events)[1]
    done = events[-1]
    assert isinstance(done, LoopDone) and done.rounds == 2 and done.stop == "answer"


async def test_too_large_result_is_cut_with_a_notice(state: AppState, fake: FakeBackend) -> None:
    fake.reply = Script(call("big", {}))
    text = "word " * 20_000  # far more than the fake model's 2048-token context
    host = Host({"big": ToolOutcome(True, text)})
    events = await run(state, host, tools=(BIG,))
    succeeded = of(events, ToolCallSucceeded)
    assert len(succeeded) == 1 and succeeded[0].truncated
    output = succeeded[0].output
    assert output.endswith(f"of {len(text)} characters]") and "[output truncated: " in output
    assert len(output) < len(text)
    assert isinstance(events[-1], LoopDone) and events[-1].rounds == 2  # the next round still fit


async def test_fit_output_keeps_what_fits_and_says_so() -> None:
    async def words(text: str) -> int:
        return len(text.split())

    assert await fit_output("a b c", 10, words) == ("a b c", False)
    cut, truncated = await fit_output("x " * 1000, 100, words)
    assert truncated and await words(cut) <= 100
    kept = len(cut.split("\n[output truncated: ")[0])
    assert cut.endswith(f"[output truncated: {kept} of 2000 characters]")
    nothing, _ = await fit_output("y " * 50, 0, words)
    assert nothing == "\n[output truncated: 0 of 100 characters]"


async def test_rounds_are_capped(state: AppState, fake: FakeBackend) -> None:
    always = call("add", {"a": 1, "b": 1})
    fake.reply = Script(always, then=always)  # the model never stops calling
    host = Host({"add": ToolOutcome(True, "2")})
    events = await run(state, host, max_rounds=2)
    assert len(host.calls) == 2  # the third round's call is not made
    done = events[-1]
    assert isinstance(done, LoopDone) and done.stop == "max_rounds" and done.rounds == 3
    failed = of(events, ToolCallFailed)
    assert len(failed) == 1 and "limit of 2 rounds" in failed[0].error
    assert "mcp_max_tool_rounds" in failed[0].output
    assert [m["role"] for m in done.messages] == ["assistant", "tool"] * 3  # kept for a continuation


async def test_arguments_that_are_no_object_are_fed_back_as_invalid(
    state: AppState, fake: FakeBackend
) -> None:
    broken = '[TOOL_REQUEST]{"name": "add", "arguments": {"a": 2 "b": 3}}[END_TOOL_REQUEST]'
    fake.reply = Script(broken, then="Let me fix that.")
    host = Host({})
    events = await run(state, host)
    invalid = of(events, InvalidToolCall)
    assert [(i.name, i.kind, i.tool) for i in invalid] == [("add", "invalid_arguments", ADD)]
    assert invalid[0].arguments == '{"a": 2 "b": 3}'
    assert "are not a JSON object" in prompts(events)[1]  # the model is told
    assert host.calls == []
    assert isinstance(events[-1], LoopDone) and events[-1].rounds == 2


def test_unknown_tool_name_is_invalid() -> None:
    """Parsers keep calls to tools nobody offered as text; a name the loop cannot place is still refused."""
    loop = ToolLoop(None, Host({}), ChatRequest(CHAT, ASK), [ADD], 8)  # type: ignore[arg-type]
    invalid = loop._invalid(ToolCall("c1", "subtract", '{"a": 1}'))
    assert invalid is not None and invalid.kind == "invalid_name"
    assert invalid.reason.startswith("Cannot find tool with name subtract.") and "add" in invalid.reason
    assert loop._invalid(ToolCall("c2", "add", '{"a": 1}')) is None


async def test_client_function_call_ends_the_loop(state: AppState, fake: FakeBackend) -> None:
    fake.reply = Script(call("get_delivery_date", {"order_id": "123"}))
    host = Host({})
    events = await run(state, host, params=PredictionParams(tools=[DELIVERY_TOOL]))
    client = of(events, ClientToolCall)
    assert [c.call.name for c in client] == ["get_delivery_date"]
    assert json.loads(client[0].call.arguments) == {"order_id": "123"}
    started = of(events, ToolCallStarted)
    assert started[0].tool is None
    done = events[-1]
    assert isinstance(done, LoopDone) and done.stop == "client_tools" and done.rounds == 1
    assert host.calls == []


async def test_client_gone_cancels_a_pending_call(state: AppState, fake: FakeBackend) -> None:
    hang = McpTool(SOURCE, "hang", "Never returns", {"type": "object", "properties": {}})
    fake.reply = Script(call("hang", {}))
    host = Host({})
    loop = ToolLoop(state.predictor, host, ChatRequest(CHAT, ASK), [hang], 8)
    await loop.prepare()
    events = loop.events()
    async for event in events:
        if isinstance(event, ToolCallArguments):
            break
    pending = asyncio.create_task(anext(events))
    await asyncio.wait_for(host.entered.wait(), 10)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await events.aclose()
    assert host.cancelled


async def test_forced_choice_is_honoured_once(state: AppState, fake: FakeBackend) -> None:
    fake.reply = Script(call("add", {"a": 2, "b": 3}))
    host = Host({"add": ToolOutcome(True, "5")})
    events = await run(state, host, params=PredictionParams(tool_choice="required"))
    assert len(host.calls) == 1
    assert fake.requests[0].grammar is not None  # round 1 forced a call
    assert isinstance(events[-1], LoopDone) and events[-1].rounds == 2
