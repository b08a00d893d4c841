"""Context shift: past the end of a small context, generation goes on by dropping tokens (unless the policy
is stopAtLimit), and the prefix cache stays consistent for the next request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import llama_cpp.llama_cpp as C
import pytest

from openlms.core.types import (
    ContextOverflowPolicy,
    GenerationRequest,
    LoadConfig,
    SamplingParams,
    StopReason,
)
from openlms.engine.fake import FakeBackend
from openlms.engine.runtime import ModelRuntime
from tests.support.tiny_gguf import EOS_ID
from tests.unit.engine.conftest import load_tiny
from tests.unit.engine.test_llama_runtime import describe, run

N_CTX = 64  # llama.cpp pads a context to a multiple of 256: the tests read the real size
NO_EOS = SamplingParams(temperature=0.0, repeat_penalty=1.0, logit_bias={EOS_ID: -100.0, 2: -100.0})
PROMPT = "hello world the cat sat on the mat"


TINY_CONTEXT = N_CTX


async def load(path: Path) -> ModelRuntime:
    return await load_tiny(path, N_CTX)


def test_the_context_is_small_enough_to_fill(llm: ModelRuntime) -> None:
    assert llm.context_length <= 256


def cache_state(rt: ModelRuntime) -> tuple[int, int]:
    """(tokens the runtime believes are cached, highest position llama.cpp holds + 1)."""
    inner: Any = rt
    cache = inner.worker.table.slots[0].cache  # requests one after another: all in the first slot
    return len(cache.tokens), int(C.llama_memory_seq_pos_max(inner.ctx.memory, 0)) + 1


@pytest.mark.parametrize(
    "policy", [ContextOverflowPolicy.TRUNCATE_MIDDLE, ContextOverflowPolicy.ROLLING_WINDOW]
)
async def test_generation_goes_past_the_context_by_shifting(
    llm: ModelRuntime, policy: ContextOverflowPolicy
) -> None:
    n = llm.context_length + 200
    request = GenerationRequest(PROMPT, NO_EOS, max_tokens=n, overflow=policy, keep_tokens=4)
    text, done, _ = await run(llm, request)
    stats = done.stats
    assert stats.stop_reason is StopReason.MAX_TOKENS and stats.predicted_tokens == n
    assert stats.context_shift_tokens >= n + stats.prompt_tokens - llm.context_length
    kept = 1 if policy is ContextOverflowPolicy.ROLLING_WINDOW else 4
    assert cache_state(llm) == (kept, kept)  # only the never-shifted tokens stay reusable
    assert text


async def test_stop_at_limit_stops_at_the_context_end(llm: ModelRuntime) -> None:
    n = llm.context_length + 200
    request = GenerationRequest(PROMPT, NO_EOS, max_tokens=n, overflow=ContextOverflowPolicy.STOP_AT_LIMIT)
    _, done, _ = await run(llm, request)
    stats = done.stats
    assert stats.stop_reason is StopReason.CONTEXT_LENGTH and stats.context_shift_tokens == 0
    assert stats.prompt_tokens + stats.predicted_tokens <= llm.context_length
    count, held = cache_state(llm)
    assert count == held == stats.prompt_tokens + stats.predicted_tokens - 1


async def test_the_next_request_after_a_shift_generates_as_on_a_fresh_model(
    llm: ModelRuntime, tiny_llama: Path
) -> None:
    follow_up = GenerationRequest(PROMPT + " and the dog", NO_EOS, max_tokens=20)
    fresh = await load(tiny_llama)
    try:
        expected, _, _ = await run(fresh, follow_up)
    finally:
        await asyncio.to_thread(fresh.close)
    shifting = GenerationRequest(
        PROMPT,
        NO_EOS,
        max_tokens=llm.context_length + 50,
        overflow=ContextOverflowPolicy.TRUNCATE_MIDDLE,
        keep_tokens=5,
    )
    _, done, _ = await run(llm, shifting)
    assert done.stats.context_shift_tokens > 0
    text, done, _ = await run(llm, follow_up)
    assert text == expected
    assert done.stats.cached_prompt_tokens == 5  # the kept prefix was reused, nothing computed after it
    count, held = cache_state(llm)
    assert count == held == done.stats.prompt_tokens + 19


@pytest.mark.parametrize("policy", list(ContextOverflowPolicy))
async def test_fake_runtime_follows_the_overflow_policy(
    tiny_llama: Path, policy: ContextOverflowPolicy
) -> None:
    backend = FakeBackend(reply=lambda prompt: " ".join(["word"] * 40))
    rt = backend.load(describe(tiny_llama), LoadConfig(context_length=16), lambda p: None)
    try:
        request = GenerationRequest("a b c", overflow=policy, grammar='root ::= "x"', render_special=True)
        text, done, _ = await run(rt, request)
    finally:
        rt.close()
    if policy is ContextOverflowPolicy.STOP_AT_LIMIT:
        assert done.stats.stop_reason is StopReason.CONTEXT_LENGTH and done.stats.context_shift_tokens == 0
    else:
        assert done.stats.stop_reason is StopReason.EOS and done.stats.predicted_tokens == 40
        assert done.stats.context_shift_tokens > 0 and text.count("word") == 40
