"""LM Studio 0.4-style model management routes over the fake engine."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from openlms.engine.fake import FakeBackend
from tests.support.tiny_gguf import write_tiny_llama_gguf
from tests.unit.server.conftest import make_app


async def test_list_load_unload(client: httpx.AsyncClient) -> None:
    models = (await client.get("/api/v1/models")).json()["models"]
    by_key = {m["key"]: m for m in models}
    assert by_key["tiny-chat"]["type"] == "llm" and by_key["tiny-chat"]["loaded_instances"] == []
    assert by_key["text-embedding-tiny-embed"]["type"] == "embedding"
    assert "capabilities" not in by_key["text-embedding-tiny-embed"]

    loaded = (
        await client.post(
            "/api/v1/models/load", json={"model": "tiny-chat", "config": {"context_length": 1024}}
        )
    ).json()
    assert loaded["model_instance_id"] == "tiny-chat" and loaded["config"]["context_length"] == 1024
    second = (await client.post("/api/v1/models/load", json={"model": "tiny-chat", "ttl": 30})).json()
    assert second["model_instance_id"] == "tiny-chat:2"
    dup = await client.post("/api/v1/models/load", json={"model": "tiny-chat", "identifier": "tiny-chat:2"})
    assert dup.status_code == 409 and "already exists" in dup.json()["error"]["message"]

    instances = {
        i["id"]: i
        for m in (await client.get("/api/v1/models")).json()["models"]
        for i in m["loaded_instances"]
    }
    assert instances["tiny-chat:2"]["ttl_seconds"] == 30 and instances["tiny-chat"]["status"] == "idle"
    assert instances["tiny-chat"]["jit"] is False

    gone = await client.post("/api/v1/models/unload", json={"instance_id": "tiny-chat:2"})
    assert gone.json() == {"instance_id": "tiny-chat:2"}
    missing = await client.post("/api/v1/models/unload", json={"instance_id": "tiny-chat:2"})
    assert missing.status_code == 404


async def test_load_errors(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models/load", json={"model": "nope"})).status_code == 404
    bad = await client.post("/api/v1/models/load", json={"model": "tiny-chat", "config": {"gpu": 3.0}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "config.gpu"
    typo = await client.post(
        "/api/v1/models/load", json={"model": "tiny-chat", "config": {"context_lenght": 5}}
    )
    assert typo.status_code == 400 and "context_lenght" in typo.json()["error"]["param"]


async def test_load_stream_reports_progress_then_loaded(client: httpx.AsyncClient) -> None:
    async with client.stream(
        "POST", "/api/v1/models/load", json={"model": "tiny-chat", "stream": True}
    ) as response:
        lines = [line async for line in response.aiter_lines() if line]
    events = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
    data = [json.loads(line.split(": ", 1)[1]) for line in lines if line.startswith("data: ")]
    assert events[-1] == "loaded" and data[-1]["model_instance_id"] == "tiny-chat"
    progress = [d["progress"] for d, e in zip(data, events, strict=True) if e == "progress"]
    assert progress and progress == sorted(progress) and progress[-1] == 1.0


async def test_import_is_local_only_and_lists_the_model(home: Path, tmp_path: Path) -> None:
    source = write_tiny_llama_gguf(tmp_path / "src" / "Imported-Model-Q8_0.gguf")
    app = make_app(home, FakeBackend())
    async with app.router.lifespan_context(app):
        local = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=local, base_url="http://localhost") as http:
            done = await http.post("/api/v1/models/import", json={"path": str(source), "publisher": "me"})
            assert done.status_code == 200 and done.json()["key"] == "imported-model"
            again = await http.post("/api/v1/models/import", json={"path": str(source), "publisher": "me"})
            assert again.status_code == 400 and "already exists" in again.json()["error"]["message"]
            not_gguf = tmp_path / "notes.txt"
            not_gguf.write_text("hello")
            refused = await http.post("/api/v1/models/import", json={"path": str(not_gguf)})
            assert refused.status_code == 400 and "GGUF" in refused.json()["error"]["message"]
            keys = [m["key"] for m in (await http.get("/api/v1/models")).json()["models"]]
            assert "imported-model" in keys
        remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=remote, base_url="http://localhost") as http:
            denied = await http.post("/api/v1/models/import", json={"path": str(source)})
            assert denied.status_code == 403
