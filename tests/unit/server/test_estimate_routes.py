"""`POST /api/v1/models/estimate` through the real app over the fake engine: the same estimate and the
same guardrail verdict as a load, errors in the API's format, nothing loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from openlms.engine.fake import FakeBackend
from tests.support.gguf_craft import crafted_llama
from tests.unit.server.conftest import make_app

PARTS = ("weights_bytes", "kv_cache_bytes", "compute_bytes", "runtime_bytes", "mmproj_bytes")


async def _estimate(http: httpx.AsyncClient, model: str, **config: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/models/estimate", json={"model": model, "config": config})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_estimate_follows_the_context_and_the_cache_types(client: httpx.AsyncClient) -> None:
    small = await _estimate(client, "tiny-chat", context_length=1024)
    large = await _estimate(client, "tiny-chat", context_length=2048)
    quantized = await _estimate(client, "tiny-chat", context_length=2048, k_cache_type="q8_0")
    for body in (small, large, quantized):
        assert body["total_bytes"] == sum(body[part] for part in PARTS)
        assert body["model"] == "tiny-chat" and body["parallel"] == 4
        assert body["gpu_offload"] is False and body["gpu_bytes"] == 0  # the fake runtime has no GPU
    assert (small["context_length"], small["kv_cells"]) == (1024, 1024)
    assert large["kv_cache_bytes"] == 2 * small["kv_cache_bytes"] > 0
    assert large["weights_bytes"] == small["weights_bytes"] > 0
    assert quantized["kv_cache_bytes"] < large["kv_cache_bytes"]
    assert small["guardrails"]["mode"] == "strict" and small["guardrails"]["fits"] is True
    assert "may be loaded" in small["guardrails"]["message"]
    models = (await client.get("/api/v1/models")).json()["models"]
    assert not any(m["loaded_instances"] for m in models)  # nothing was loaded


async def test_an_embedding_model_has_no_parallel_and_no_kv_cache(client: httpx.AsyncClient) -> None:
    body = await _estimate(client, "text-embedding-tiny-embed")
    assert body["parallel"] is None
    assert body["kv_cache_bytes"] == 0  # a BERT encoder keeps no KV cache in llama.cpp
    assert body["weights_bytes"] > 0


async def test_bad_requests_get_the_load_routes_errors(client: httpx.AsyncClient) -> None:
    missing = await client.post("/api/v1/models/estimate", json={"model": "no-such-model"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    too_long = await client.post(
        "/api/v1/models/estimate", json={"model": "tiny-chat", "config": {"context_length": 4096}}
    )
    assert too_long.status_code == 400
    assert "maximum context length is 2048" in too_long.json()["error"]["message"]
    unknown = await client.post(
        "/api/v1/models/estimate", json={"model": "tiny-chat", "config": {"gpu": "lots"}}
    )
    assert unknown.status_code == 400 and "error" in unknown.json()


async def test_the_verdict_is_the_loads_verdict(home: Path) -> None:
    # trained for 2^31 tokens: its KV cache at that context (256 bytes a token) is 512 GiB
    crafted_llama(home / "models" / "evil" / "long-GGUF" / "long.gguf", "llama.context_length", 2**31)
    config = {"context_length": 2**31}
    for guardrails in ("strict", "relaxed", "off"):
        app = make_app(home, FakeBackend(), load_guardrails=guardrails)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                body = await _estimate(http, "long", **config)
                load = await http.post("/api/v1/models/load", json={"model": "long", "config": config})
        verdict = body["guardrails"]
        assert verdict["mode"] == guardrails
        assert body["kv_cache_bytes"] == 512 << 30
        assert verdict["fits"] is (guardrails == "off") is (load.status_code == 200), load.text
        if guardrails == "off":
            assert verdict["limit_bytes"] is None and "guardrails are off" in verdict["message"]
        else:
            assert verdict["limit_bytes"] < body["total_bytes"]
            assert "will fail to load" in verdict["message"]
            assert load.json()["error"]["code"] == "insufficient_memory"


async def test_a_vision_projector_is_counted(home: Path, model_files: dict[str, Path]) -> None:
    folder = home / "models" / "acme" / "tiny-vision-GGUF"
    folder.mkdir(parents=True)
    (folder / "tiny-vision-F32.gguf").symlink_to(model_files["llm"])
    (folder / "mmproj-tiny-vision-F16.gguf").write_bytes(b"\0" * 123_456)
    app = make_app(home, FakeBackend())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            vision = await _estimate(http, "tiny-vision")
            plain = await _estimate(http, "tiny-chat")
    assert vision["mmproj_bytes"] == 123_456 and plain["mmproj_bytes"] == 0
    assert vision["total_bytes"] == plain["total_bytes"] + 123_456
