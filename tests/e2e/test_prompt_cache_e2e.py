"""The prompt cache on the real server: two conversations with long, different system prompts served
in turn; each follow-up turn gets its prefix back from the cache (the other conversation replaced it in
the KV cache in between), as `usage.prompt_tokens_details.cached_tokens` (openai client, plain and
streamed) and `stats.cached_tokens` on /api/v0."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.server import CHAT_MODEL, Server

pytestmark = [pytest.mark.e2e]

ANIMALS = ["cat", "dog", "owl", "fox", "bee", "elk", "yak", "emu", "ram", "eel"]
COLOURS = ["red", "blue", "green", "amber", "violet", "grey", "white", "black", "pink", "teal"]


def system_prompt(name: str) -> str:
    rules = [
        f"Rule {i}: the {ANIMALS[i % 10]} of {name} keeps {COLOURS[(i * 7) % 10]} stones in box {i * 3}."
        for i in range(80)
    ]
    return f"You are {name}, a careful assistant. Follow these house rules.\n" + "\n".join(rules)


def first_turn(name: str, question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt(name)}, {"role": "user", "content": question}]


def test_interleaved_conversations_reuse_their_cached_prefix(server: Server) -> None:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0) as client:

        def ask(messages: list[dict[str, str]]) -> tuple[str, int, int]:
            reply = client.chat.completions.create(
                model=CHAT_MODEL,
                messages=messages,
                temperature=0,
                max_tokens=12,  # type: ignore[arg-type]
            )
            usage = reply.usage
            assert usage is not None and usage.prompt_tokens_details is not None
            cached = usage.prompt_tokens_details.cached_tokens
            assert cached is not None
            return reply.choices[0].message.content or "", usage.prompt_tokens, cached

        a = first_turn("Alpha", "Which box holds the cat's stones?")
        b = first_turn("Beta", "Which colour are the owl's stones?")
        answer_a, prompt_a, _ = ask(a)
        assert prompt_a >= 1000
        answer_b, _, _ = ask(b)  # replaces A in the KV cache
        follow_a = [
            *a,
            {"role": "assistant", "content": answer_a},
            {"role": "user", "content": "And the dog's?"},
        ]
        _, prompt, cached = ask(follow_a)
        assert cached >= 900 and cached < prompt

        follow_b = [
            *b,
            {"role": "assistant", "content": answer_b},
            {"role": "user", "content": "And the fox's?"},
        ]
        stream = client.chat.completions.create(
            model=CHAT_MODEL,
            messages=follow_b,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=12,
            stream=True,
            stream_options={"include_usage": True},
        )
        usages = [chunk.usage for chunk in stream if chunk.usage is not None]
    assert len(usages) == 1 and usages[0].prompt_tokens_details is not None
    assert (usages[0].prompt_tokens_details.cached_tokens or 0) >= 900


def test_api_v0_reports_cached_tokens(server: Server) -> None:
    c = first_turn("Gamma", "Which box holds the elk's stones?")
    d = first_turn("Delta", "Which box holds the yak's stones?")

    def ask(messages: list[dict[str, str]]) -> dict[str, object]:
        body = {"model": CHAT_MODEL, "messages": messages, "temperature": 0, "max_tokens": 8}
        reply = httpx.post(f"{server.url}/api/v0/chat/completions", json=body, timeout=300)
        assert reply.status_code == 200, reply.text
        data: dict[str, object] = reply.json()
        return data

    ask(c)
    ask(d)
    again = ask([*c, {"role": "assistant", "content": "Box 12."}, {"role": "user", "content": "Thanks."}])
    stats, usage = again["stats"], again["usage"]
    assert isinstance(stats, dict) and isinstance(usage, dict)
    assert stats["cached_tokens"] >= 900
    assert usage["prompt_tokens_details"] == {"cached_tokens": stats["cached_tokens"]}
