"""The worker thread and the event bridge: ordering, cancellation, errors, unload while queued."""

from __future__ import annotations

import asyncio

import pytest

from openlms.core.errors import ModelUnloadedError
from openlms.core.types import Done, Fragment, GenerationRequest, LoadConfig, ModelKind, StopReason
from openlms.engine.fake import FakeBackend, FakeRuntime


def runtime(**kwargs: object) -> FakeRuntime:
    return FakeRuntime(ModelKind.LLM, LoadConfig(context_length=64), FakeBackend(**kwargs))  # type: ignore[arg-type]


async def collect(stream) -> tuple[str, Done]:  # type: ignore[no-untyped-def]
    text = ""
    async for event in stream:
        if isinstance(event, Fragment):
            text += event.text
        elif isinstance(event, Done):
            return text, event
    raise AssertionError("no Done")


async def test_requests_run_in_order_and_end_with_done() -> None:
    rt = runtime(reply=lambda p: f"answer to {p}")
    first, second = rt.generate(GenerationRequest("one")), rt.generate(GenerationRequest("two"))
    assert (await collect(first))[0] == "answer to one"
    text, done = await collect(second)
    assert text == "answer to two" and done.stats.stop_reason is StopReason.EOS
    rt.close()


async def test_cancel_stops_within_a_step() -> None:
    rt = runtime(token_delay=0.01, reply=lambda p: " ".join(["w"] * 500))
    stream = rt.generate(GenerationRequest("go"))
    seen = 0
    async for event in stream:
        if isinstance(event, Fragment):
            seen += 1
            if seen == 3:
                break
    await stream.aclose()
    await asyncio.sleep(0.05)
    assert not rt.busy  # the job ended promptly after the cancel
    rt.close()


async def test_max_tokens_and_stop_strings() -> None:
    rt = runtime(reply=lambda p: "one two three STOP four")
    text, done = await collect(rt.generate(GenerationRequest("x", max_tokens=2)))
    assert done.stats.stop_reason is StopReason.MAX_TOKENS and done.stats.predicted_tokens == 2
    text, done = await collect(rt.generate(GenerationRequest("x", stop=("STOP",))))
    assert text == "one two three " and done.stats.stop_reason is StopReason.STOP_STRING
    rt.close()


async def test_queued_requests_fail_cleanly_on_unload() -> None:
    rt = runtime(token_delay=0.02, reply=lambda p: " ".join(["w"] * 100))
    running = rt.generate(GenerationRequest("a"))
    queued = rt.generate(GenerationRequest("b"))
    await asyncio.sleep(0.05)
    assert rt.queued == 1
    await asyncio.to_thread(rt.close)
    _, done = await collect(running)
    assert done.stats.stop_reason is StopReason.MODEL_UNLOADED
    with pytest.raises(ModelUnloadedError):
        await collect(queued)
