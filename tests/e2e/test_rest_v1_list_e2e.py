"""LM Studio 0.4's `GET /api/v1/models` and `GET /api/v1/models/download/status` on the real server with
the default models, field by field as 0.4's documentation lists them (openlms's extra fields allowed)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.server import CHAT_MODEL, EMBEDDING_MODEL, Server

pytestmark = pytest.mark.e2e

EVERY_MODEL = {
    "type",
    "publisher",
    "key",
    "display_name",
    "quantization",
    "size_bytes",
    "params_string",
    "loaded_instances",
    "max_context_length",
    "format",
}


def test_models_list_has_the_04_fields(server: Server) -> None:
    with server.http() as http:
        loaded = http.post("/api/v1/models/load", json={"model": CHAT_MODEL}, timeout=120)
        assert loaded.status_code == 200, loaded.text
        models: dict[str, Any] = {m["key"]: m for m in http.get("/api/v1/models").json()["models"]}
        http.post("/api/v1/models/unload", json={"instance_id": loaded.json()["instance_id"]})
    chat, embedding = models[CHAT_MODEL], models[EMBEDDING_MODEL]
    for model in (chat, embedding):
        assert set(model) >= EVERY_MODEL, EVERY_MODEL - set(model)
        assert model["format"] == "gguf" and model["size_bytes"] > 0 and model["max_context_length"] > 0
        assert isinstance(model["quantization"]["name"], str) and model["quantization"]["bits_per_weight"] > 0
    assert chat["type"] == "llm" and embedding["type"] == "embedding"
    assert isinstance(chat["architecture"], str) and "description" in chat
    caps = chat["capabilities"]
    assert isinstance(caps["vision"], bool) and isinstance(caps["trained_for_tool_use"], bool)
    assert "capabilities" not in embedding and "description" not in embedding  # absent for embeddings
    [instance] = chat["loaded_instances"]
    assert instance["id"] == loaded.json()["instance_id"]
    config = instance["config"]
    assert config["context_length"] > 0 and config["eval_batch_size"] > 0
    assert isinstance(config["flash_attention"], bool) and isinstance(config["offload_kv_cache_to_gpu"], bool)
    assert isinstance(config["num_experts"], int)


def test_download_status_lists_jobs_by_status(server: Server) -> None:
    with server.http() as http:
        board = http.get("/api/v1/models/download/status")
    assert board.status_code == 200
    assert board.json() == {"downloading": [], "completed": [], "failed": [], "paused": []}
