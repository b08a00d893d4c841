"""Continuous batching on a real (tiny) llama.cpp model: several predictions share each decode step and each
gets what it gets alone; a cancel frees only its own slot; the queue is bounded; shared prefixes are
borrowed between slots; a full cache stops the prediction admitted last, with an error that says so."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openlms.core.errors import ServerBusyError
from openlms.core.types import Done, Fragment, GenerationRequest, LoadConfig, SamplingParams, StopReason
from openlms.engine.llama.runtime import LlamaBackend
from openlms.engine.runtime import ModelRuntime
from tests.support.tiny_gguf import BOS_ID, EOS_ID
from tests.unit.engine.test_llama_runtime import describe, run

GREEDY = SamplingParams(temperature=0.0, repeat_penalty=1.0, logit_bias={EOS_ID: -100.0, 2: -100.0})


def prompt(seed: int, length: int = 40, shared: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    common = np.random.default_rng(99).integers(261, 320, shared).tolist()
    return [BOS_ID, *common, *rng.integers(261, 320, length).tolist()]


async def load(path: Path, *, parallel: int = 4, context: int = 1024, max_queued: int = 32) -> ModelRuntime:
    backend = LlamaBackend(max_queued=max_queued)
    config = LoadConfig(context_length=context, parallel=parallel)
    return await asyncio.to_thread(backend.load, describe(path), config, lambda p: None)


@pytest.fixture
async def batched(tiny_llama: Path) -> Any:
    rt = await load(tiny_llama)
    yield rt
    await asyncio.to_thread(rt.close)


async def test_parallel_predictions_match_serial_ones(batched: ModelRuntime, tiny_llama: Path) -> None:
    requests = [GenerationRequest(prompt(seed), GREEDY, max_tokens=24 + 8 * seed) for seed in range(6)]
    serial = await load(tiny_llama, parallel=1)
    try:
        alone = [(await run(serial, r))[0] for r in requests]
    finally:
        await asyncio.to_thread(serial.close)
    together = await asyncio.gather(*(run(batched, r) for r in requests))
    assert [text for text, _, _ in together] == alone
    assert [d.stats.predicted_tokens for _, d, _ in together] == [r.max_tokens for r in requests]
    assert batched.load_config.parallel == 4


async def test_predictions_overlap_in_time(batched: ModelRuntime) -> None:
    seen: list[int] = []

    async def watch() -> None:
        for _ in range(200):
            seen.append(batched.usage.running)
            await asyncio.sleep(0.002)

    requests = [GenerationRequest(prompt(seed), GREEDY, max_tokens=200) for seed in range(3)]
    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(run(batched, r) for r in requests))
    watcher.cancel()
    assert max(seen) == 3  # all three ran at once
    usage = batched.usage
    assert usage.running == 0 and usage.queued == 0 and usage.parallel == 4
    assert 0 < usage.kv_used <= usage.kv_size


async def test_cancelling_one_leaves_the_others_untouched(batched: ModelRuntime) -> None:
    requests = [GenerationRequest(prompt(seed), GREEDY, max_tokens=60) for seed in range(4)]
    alone = [(await run(batched, r))[0] for r in requests]
    requests[1] = GenerationRequest(prompt(1), GREEDY, max_tokens=900)  # long: the cancel comes first
    streams = [batched.generate(r) for r in requests]

    async def consume(i: int) -> tuple[str, Done | None]:
        text = ""
        async for event in streams[i]:
            if isinstance(event, Fragment):
                text += event.text
                if i == 1 and len(text) > 3:
                    streams[i].cancel()
            elif isinstance(event, Done):
                return text, event
        return text, None

    results = await asyncio.gather(*(consume(i) for i in range(4)))
    assert [results[i][0] for i in (0, 2, 3)] == [alone[i] for i in (0, 2, 3)]
    cancelled = results[1][1]
    assert cancelled is not None and cancelled.stats.stop_reason is StopReason.USER_STOPPED
    assert cancelled.stats.predicted_tokens < 900
    again = GenerationRequest(prompt(1), GREEDY, max_tokens=60)
    assert (await run(batched, again))[0] == alone[1]  # its slot serves again


async def test_a_full_queue_refuses_with_server_busy(tiny_llama: Path) -> None:
    rt = await load(tiny_llama, parallel=1, max_queued=1)
    try:
        long = GenerationRequest(prompt(1), GREEDY, max_tokens=400)
        running, waiting = rt.generate(long), rt.generate(long)
        with pytest.raises(ServerBusyError) as refused:
            rt.generate(long)
        assert refused.value.retry_after_s >= 1 and "parallel" in refused.value.message
        first = await anext(running)
        assert first is not None and rt.usage.queued == 1
        running.cancel()
        waiting.cancel()
        async for _ in running:
            pass
        async for _ in waiting:
            pass
        text, done, _ = await run(rt, GenerationRequest(prompt(2), GREEDY, max_tokens=8))
        assert done.stats.predicted_tokens == 8 and text
    finally:
        await asyncio.to_thread(rt.close)


async def test_a_shared_prefix_is_borrowed_from_another_slot(batched: ModelRuntime, tiny_llama: Path) -> None:
    a, b = prompt(1, shared=200), prompt(2, shared=200)
    await run(batched, GenerationRequest(a, GREEDY, max_tokens=4))
    request = GenerationRequest(b, GREEDY, max_tokens=16)
    text, done, _ = await run(batched, request)
    assert done.stats.cached_prompt_tokens == 201  # BOS + the shared 200, evaluated once
    inner: Any = batched
    busy_slots = [s for s in inner.worker.table.slots if s.tokens]
    assert len(busy_slots) == 2  # A kept its own slot
    cold = await load(tiny_llama, parallel=1)
    try:
        assert text == (await run(cold, request))[0]
    finally:
        await asyncio.to_thread(cold.close)


async def test_a_full_context_stops_the_last_admitted_with_a_clear_error(tiny_llama: Path) -> None:
    rt = await load(tiny_llama, parallel=4, context=256)
    try:
        n_ctx = rt.context_length
        requests = [GenerationRequest(prompt(seed, 30), GREEDY, max_tokens=n_ctx - 40) for seed in range(3)]
        outcomes = await asyncio.gather(*(run(rt, r) for r in requests), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert errors and all(isinstance(e, ServerBusyError) for e in errors)
        assert "context" in str(errors[0]) and "full" in str(errors[0])
        finished = [o for o in outcomes if not isinstance(o, BaseException)]
        assert finished and all(d.stats.predicted_tokens == n_ctx - 40 for _, d, _ in finished)
        assert isinstance(outcomes[0], tuple)  # the first admitted always finishes
    finally:
        await asyncio.to_thread(rt.close)


@pytest.mark.parametrize(("parallel", "unique"), [(4, 6), (2, 80)])
async def test_interleaved_conversations_keep_their_own_turns(
    tiny_llama: Path, parallel: int, unique: int
) -> None:
    """Four chats with one long system prompt, served in turn: every follow-up reuses its own first turn
    (from its slot; with fewer slots than chats, from host RAM, where a state is kept when it spares at
    least the prompt cache's `min_tokens`)."""
    backend = LlamaBackend(prompt_cache_mb=64)
    config = LoadConfig(context_length=2048, parallel=parallel)
    rt = await asyncio.to_thread(backend.load, describe(tiny_llama), config, lambda p: None)
    try:
        firsts = [prompt(seed, unique, shared=300) for seed in range(4)]
        answers = [(await run(rt, GenerationRequest(t, GREEDY, max_tokens=12)))[0] for t in firsts]
        for tokens, answer in zip(firsts, answers, strict=True):
            follow_up = [*tokens, *rt.tokenize(answer), 300, 301, 302]
            _, done, _ = await run(rt, GenerationRequest(follow_up, GREEDY, max_tokens=4))
            assert done.stats.cached_prompt_tokens >= len(tokens)
    finally:
        await asyncio.to_thread(rt.close)
