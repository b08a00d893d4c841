"""The Python examples of tools.md and structured-output.md run unchanged against openlms, on port 1234
as they hard-code it; only the model name is replaced and the chat loops' input is scripted.

SmolLM2-135M never chooses a tool on its own, so the server's per-model setting `toolChoice: required`
(openlms's own; a request's `tool_choice` still wins) makes it call one whenever a request offers tools,
through grammar-constrained decoding in the default tool format. The examples' code is not touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.server import CHAT_MODEL, Server
from tests.support.spec import python_blocks

pytestmark = pytest.mark.e2e

TOOLS_MD = "0_app/4_api/tools.md"
STRUCTURED_MD = "0_app/4_api/structured-output.md"
SPEC_MODEL = "lmstudio-community/qwen2.5-7b-instruct"
PRELUDE = (
    'from openai import OpenAI\nclient = OpenAI(base_url="http://localhost:1234/v1", api_key="lm-studio")\n'
)


def example(rel: str, starts: str) -> str:
    blocks = [b for b in python_blocks(rel) if starts in b]
    assert len(blocks) == 1, f"{rel}: expected one example containing {starts!r}"
    return (
        textwrap.dedent(blocks[0]).replace(SPEC_MODEL, CHAT_MODEL).replace('"your-model"', f'"{CHAT_MODEL}"')
    )


def run(code: str, tmp_path: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def tools_server(server_1234: Server) -> Server:
    with server_1234.http() as http:
        config = {"prediction": {"toolChoice": "required"}}
        response = http.put("/api/v1/models/config", params={"model": CHAT_MODEL}, json=config)
        assert response.status_code == 200, response.text
    return server_1234


def test_single_turn_example(tools_server: Server, tmp_path: Path) -> None:
    result = run(example(TOOLS_MD, "def say_hello"), tmp_path)
    assert result.stdout.startswith("Hello, ") and result.stdout.strip().endswith("!")


def test_multi_turn_example(tools_server: Server, tmp_path: Path) -> None:
    result = run(example(TOOLS_MD, "def get_delivery_date"), tmp_path)
    assert "finish_reason='tool_calls'" in result.stdout
    assert "name='get_delivery_date'" in result.stdout
    assert "get_delivery_date function returns delivery date" in result.stdout
    final = result.stdout.split("Final model response with knowledge of the tool call result:")[1]
    assert final.strip() and final.strip() != "None"


def test_legacy_function_call_history_snippet(tools_server: Server, tmp_path: Path) -> None:
    code = (
        PRELUDE
        + example(TOOLS_MD, '"function_call"')
        + "\nprint(repr(response.choices[0].message.content))\n"
    )
    result = run(code, tmp_path)
    assert result.stdout.strip() not in ("None", "''")


def test_streaming_chatbot_example(tools_server: Server, tmp_path: Path) -> None:
    result = run(example(TOOLS_MD, "def process_stream"), tmp_path, stdin="What time is it?\nquit\n")
    assert "**Calling Tool: get_current_time**" in result.stdout
    assert "[TOOL_REQUEST]" not in result.stdout and "<tool_call>" not in result.stdout


def test_agent_example(tools_server: Server, tmp_path: Path) -> None:
    code = example(TOOLS_MD, "def analyze_directory")
    result = run(code, tmp_path, stdin="What time is it?\nquit\n")
    assert "An error occurred" not in result.stdout
    answers = result.stdout.split("Assistant:")[1:]  # input() prompts share their lines
    assert len(answers) == 3 and answers[-1].strip() == "Goodbye!"  # greeting, the answer, goodbye
    assert answers[1].strip() and answers[1].strip() != "None"
    assert "[TOOL_REQUEST]" not in result.stdout


def test_structured_output_example(tools_server: Server, tmp_path: Path) -> None:
    result = run(example(STRUCTURED_MD, "character_schema"), tmp_path)
    characters = json.loads(result.stdout)["characters"]
    assert len(characters) >= 1
    for character in characters:
        assert set(character) >= {"name", "occupation", "personality", "background"}
