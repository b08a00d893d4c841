"""LM Studio 0.4's /api/v1 load and unload shapes on the real server (SmolLM2): a flat `context_length`
with `echo_load_config`, then unload by the answer's `instance_id`."""

from __future__ import annotations

from tests.support.server import CHAT_MODEL, Server


def test_flat_load_echoes_the_config_then_unload_by_instance_id(server: Server) -> None:
    with server.http() as http:
        body = {"model": CHAT_MODEL, "context_length": 1536, "echo_load_config": True}
        reply = http.post("/api/v1/models/load", json=body, timeout=120)
        assert reply.status_code == 200, reply.text
        loaded = reply.json()
        assert loaded["type"] == "llm" and loaded["status"] == "loaded" and loaded["load_time_seconds"] > 0
        instance_id = loaded["instance_id"]
        assert instance_id.startswith(CHAT_MODEL)
        config = loaded["load_config"]
        assert config["context_length"] == 1536 and config["eval_batch_size"] >= 1
        assert isinstance(config["flash_attention"], bool) and isinstance(
            config["offload_kv_cache_to_gpu"], bool
        )
        listed = {
            i["id"]: i for m in http.get("/api/v1/models").json()["models"] for i in m["loaded_instances"]
        }
        assert listed[instance_id]["config"]["context_length"] == 1536

        clash = {"model": CHAT_MODEL, "context_length": 1024, "config": {"context_length": 2048}}
        refused = http.post("/api/v1/models/load", json=clash)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "context_length"

        gone = http.post("/api/v1/models/unload", json={"instance_id": instance_id})
        assert gone.status_code == 200 and gone.json() == {"instance_id": instance_id}
        listed_after = [
            i["id"] for m in http.get("/api/v1/models").json()["models"] for i in m["loaded_instances"]
        ]
        assert instance_id not in listed_after
        missing = http.post("/api/v1/models/unload", json={"instance_id": instance_id})
        assert missing.status_code == 404 and instance_id in missing.json()["error"]["message"]
