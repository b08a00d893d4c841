"""Load limits through the real app over the fake engine (issue 10): every load path refuses a context
above the model's trained one before anything is loaded or evicted, a per-model default included."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from openlms.engine.fake import FakeBackend
from openlms.store.model_config import CONFIG_DIR
from tests.support.gguf_craft import crafted_llama
from tests.unit.server.conftest import make_app

CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}


async def test_rest_load_refuses_a_context_above_the_trained_one(client: httpx.AsyncClient) -> None:
    for value in (2049, 10**9, 2**32 + 64):
        body = {"model": "tiny-chat", "config": {"context_length": value}}
        response = await client.post("/api/v1/models/load", json=body)
        assert response.status_code == 400, response.text
        assert "maximum context length is 2048" in response.json()["error"]["message"]
    assert (await client.post("/api/v1/models/load", json={"model": "tiny-chat"})).status_code == 200


async def test_a_stored_per_model_default_above_the_trained_context_refuses_jit_loads(
    home: Path, fake: FakeBackend
) -> None:
    stored = home / CONFIG_DIR / "acme" / "tiny-chat-GGUF" / "tiny-chat-F32.gguf.json"
    stored.parent.mkdir(parents=True)
    stored.write_text(json.dumps({"load": {"contextLength": 10**9}}))  # written by hand, not by PUT
    app = make_app(home, fake)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            for url in ("/v1/chat/completions", "/api/v0/chat/completions"):
                response = await http.post(url, json=CHAT)
                assert response.status_code == 400, response.text
                assert "maximum context length is 2048" in response.json()["error"]["message"]
            models = (await http.get("/api/v1/models")).json()["models"]
            assert not any(m["loaded_instances"] for m in models)


async def test_the_guardrails_refuse_what_does_not_fit_unless_off(home: Path) -> None:
    # A model trained for 2^31 tokens: its KV cache at that context (256 bytes a token) is 512 GiB.
    crafted_llama(home / "models" / "evil" / "long-GGUF" / "long.gguf", "llama.context_length", 2**31)
    body = {"model": "long", "config": {"context_length": 2**31}}
    for guardrails, status in (("strict", 400), ("relaxed", 400), ("off", 200)):
        app = make_app(home, FakeBackend(), load_guardrails=guardrails)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                response = await http.post("/api/v1/models/load", json=body)
        assert response.status_code == status, (guardrails, response.text)
        if status == 400:
            error = response.json()["error"]
            assert error["code"] == "insufficient_memory" and "512.00 GiB" in error["message"]
