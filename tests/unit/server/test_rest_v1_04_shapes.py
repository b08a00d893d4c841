"""LM Studio 0.4's own /api/v1 request and response shapes (flat load fields, echo_load_config, unload)."""

from __future__ import annotations

import json

import httpx

LOAD = "/api/v1/models/load"


async def test_flat_load_fields_and_the_04_answer(client: httpx.AsyncClient) -> None:
    body = {"model": "tiny-chat", "context_length": 1024, "flash_attention": True}
    loaded = (await client.post(LOAD, json=body)).json()
    assert loaded["type"] == "llm" and loaded["instance_id"] == "tiny-chat" and loaded["status"] == "loaded"
    assert loaded["load_time_seconds"] >= 0 and "load_config" not in loaded
    assert loaded["model_instance_id"] == "tiny-chat"  # kept for older openlms clients
    assert loaded["config"]["context_length"] == 1024 and loaded["config"]["flash_attention"] is True
    models = (await client.get("/api/v1/models")).json()["models"]
    instance = next(i for m in models for i in m["loaded_instances"] if i["id"] == "tiny-chat")
    assert instance["config"]["context_length"] == 1024 and instance["config"]["flash_attention"] is True


async def test_echo_load_config_has_the_04_fields(client: httpx.AsyncClient) -> None:
    body = {"model": "tiny-chat", "context_length": 2048, "echo_load_config": True}
    loaded = (await client.post(LOAD, json=body)).json()
    config = loaded["load_config"]
    assert config["context_length"] == 2048
    for field in ("eval_batch_size", "flash_attention", "num_experts", "offload_kv_cache_to_gpu"):
        assert field in config, field


async def test_flat_and_nested_agree_or_it_is_a_400(client: httpx.AsyncClient) -> None:
    same = {"model": "tiny-chat", "context_length": 1024, "config": {"context_length": 1024, "seed": 3}}
    assert (await client.post(LOAD, json=same)).json()["config"]["context_length"] == 1024
    clash = {"model": "tiny-chat", "context_length": 1024, "config": {"context_length": 4096}}
    reply = await client.post(LOAD, json=clash)
    error = reply.json()["error"]
    assert reply.status_code == 400 and error["param"] == "context_length"
    assert "config.context_length" in error["message"] and "one place" in error["message"]


async def test_flat_fields_are_validated(client: httpx.AsyncClient) -> None:
    reply = await client.post(LOAD, json={"model": "tiny-chat", "context_length": 3})
    assert reply.status_code == 400 and "context_length" in reply.json()["error"]["param"]
    typo = await client.post(LOAD, json={"model": "tiny-chat", "context_lenght": 2048})
    assert typo.status_code == 400 and "context_lenght" in typo.json()["error"]["param"]


async def test_streamed_load_echoes_the_config(client: httpx.AsyncClient) -> None:
    body = {"model": "tiny-chat", "context_length": 1024, "echo_load_config": True, "stream": True}
    async with client.stream("POST", LOAD, json=body) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    loaded = json.loads(lines[-1].split(": ", 1)[1])
    assert loaded["instance_id"] == "tiny-chat" and loaded["load_config"]["context_length"] == 1024


async def test_unload_by_instance_id(client: httpx.AsyncClient) -> None:
    instance_id = (await client.post(LOAD, json={"model": "tiny-chat"})).json()["instance_id"]
    gone = await client.post("/api/v1/models/unload", json={"instance_id": instance_id})
    assert gone.status_code == 200 and gone.json() == {"instance_id": instance_id}
    again = await client.post("/api/v1/models/unload", json={"instance_id": instance_id})
    assert again.status_code == 404 and "error" in again.json()
