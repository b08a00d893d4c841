"""The client side of bench/peers.py: workloads that run the same way against any OpenAI-compatible
server (openlms or llama.cpp's llama-server), each measured as its client sees it.

    concurrent_chats   N streamed chat completions at once: aggregate tok/s, completed streams, TTFT
    decode_rate        one streamed completion, EOS suppressed: the decode rate between first and last token
    conversations      interleaved multi-turn chats with long system prompts: cold vs follow-up TTFT
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

# Sampling both servers get explicitly (their defaults differ: openlms follows LM Studio's).
SAMPLING = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0}
# SmolLM2's end-of-generation ids (<|endoftext|>, <|im_end|>): suppressed so every stream decodes exactly
# max_tokens on both servers (equal work, whatever the sampled text).
EOG_BIAS = {"0": -100.0, "2": -100.0}
TOPICS = [
    "a lighthouse keeper", "a lost robot", "the first snow", "a desert caravan", "a tiny dragon",
    "an old violin", "a city under the sea", "a clockmaker", "a comet", "a mountain village",
    "a secret garden", "a night train", "a paper boat", "a forgotten library", "a fox in winter",
    "a kite festival", "a broken compass", "a glass island", "a bakery at dawn", "a silent forest",
]  # fmt: skip
WORDS = ["river", "stone", "lamp", "cedar", "harbor", "violet", "copper", "meadow", "falcon", "ember"]


@dataclass
class Stream:
    """One streamed request as the client saw it (times: perf_counter seconds)."""

    started: float
    first: float | None = None
    ended: float | None = None
    tokens: int = 0  # completion tokens: the usage chunk's count, else the number of content chunks
    chunks: int = 0
    text: str = ""
    done: bool = False  # saw `data: [DONE]` after a finish_reason
    finish: str | None = None
    cached: int | None = None  # usage.prompt_tokens_details.cached_tokens (or llama-server's timings)
    error: str | None = None
    stamps: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.done and self.finish is not None and self.tokens > 0

    @property
    def ttft(self) -> float | None:
        return None if self.first is None else self.first - self.started


def _read_chunk(s: Stream, data: dict[str, Any], key: str) -> None:
    usage = data.get("usage")
    if usage:
        s.tokens = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        if details.get("cached_tokens") is not None:
            s.cached = int(details["cached_tokens"])
    timings = data.get("timings")  # llama-server: cache_n = prompt tokens taken from its cache
    if isinstance(timings, dict) and "cache_n" in timings and s.cached is None:
        s.cached = int(timings["cache_n"])
    for choice in data.get("choices") or []:
        piece = (choice.get("delta") or {}).get("content") if key == "delta" else choice.get("text")
        if piece:
            now = time.perf_counter()
            s.first = s.first or now
            s.stamps.append(now)
            s.chunks += 1
            s.text += piece
        if choice.get("finish_reason"):
            s.finish = choice["finish_reason"]


async def stream(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Stream:
    """POST a streamed request and read it to the end; never raises (errors land in `Stream.error`)."""
    s = Stream(started=time.perf_counter())
    key = "delta" if path.endswith("chat/completions") else "text"
    try:
        async with client.stream("POST", path, json=body) as response:
            if response.status_code != 200:
                s.error = f"HTTP {response.status_code}: {(await response.aread())[:300]!r}"
                return s
            async for line in response.aiter_lines():
                if line == "data: [DONE]":
                    s.done = True
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if "error" in data:
                        s.error = json.dumps(data["error"])[:300]
                    else:
                        _read_chunk(s, data, key)
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        s.error = f"{type(e).__name__}: {e}"
    s.ended = time.perf_counter()
    if s.tokens == 0:
        s.tokens = s.chunks
    return s


def client_for(base_url: str, connections: int) -> httpx.AsyncClient:
    """A client that opens a new connection for every request (no keep-alive): a pooled connection that
    the server closed while idle would fail the next request, differently on each server."""
    limits = httpx.Limits(max_connections=connections + 4, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=base_url, timeout=600, limits=limits)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def chat_body(model: str, messages: list[dict[str, str]], max_tokens: int, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        **SAMPLING,
        **extra,
    }


async def concurrent_chats(
    base_url: str, model: str, n: int, *, max_tokens: int, temperature: float, seed: int, ignore_eos: bool
) -> dict[str, Any]:
    """`n` streamed chats with distinct prompts started together: aggregate completion tokens per second
    of wall time (first request sent to last stream ended), streams complete, TTFT p50/p95."""
    bodies = [
        chat_body(
            model,
            [{"role": "user", "content": f"Tell me a story about {TOPICS[i % len(TOPICS)]} (#{seed}-{i})."}],
            max_tokens,
            temperature=temperature,
            seed=seed * 1000 + i,
            **({"logit_bias": EOG_BIAS} if ignore_eos else {}),
        )
        for i in range(n)
    ]
    async with client_for(base_url, n) as client:
        t0 = time.perf_counter()
        streams = await asyncio.gather(*(stream(client, "/v1/chat/completions", b) for b in bodies))
        wall = max(s.ended or t0 for s in streams) - t0
    ttfts = [s.ttft for s in streams if s.ttft is not None]
    errors = [s.error for s in streams if s.error]
    return {
        "streams": n,
        "completed": sum(s.ok for s in streams),
        "full_length": sum(s.ok and s.tokens == max_tokens for s in streams),
        "tokens": sum(s.tokens for s in streams),
        "wall_s": wall,
        "aggregate_tps": sum(s.tokens for s in streams) / wall if wall > 0 else float("nan"),
        "ttft_p50_s": percentile(ttfts, 50),
        "ttft_p95_s": percentile(ttfts, 95),
        "errors": errors[:3],
    }


async def decode_rate(base_url: str, model: str, n_gen: int, prompt: str = "Once upon a time") -> float:
    """A streamed /v1/completions at temperature 0 with EOS suppressed: (tokens - 1) / (last text chunk -
    first text chunk), as bench/run.py measures it. Raises when the stream did not give n_gen tokens."""
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": n_gen,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "logit_bias": EOG_BIAS,
        **SAMPLING,
    }
    async with client_for(base_url, 1) as client:
        s = await stream(client, "/v1/completions", body)
    if not s.ok or s.tokens != n_gen or len(s.stamps) < 2:
        raise RuntimeError(f"decode run: {s.tokens} of {n_gen} tokens, error {s.error}, finish {s.finish}")
    return (s.tokens - 1) / (s.stamps[-1] - s.stamps[0])


def system_prompt(name: str, tokens: int) -> str:
    """About `tokens` tokens (~21 a line with SmolLM2's tokenizer) of notes for the assistant `name`."""
    lines = [
        f"Note {i}: {name} stores the {WORDS[i % 10]} key in drawer {i * 7 % 97} of {WORDS[i * 3 % 10]} hall."
        for i in range(tokens // 21)
    ]
    return f"You are {name}. Remember these notes.\n" + "\n".join(lines)


async def conversations(
    base_url: str, model: str, *, count: int, turns: int, system_tokens: int, nonce: str, shared: bool
) -> dict[str, Any]:
    """`count` conversations taking turns one request at a time (A1 B1 C1 D1 A2 B2 ...), temperature 0,
    16-token answers (EOS suppressed: every answer has a first token to time). Follow-ups: the turns
    after the first. Cold: with distinct system prompts (`shared` False), the first turns; with one
    shared system prompt (only A1 would be cold), a probe before each round with a fresh system prompt
    of the same length. `nonce` makes every run's prompts new."""
    names = [f"Assistant {chr(ord('A') + i)} {nonce}" for i in range(count)]
    common = system_prompt(f"the archivist {nonce}", system_tokens)
    chats = [
        [{"role": "system", "content": common if shared else system_prompt(n, system_tokens)}] for n in names
    ]
    cold: list[float] = []
    follow: list[float] = []
    cached: list[int] = []
    first_shared: list[float] = []  # shared prompt: B1, C1, D1 (the system prompt seen before, in A1)
    failed: list[str] = []
    async with client_for(base_url, 1) as client:

        async def ask(messages: list[dict[str, str]]) -> Stream:
            body = chat_body(model, messages, 16, temperature=0, logit_bias=EOG_BIAS)
            s = await stream(client, "/v1/chat/completions", body)
            if not s.ok or s.ttft is None:
                failed.append(s.error or f"incomplete (finish {s.finish}, {s.tokens} tokens)")
            return s

        for t in range(turns):
            if shared:
                fresh = system_prompt(f"probe {nonce} {t}", system_tokens)
                probe = await ask(
                    [{"role": "system", "content": fresh}, {"role": "user", "content": "Hello?"}]
                )
                cold += [probe.ttft] if probe.ttft is not None else []
            for i, chat in enumerate(chats):
                chat.append({"role": "user", "content": f"Question {t + 1}: which drawer holds key {i}?"})
                s = await ask(chat)
                chat.append({"role": "assistant", "content": s.text})
                if s.ttft is None:
                    continue
                if t:
                    follow.append(s.ttft)
                    cached += [s.cached] if s.cached is not None else []
                elif not shared:
                    cold.append(s.ttft)
                elif i:
                    first_shared.append(s.ttft)
    cold_s = statistics.median(cold) if cold else float("nan")
    follow_s = statistics.median(follow) if follow else float("nan")
    return {
        "cold_ttft_s": cold_s,
        "follow_up_ttft_s": follow_s,
        "follow_up_vs_cold": follow_s / cold_s,
        "first_turn_shared_prompt_ttft_s": statistics.median(first_shared) if first_shared else None,
        "follow_up_cached_tokens_min": min(cached) if cached else None,
        "follow_up_cached_tokens": cached,  # each follow-up's reported cached prompt tokens, in order
        "requests_failed": len(failed),
        "errors": failed[:3],
    }
