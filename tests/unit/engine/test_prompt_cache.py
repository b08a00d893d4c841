"""The host-RAM prompt cache: a conversation served again after another one restores its saved KV state
(reported as cached prompt tokens), generates exactly what a cold start generates, and the cache stays
within its byte budget, least recently used out first."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import llama_cpp.llama_cpp as C
import numpy as np
import pytest

from openlms.core.types import ContextOverflowPolicy, DraftSpec, GenerationRequest, LoadConfig, SamplingParams
from openlms.engine.llama.prompt_cache import PromptCache
from openlms.engine.llama.runtime import LlamaBackend
from openlms.engine.runtime import ModelRuntime
from tests.support.tiny_gguf import BOS_ID, EOS_ID
from tests.unit.engine.test_llama_runtime import describe, run

TINY_CONTEXT = 1024
GREEDY = SamplingParams(temperature=0.0, repeat_penalty=1.0, logit_bias={EOS_ID: -100.0, 2: -100.0})
MIDDLE = ContextOverflowPolicy.TRUNCATE_MIDDLE
SHARED = 20  # leading tokens every conversation shares (a system prompt)


def conversation(seed: int, length: int = 300) -> list[int]:
    rng = np.random.default_rng(seed)
    shared = np.random.default_rng(99).integers(261, 320, SHARED).tolist()
    return [BOS_ID, *shared, *rng.integers(261, 320, length).tolist()]


async def load(path: Path, mb: int) -> ModelRuntime:
    backend = LlamaBackend(prompt_cache_mb=mb)
    return await asyncio.to_thread(
        backend.load, describe(path), LoadConfig(context_length=1024, parallel=1), lambda p: None
    )


def live(rt: ModelRuntime) -> Any:
    """The one slot's SequenceCache (these tests load one slot: one live sequence, as the cache was built)."""
    inner: Any = rt
    return inner.worker.table.slots[0].cache


def use_store(rt: ModelRuntime, cache: PromptCache) -> None:
    inner: Any = rt
    inner.worker.table.store = cache
    for slot in inner.worker.table.slots:
        slot.cache.store = cache


@pytest.fixture
async def cached_llm(tiny_llama: Path) -> Any:
    rt = await load(tiny_llama, 64)
    yield rt
    await asyncio.to_thread(rt.close)


def store(rt: ModelRuntime) -> PromptCache | None:
    cache: PromptCache | None = live(rt).store
    return cache


async def cold_text(path: Path, request: GenerationRequest) -> str:
    fresh = await load(path, 0)
    try:
        text, _, _ = await run(fresh, request)
    finally:
        await asyncio.to_thread(fresh.close)
    return text


async def test_a_conversation_served_after_another_is_restored_exactly(
    cached_llm: ModelRuntime, tiny_llama: Path
) -> None:
    a, b = conversation(1), conversation(2)
    first, _, _ = await run(cached_llm, GenerationRequest(a, GREEDY, max_tokens=16))
    await run(cached_llm, GenerationRequest(b, GREEDY, max_tokens=16))
    saved = store(cached_llm)
    assert saved is not None and len(saved) == 1  # A was saved when B replaced it
    follow_up = [*a, *cached_llm.tokenize(first), 270, 271, 272]
    request = GenerationRequest(follow_up, GREEDY, max_tokens=24)
    text, done, _ = await run(cached_llm, request)
    assert done.stats.cached_prompt_tokens >= len(a)  # A's prompt (and some of its answer) not recomputed
    assert text == await cold_text(tiny_llama, request)
    inner: Any = cached_llm
    held = int(C.llama_memory_seq_pos_max(inner.ctx.memory, 0)) + 1
    assert held == len(live(cached_llm).tokens) == len(follow_up) + 23  # llama.cpp holds what the cache says
    assert len(saved) == 1 and saved.states[0].tokens[: len(b)] == tuple(b)  # B saved, A taken out


async def test_restore_with_a_draft_model_is_exact(cached_llm: ModelRuntime, tiny_llama: Path) -> None:
    a, b = conversation(3), conversation(4)
    draft = DraftSpec(describe(tiny_llama), num_draft_tokens=4)
    await run(cached_llm, GenerationRequest(a, GREEDY, max_tokens=8, draft=draft))
    await run(cached_llm, GenerationRequest(b, GREEDY, max_tokens=8, draft=draft))
    request = GenerationRequest([*a, 280, 281], GREEDY, max_tokens=24, draft=draft)
    text, done, _ = await run(cached_llm, request)
    assert done.stats.cached_prompt_tokens >= len(a)
    assert done.stats.draft_tokens > 0
    assert text == await cold_text(tiny_llama, request)


async def test_a_regenerate_saves_nothing(cached_llm: ModelRuntime) -> None:
    request = GenerationRequest(conversation(5), GREEDY, max_tokens=80)
    await run(cached_llm, request)
    _, done, _ = await run(cached_llm, request)
    assert done.stats.cached_prompt_tokens == done.stats.prompt_tokens - 1
    saved = store(cached_llm)
    assert saved is not None and len(saved) == 0  # only the answer was dropped


async def test_least_recently_used_states_leave_first(cached_llm: ModelRuntime) -> None:
    size = await asyncio.to_thread(_state_size_of, cached_llm, conversation(10))
    use_store(cached_llm, PromptCache(int(size * 2.5)))
    for seed in (10, 11, 12, 13):
        await run(cached_llm, GenerationRequest(conversation(seed), GREEDY, max_tokens=4))
    saved = store(cached_llm)
    assert saved is not None and len(saved) == 2 and saved.used <= saved.budget
    kept = [s.tokens[: len(conversation(0))] for s in saved.states]
    assert kept == [tuple(conversation(11)), tuple(conversation(12))]  # 10 evicted, 13 is live
    _, done, _ = await run(cached_llm, GenerationRequest(conversation(10), GREEDY, max_tokens=4))
    assert done.stats.cached_prompt_tokens == SHARED + 1  # gone: only the shared prefix was reused
    _, done, _ = await run(cached_llm, GenerationRequest(conversation(12), GREEDY, max_tokens=4))
    assert done.stats.cached_prompt_tokens == len(conversation(12)) - 1


def _state_size_of(rt: ModelRuntime, tokens: list[int]) -> int:
    """The size of a saved state of about `tokens` (+ a short answer), on the worker thread."""
    inner: Any = rt

    def measure() -> int:
        inner.ctx.clear()
        live(rt).tokens.clear()
        inner.ctx.decode(tokens + [300, 301, 302, 303], 0)
        live(rt).tokens.extend(tokens + [300, 301, 302, 303])
        return int(inner.ctx.state_size())

    return int(inner.worker.call(measure))


async def test_zero_turns_the_cache_off(tiny_llama: Path) -> None:
    rt = await load(tiny_llama, 0)
    try:
        assert store(rt) is None
        a, b = conversation(6), conversation(7)
        await run(rt, GenerationRequest(a, GREEDY, max_tokens=4))
        await run(rt, GenerationRequest(b, GREEDY, max_tokens=4))
        _, done, _ = await run(rt, GenerationRequest(a, GREEDY, max_tokens=4))
        assert done.stats.cached_prompt_tokens == SHARED + 1
    finally:
        await asyncio.to_thread(rt.close)


async def test_a_state_bigger_than_the_budget_is_not_kept(cached_llm: ModelRuntime) -> None:
    inner: Any = cached_llm
    use_store(cached_llm, PromptCache(1000))  # bytes: less than any state of 300 tokens
    for seed in (20, 21, 20):
        _, done, _ = await run(cached_llm, GenerationRequest(conversation(seed), GREEDY, max_tokens=4))
    assert len(inner.worker.table.store) == 0 and inner.worker.table.store.used == 0
    assert done.stats.cached_prompt_tokens == SHARED + 1


async def test_a_shifted_conversation_is_never_restored_past_its_kept_tokens(tiny_llama: Path) -> None:
    backend = LlamaBackend(prompt_cache_mb=64)
    config = LoadConfig(context_length=256, parallel=1)
    rt = await asyncio.to_thread(backend.load, describe(tiny_llama), config, lambda p: None)
    try:
        a, b = conversation(30, 100), conversation(31, 100)
        long = GenerationRequest(a, GREEDY, max_tokens=rt.context_length + 50, keep_tokens=4, overflow=MIDDLE)
        _, done, _ = await run(rt, long)
        assert done.stats.context_shift_tokens > 0
        await run(rt, GenerationRequest(b, GREEDY, max_tokens=8))
        request = GenerationRequest([*a, 290, 291], GREEDY, max_tokens=16)
        text, done, _ = await run(rt, request)
        assert done.stats.cached_prompt_tokens <= SHARED + 1  # nothing computed with dropped tokens in view
        assert text == await cold_text(tiny_llama, request)
    finally:
        await asyncio.to_thread(rt.close)
