"""`lms load --gpu max` on the real server and default chat model: `lms ps --json`, `/api/v0/models/{id}`,
`/api/v1/models` and the runtime name say what llama.cpp really offloads (on a build without a GPU
backend, as on the CI machines: off / cpu / 0 layers, never the "max" that was asked for)."""

from __future__ import annotations

from typing import Any

import httpx
import llama_cpp.llama_cpp as C
import pytest

from tests.support.server import CHAT_MODEL, Server

pytestmark = [pytest.mark.e2e]


def test_gpu_max_reports_what_is_really_offloaded(server: Server) -> None:
    server.lms("load", CHAT_MODEL, "--gpu", "max", "--identifier", "gpu-check")
    try:
        gpu_build = bool(C.llama_supports_gpu_offload())  # the server runs this venv's llama.cpp
        [ps] = [p for p in server.lms_json("ps") if p["identifier"] == "gpu-check"]  # type: ignore[attr-defined]
        v0: dict[str, Any] = httpx.get(f"{server.url}/api/v0/models/gpu-check", timeout=30).json()
        offload = v0["gpu_offload"]
        v1 = httpx.get(f"{server.url}/api/v1/models", timeout=30).json()["models"]
        [config] = [i["config"] for m in v1 for i in m["loaded_instances"] if i["id"] == "gpu-check"]
        chat = httpx.post(
            f"{server.url}/api/v0/chat/completions",
            json={"model": "gpu-check", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
            timeout=120,
        ).json()
        assert offload["total_layers"] and offload["total_layers"] > 1
        if gpu_build:
            assert offload == {
                "gpu": "max",
                "device": "gpu",
                "gpu_layers": offload["total_layers"],
                "total_layers": offload["total_layers"],
            }
        else:
            assert offload == {
                "gpu": "off",
                "device": "cpu",
                "gpu_layers": 0,
                "total_layers": offload["total_layers"],
            }
            assert not any(g in chat["runtime"]["name"] for g in ("cuda", "metal", "vulkan", "rocm", "gpu"))
        assert (ps["gpu"], ps["gpuLayers"]) == (offload["gpu"], offload["gpu_layers"])
        assert (config["gpu"], config["gpu_layers"]) == (offload["gpu"], offload["gpu_layers"])
        assert config["offload_kv_cache_to_gpu"] is gpu_build
    finally:
        server.lms("unload", "gpu-check")
