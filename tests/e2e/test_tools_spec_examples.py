"""The Python examples of tools.md and structured-output.md run unchanged against openlms, on port 1234
as they hard-code it; only the model name is replaced and the chat loops' input is scripted.

SmolLM2-135M never chooses a tool on its own, so the server's per-model setting `toolChoice: required`
(openlms's own; a request's `tool_choice` still wins) makes it call one whenever a request offers tools,
through grammar-constrained decoding in the default tool format. The examples' code is not touched,
except that structured-output.md's schema gets bounds (a small model can write an unbounded string until
the context ends). The answers' words are the model's: the tests check what the examples print against
what the server answered (tests/support/openai_trace.py records each request's answer beside the example).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.model_log import printed
from tests.support.openai_trace import read_trace, traced
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


def bounded(code: str, bounds: dict[str, str]) -> str:
    """`code` with each of `bounds`' texts (all of which must be there) replaced."""
    for old, new in bounds.items():
        assert old in code, f"{old!r} is not in the example"
        code = code.replace(old, new)
    return code


def run(code: str, tmp_path: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The example, its chat completions recorded (`read_trace(tmp_path)`)."""
    result = subprocess.run(
        [sys.executable, "-c", traced(code)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**os.environ, "BROWSER": "true"},  # a model may have the agent open a URL: a no-op
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def forced_call(record: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """The one tool call of a request that offered tools (the per-model toolChoice forces one)."""
    assert record["tools"] and record["finish_reason"] == "tool_calls", record
    [call] = record["tool_calls"]
    assert call["name"] in names, record
    return call  # type: ignore[no-any-return]


def text_answer(record: dict[str, Any]) -> str:
    """The content of a request without tools: text, whatever its words (even none)."""
    assert not record["tools"] and not record["tool_calls"], record
    assert isinstance(record["content"], str) and record["finish_reason"] in ("stop", "length"), record
    return printed(record["content"])


@pytest.fixture(scope="module")
def tools_server(server_1234: Server) -> Server:
    with server_1234.http() as http:
        config = {"prediction": {"toolChoice": "required"}}
        response = http.put("/api/v1/models/config", params={"model": CHAT_MODEL}, json=config)
        assert response.status_code == 200, response.text
    return server_1234


def test_single_turn_example(tools_server: Server, tmp_path: Path) -> None:
    result = run(example(TOOLS_MD, "def say_hello"), tmp_path)
    [request] = read_trace(tmp_path)
    call = forced_call(request, {"say_hello"})
    name = ast.literal_eval(call["arguments"])["name"]  # the example eval()s the arguments
    assert result.stdout == printed(f"Hello, {name}!\n")


def test_multi_turn_example(tools_server: Server, tmp_path: Path) -> None:
    result = run(example(TOOLS_MD, "def get_delivery_date"), tmp_path)
    first, final = read_trace(tmp_path)
    forced_call(first, {"get_delivery_date"})
    assert "finish_reason='tool_calls'" in result.stdout
    assert "name='get_delivery_date'" in result.stdout
    assert "get_delivery_date function returns delivery date" in result.stdout
    heading = "Final model response with knowledge of the tool call result:\n\n"
    assert result.stdout.endswith(heading + text_answer(final) + "\n")


def test_legacy_function_call_history_snippet(tools_server: Server, tmp_path: Path) -> None:
    """A history with a legacy `function_call` message is accepted: the answer is text (not None)."""
    code = (
        PRELUDE
        + example(TOOLS_MD, '"function_call"')
        + "\nprint(repr(response.choices[0].message.content))\n"
    )
    result = run(code, tmp_path)
    [answer] = read_trace(tmp_path)
    assert result.stdout == printed(repr(text_answer(answer)) + "\n")


def test_streaming_chatbot_example(tools_server: Server, tmp_path: Path) -> None:
    result = run(example(TOOLS_MD, "def process_stream"), tmp_path, stdin="What time is it?\nquit\n")
    first, final = read_trace(tmp_path)
    forced_call(first, {"get_current_time"})
    assert first["stream"] and first["content"] == ""  # the call came as tool_calls deltas, no markup
    answer = text_answer(final)
    # the call round prints only the tool's name; the answer round its text (on a new line, if any)
    shown = f"\n{answer}\n" if answer else ""
    assert result.stdout.endswith(f"\nYou: \nAssistant: **Calling Tool: get_current_time**\n{shown}\nYou: ")


def test_agent_example(tools_server: Server, tmp_path: Path) -> None:
    code = example(TOOLS_MD, "def analyze_directory")
    result = run(code, tmp_path, stdin="What time is it?\nquit\n")
    first, final = read_trace(tmp_path)
    forced_call(first, {"open_safe_url", "get_current_time", "analyze_directory"})
    answer = text_answer(final)  # after the tool's result
    assert result.stdout.startswith("Assistant: Hello! I can help you")  # the greeting
    assert result.stdout.endswith(f"\nYou: \nAssistant: {answer}\n\nYou: Assistant: Goodbye!\n")


# Bounds for structured-output.md's schema, its shape kept: unbounded, a small model may write a string
# or the list until the context ends, and the example's json.loads fails on the cut text. With them,
# any output fits in the context (3 characters of 4 strings of at most 24 characters, each at most 6
# tokens as a \uXXXX escape, and bounded whitespace).
CHARACTER_BOUNDS = {
    '{"type": "string"}': '{"type": "string", "maxLength": 24}',
    '"minItems": 1,': '"minItems": 1, "maxItems": 3,',
}


def test_structured_output_example(tools_server: Server, tmp_path: Path) -> None:
    result = run(bounded(example(STRUCTURED_MD, "character_schema"), CHARACTER_BOUNDS), tmp_path)
    [answer] = read_trace(tmp_path)
    assert answer["finish_reason"] == "stop"
    characters = json.loads(result.stdout)["characters"]
    assert json.loads(answer["content"]) == {"characters": characters}
    assert 1 <= len(characters) <= 3
    for character in characters:
        assert set(character) >= {"name", "occupation", "personality", "background"}
        assert all(isinstance(v, str) and len(v) <= 24 for v in character.values())
