"""The APIs and `lms ps --json` report the GPU offload llama.cpp really does, not the one asked for.

The real llama.cpp backend loads a tiny GGUF with `gpu: max`; on a build without a GPU backend (this
CPU-only machine) every report reads off / cpu / 0 layers; on a GPU build, every layer on the GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from openlms.cli.schema import ModelInfo, loaded_instances
from openlms.engine.llama.native import backend
from openlms.engine.llama.runtime import LlamaBackend
from tests.unit.server.conftest import make_app

TINY_BLOCKS = 2  # write_tiny_llama_gguf's n_layer: llama.cpp offloads those plus the output layer


def expected_offload() -> dict[str, Any]:
    if backend().gpu_offload:
        return {"gpu": "max", "device": "gpu", "gpu_layers": TINY_BLOCKS + 1, "total_layers": TINY_BLOCKS + 1}
    return {"gpu": "off", "device": "cpu", "gpu_layers": 0, "total_layers": TINY_BLOCKS + 1}


async def test_offload_is_reported_as_it_really_is(home: Path) -> None:
    app = make_app(home, LlamaBackend(default_context_length=256, n_threads=1))  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            loaded = await http.post(
                "/api/v1/models/load", json={"model": "tiny-chat", "config": {"gpu": "max"}}
            )
            assert loaded.status_code == 200, loaded.text
            want = expected_offload()

            v0 = (await http.get("/api/v0/models/tiny-chat")).json()
            assert v0["state"] == "loaded" and v0["gpu_offload"] == want
            listed = (await http.get("/api/v0/models")).json()["data"]
            assert [m["gpu_offload"] for m in listed if m["id"] == "tiny-chat"] == [want]
            assert all("gpu_offload" not in m for m in listed if m["state"] != "loaded")

            v1 = (await http.get("/api/v1/models")).json()["models"]
            [config] = [i["config"] for m in v1 for i in m["loaded_instances"]]
            assert config["gpu"] == want["gpu"] and config["gpu_layers"] == want["gpu_layers"]
            assert config["offload_kv_cache_to_gpu"] is (want["device"] != "cpu")

            # `lms ps --json` prints exactly this parse of /api/v1/models
            [ps] = [i.to_json() for i in loaded_instances([ModelInfo.from_json(m) for m in v1])]
            assert ps["identifier"] == "tiny-chat"
            assert ps["gpu"] == want["gpu"] and ps["gpuLayers"] == want["gpu_layers"]
            await http.post("/api/v1/models/unload", json={"instance_id": "tiny-chat"})
