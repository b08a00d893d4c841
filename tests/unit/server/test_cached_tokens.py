"""Cached prompt tokens reach each API's usage/stats shape (the engine's `cached_prompt_tokens`)."""

from __future__ import annotations

from openlms.core.types import GenerationStats, StopReason
from openlms.server.openai import convert
from openlms.server.sdk import convert as sdk_convert

STATS = GenerationStats(
    stop_reason=StopReason.EOS,
    prompt_tokens=1200,
    predicted_tokens=7,
    time_to_first_token_s=0.1,
    generation_time_s=0.2,
    prompt_eval_time_s=0.1,
    cached_prompt_tokens=1150,
)


def test_openai_usage_has_the_cached_tokens() -> None:
    usage = convert.usage(STATS)
    assert usage["prompt_tokens"] == 1200 and usage["total_tokens"] == 1207
    assert usage["prompt_tokens_details"] == {"cached_tokens": 1150}
    chunk = convert.usage_chunk("c", "m", 0, STATS, "chat.completion.chunk")
    assert chunk["usage"]["prompt_tokens_details"]["cached_tokens"] == 1150


def test_sdk_stats_carry_no_field_the_sdk_does_not_know() -> None:
    # lmstudio 1.5's LlmPredictionStats has no cached-tokens field: nothing is added there
    assert not any("cache" in key.lower() for key in sdk_convert.stats(STATS))
