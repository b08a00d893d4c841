"""The decode rate a `lmstudio` SDK client sees (the websocket API), for bench/run.py."""

from __future__ import annotations

import time

import lmstudio as lms


def sdk_decode(host: str, model: str, n_gen: int) -> float:
    """Streamed decode rate through the SDK: (tokens - 1) / (last fragment - first fragment), tokens from
    the result's stats (a fragment may carry several tokens)."""
    with lms.Client(host) as client:
        llm = client.llm.model(model)
        stamps: list[float] = []
        stream = llm.complete_stream(
            "Once upon a time", config={"maxTokens": n_gen, "temperature": 0, "repeatPenalty": 1.0}
        )
        for fragment in stream:
            if fragment.content:
                stamps.append(time.perf_counter())
        tokens = stream.result().stats.predicted_tokens_count
    assert tokens and tokens > 8 and len(stamps) > 1, f"too short a stream: {tokens} tokens"
    return (tokens - 1) / (stamps[-1] - stamps[0])
