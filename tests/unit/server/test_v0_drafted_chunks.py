"""openlms's extension to `/api/v0/chat/completions` streams: chunks whose text holds accepted draft
tokens carry `contains_drafted: true` (the app colours them); `/v1` chunks never do."""

from __future__ import annotations

import json
from typing import Any

import httpx

CHAT = "tiny-chat"


async def chunks(client: httpx.AsyncClient, path: str, **extra: Any) -> list[dict[str, Any]]:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "Hi"}], "stream": True, **extra}
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    return [json.loads(data) for data in lines if data != "[DONE]"]


async def test_v0_marks_drafted_chunks_and_reports_counts(client: httpx.AsyncClient) -> None:
    got = await chunks(client, "/api/v0/chat/completions", draft_model=CHAT)
    drafted = [c for c in got if c.get("contains_drafted")]
    assert drafted and all(c["choices"][0]["delta"].get("content") for c in drafted)
    stats = got[-1]["stats"]  # fragments sent together are one chunk: a chunk may hold several
    assert stats["total_draft_tokens_count"] >= stats["accepted_draft_tokens_count"] > 0


async def test_no_mark_without_a_draft_or_on_v1(client: httpx.AsyncClient) -> None:
    assert not any("contains_drafted" in c for c in await chunks(client, "/api/v0/chat/completions"))
    v1 = await chunks(client, "/v1/chat/completions", draft_model=CHAT)
    assert v1 and not any("contains_drafted" in c for c in v1)


async def test_every_field_the_app_sends_is_accepted(client: httpx.AsyncClient) -> None:
    """What the chat sends from its settings (app/src/chat/settings/settings.ts, requestFields)."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fields = {
        "temperature": 0.2,
        "max_tokens": 8,
        "top_k": 20,
        "top_p": 0.9,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
        "context_overflow_policy": "rollingWindow",
        "stop": ["END"],
        "draft_model": CHAT,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    }
    got = await chunks(client, "/api/v0/chat/completions", **fields)
    assert got[-1]["stats"]["draft_model"] == CHAT
