"""/v1/responses with an mcp.json MCP server and a model that chooses its tools itself: Qwen2.5-Coder-0.5B
(an optional extra model: `openlms-setup-models --only qwen2.5-coder-0.5b-instruct`; skipped, saying so,
when it is not installed). Nothing forces the call: `tool_choice` is left unset. Greedy sampling, one
round of tool calls (a later call is reported as not made), so that the test stays short; the check is the
structure (a call to the offered tool, its real result), not the model's words."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.mcp import stdio_config, write_mcp_json
from tests.support.server import Server, free_port, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.qwen]

QWEN = "qwen2.5-coder-0.5b-instruct"
QWEN_FILE = "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


@pytest.fixture(scope="module")
def qwen_server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    if not (models_dir / QWEN_FILE).is_file():
        pytest.skip(
            f"{QWEN} is not in {models_dir}: install it with .venv/bin/openlms-setup-models --only {QWEN}"
        )
    settings = {"mcp_allow_json_servers": True, "mcp_max_tool_rounds": 1}
    srv = start_server(tmp_path_factory.mktemp("qwen-mcp"), models_dir, free_port(), settings=settings)
    write_mcp_json(srv.home, {"calc": stdio_config()})
    yield srv
    srv.lms("server", "stop", check=False)


def test_the_model_chooses_an_mcp_tool_of_mcp_json(qwen_server: Server) -> None:
    client = openai.OpenAI(base_url=f"{qwen_server.url}/v1", api_key="lm-studio", max_retries=0)
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
