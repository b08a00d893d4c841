"""`lms load --estimate-only` on the real server and a real model (issue 12): LM Studio's lines, the
figure of `POST /api/v1/models/estimate`, Gemma 3's KV cache as the engine's llama.cpp allocates it,
nothing loaded; then the load the verdict allows succeeds. (The accuracy against measured memory is
bench/memory_estimate.py's, never asserted here.)"""

from __future__ import annotations

import pytest

from openlms.cli.render import format_size
from tests.support.server import BASE_MODEL, Server

pytestmark = pytest.mark.e2e

MIB = 1 << 20


def test_estimate_only_then_the_load_it_allows(server: Server) -> None:
    server.unload_all()
    args = ("load", BASE_MODEL, "--estimate-only", "--context-length", "8192", "--gpu", "off")
    lines = server.lms(*args).stdout.splitlines()
    assert lines[0] == f"Model: ggml-org/{BASE_MODEL}"
    assert lines[1] == "Context Length: 8192 tokens"
    assert lines[2] == "Estimated GPU Memory:   0 B"
    assert lines[3].startswith("Estimated Total Memory: ") and lines[4] == ""
    assert lines[5] == "Estimate: This model may be loaded based on your resource guardrails settings."
    assert not server.lms_json("ps")  # nothing was loaded

    with server.http() as http:
        body = {"model": BASE_MODEL, "config": {"context_length": 8192, "gpu": "off"}}
        estimate = http.post("/api/v1/models/estimate", json=body).json()
        smaller = http.post(
            "/api/v1/models/estimate", json={"model": BASE_MODEL, "config": {"context_length": 2048}}
        ).json()
    assert lines[3] == f"Estimated Total Memory: {format_size(estimate['total_bytes'])}"
    # 18 layers of one 256-dim K/V head in f16; the engine keeps llama.cpp's full-size sliding-window cache
    assert estimate["kv_cache_bytes"] == 18 * 8192 * 256 * 2 * 2 == 144 * MIB
    assert smaller["kv_cache_bytes"] == 36 * MIB and smaller["weights_bytes"] == estimate["weights_bytes"]
    assert estimate["runtime_bytes"] > 0 and estimate["parallel"] == 4

    loaded = server.lms("load", BASE_MODEL, "--context-length", "8192", "--gpu", "off")
    assert "Model loaded successfully" in loaded.stdout
    instances = server.lms_json("ps")
    assert isinstance(instances, list) and [i["identifier"] for i in instances] == [BASE_MODEL]
    server.unload_all()
