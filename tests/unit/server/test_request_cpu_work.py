"""Request CPU work over the real app (fake engine): a template that never ends is stopped with a 400
while other clients are served meanwhile; request counts are 400s naming the setting; lone surrogates
reach the prompt as U+FFFD."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from openlms.engine.fake import FakeBackend
from tests.unit.server.conftest import make_app

ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def limited(home: Path, fake: FakeBackend) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(home, fake, template_timeout_s=2.0, max_messages=5, max_tools=1, max_stop_strings=2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http


async def test_an_endless_template_is_stopped_while_others_are_served(limited: httpx.AsyncClient) -> None:
    template = {"type": "jinja", "jinjaPromptTemplate": {"template": ENDLESS}}
    put = await limited.put(
        "/api/v1/models/config",
        params={"model": "tiny-chat"},
        json={"prediction": {"promptTemplate": template}},
    )
    assert put.status_code == 200, put.text
    finished: list[str] = []

    async def endless() -> httpx.Response:
        response = await limited.post("/v1/chat/completions", json=CHAT)
        finished.append("endless")
        return response

    async def other(path: str) -> httpx.Response:
        await asyncio.sleep(0.2)  # let the endless render start first
        response = await limited.get(path)
        finished.append(path)
        return response

    stuck, models, v0 = await asyncio.gather(endless(), other("/v1/models"), other("/api/v0/models"))
    assert models.status_code == 200 and v0.status_code == 200
    assert finished[-1] == "endless"  # the others were answered while the template was still running
    assert stuck.status_code == 400
    error = stuck.json()["error"]
    assert error["code"] == "template_limit_exceeded" and "template_timeout_s" in error["message"]


async def test_a_failing_template_is_a_400(limited: httpx.AsyncClient) -> None:
    for source, code in (("{{ range(10**9) | length }}", "template_error"), ("{{ 'a' * 10**12 }}", None)):
        template = {"type": "jinja", "jinjaPromptTemplate": {"template": source}}
        await limited.put(
            "/api/v1/models/config",
            params={"model": "tiny-chat"},
            json={"prediction": {"promptTemplate": template}},
        )
        response = await limited.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] in (code or "template_limit_exceeded",)


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"messages": [{"role": "user", "content": "hi"}] * 6}, "max_messages"),
        ({"tools": [{"type": "function", "function": {"name": n}} for n in "ab"]}, "max_tools"),
        ({"stop": ["a", "b", "c"]}, "max_stop_strings"),
    ],
)
async def test_counts_over_the_limits_are_400s(
    limited: httpx.AsyncClient, extra: dict[str, object], setting: str
) -> None:
    for path in ("/v1/chat/completions", "/api/v0/chat/completions"):
        response = await limited.post(path, json={**CHAT, **extra})
        assert response.status_code == 400, response.text
        assert setting in response.json()["error"]["message"]


SURROGATE_BODIES = [
    (
        "/v1/chat/completions",
        '{"model": "tiny-chat", "messages": [{"role": "user", "content": "a\\ud800"}]}',
        "messages[0].content",
    ),
    (
        "/api/v0/chat/completions",
        '{"model": "tiny-chat", "messages": [{"role": "user", "content": "a\\ud800"}]}',
        "messages[0].content",
    ),
    (
        "/v1/chat/completions",
        '{"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], '
        '"tools": [{"type": "function", "function": {"name": "f\\ud800"}}]}',
        "tools[0].function.name",
    ),
    (
        "/v1/chat/completions",
        '{"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], '
        '"response_format": {"type": "json_schema", '
        '"json_schema": {"name": "x", "schema": {"const": "\\udfff"}}}}',
        "response_format.const",
    ),
    ("/v1/completions", '{"model": "tiny-chat", "prompt": "a\\ud800"}', "prompt"),
    ("/api/v0/completions", '{"model": "tiny-chat", "prompt": "a\\ud800"}', "prompt"),
    ("/v1/embeddings", '{"model": "text-embedding-tiny-embed", "input": "a\\ud800"}', "input[0]"),
    ("/api/v0/embeddings", '{"model": "text-embedding-tiny-embed", "input": ["ok", "a\\ud800"]}', "input[1]"),
    (
        "/api/v1/apply-template",
        '{"model": "tiny-chat", "messages": [{"role": "user", "content": "\\ud800"}]}',
        "messages[0].content",
    ),
]


@pytest.mark.parametrize(("path", "body", "param"), SURROGATE_BODIES)
async def test_lone_surrogates_are_400s_naming_the_field(
    limited: httpx.AsyncClient, path: str, body: str, param: str
) -> None:
    response = await limited.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and "surrogate" in error["message"]


async def test_surrogate_pairs_are_whole_characters(limited: httpx.AsyncClient) -> None:
    body = '{"model": "tiny-chat", "messages": [{"role": "user", "content": "a\\ud83d\\ude00b"}]}'
    response = await limited.post(
        "/api/v1/apply-template", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert "a\U0001f600b" in response.json()["prompt"]
