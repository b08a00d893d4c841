"""Request body size and JSON depth limits over the real app and the fake engine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from openlms.engine.fake import FakeBackend
from openlms.server.guard.limits import json_too_deep
from tests.unit.server.conftest import make_app

LIMIT = 4096
CHAT = "tiny-chat"


@asynccontextmanager
async def serve(home: Path, fake: FakeBackend, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(home, fake, max_request_bytes=LIMIT, **settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http


def chat(content: str) -> dict[str, Any]:
    return {"model": CHAT, "messages": [{"role": "user", "content": content}], "max_tokens": 4}


def too_large(response: httpx.Response) -> bool:
    return response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


async def test_a_body_over_the_limit_is_413_with_or_without_content_length(
    home: Path, fake: FakeBackend
) -> None:
    big = json.dumps(chat("x" * LIMIT)).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    async def achunks() -> AsyncIterator[bytes]:
        for chunk in chunks():
            yield chunk

    async with serve(home, fake) as http:
        declared = await http.post(
            "/v1/chat/completions", content=big, headers={"content-type": "application/json"}
        )
        streamed = await http.post(
            "/v1/chat/completions", content=achunks(), headers={"content-type": "application/json"}
        )
        fits = await http.post("/v1/chat/completions", json=chat("x" * 100))
    assert too_large(declared) and too_large(streamed)
    assert str(LIMIT) in declared.json()["error"]["message"]
    assert fits.status_code == 200 and fits.json()["choices"][0]["message"]["content"]
    assert len(fake.requests) == 1  # only the one that fit reached the model


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


async def test_json_nested_deeper_than_the_limit_is_400(home: Path, fake: FakeBackend) -> None:
    async with serve(home, fake, max_json_depth=16) as http:
        deep = await http.post("/v1/chat/completions", json=chat("hi") | {"extra": nested(20)})
        shallow = await http.post("/v1/chat/completions", json=chat("hi") | {"extra": nested(8)})
        brackets_in_text = await http.post(
            "/v1/chat/completions", json=chat("[{" * 40 + '"\\"[[' + "}]" * 40)
        )
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "json_too_deep"
    assert shallow.status_code == 200 and brackets_in_text.status_code == 200


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("[[[1]]]", 3, False),
        ("[[[[1]]]]", 3, True),
        ('{"a": {"b": [1, {"c": 2}]}}', 4, False),
        ('{"a": {"b": [1, {"c": {}}]}}', 4, True),
        ('["[[[[[[", "\\"[[[[[[[", "\\\\", [[]]]', 3, False),  # brackets in strings, escapes
        ('["\\\\\\"", [[[[]]]]]', 5, False),
        ('["\\\\\\"", [[[[[]]]]]]', 5, True),
        ("[]" * 1000, 1, False),
        ("[[[[[[", 4, True),  # unbalanced: counted by its open brackets
    ],
)
def test_json_depth_scan(text: str, limit: int, expected: bool) -> None:
    assert json_too_deep(text.encode(), limit) is expected
    try:
        depth_ok = not _depth_exceeds(json.loads(text), limit)
    except ValueError:
        return
    assert depth_ok is not expected


def _depth_exceeds(value: Any, limit: int, level: int = 1) -> bool:
    if isinstance(value, (list, dict)):
        if level > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        return any(_depth_exceeds(child, limit, level + 1) for child in children)
    return False


async def test_a_stalled_body_gets_408(monkeypatch: pytest.MonkeyPatch) -> None:
    from openlms.server.guard import limits

    monkeypatch.setattr(limits, "BODY_STALL_S", 0.2)
    reached: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    chunks = [{"type": "http.request", "body": b'{"a": ', "more_body": True}]
    stalled = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await stalled.wait()  # the client never sends the rest
        raise AssertionError("unreachable")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guard = limits.RequestLimits(app, limits.Limits(max_body=LIMIT, max_depth=64, max_ws=4))
    scope = {"type": "http", "headers": [(b"transfer-encoding", b"chunked")]}
    await guard(scope, receive, send)
    assert sent[0]["status"] == 408 and b"request_timeout" in sent[1]["body"]
    assert reached == []
