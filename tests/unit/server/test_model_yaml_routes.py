"""model.yaml on the listings: a virtual model's metadataOverrides and variants on /api/v0 and /api/v1,
a malformed model.yaml listed with its error, and a not-downloaded virtual model's load error."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

VIRTUAL = """\
model: acme/tiny-chat
base:
  - key: acme/tiny-chat-gguf
    sources: [{type: huggingface, user: acme, repo: tiny-chat-GGUF}]
metadataOverrides:
  domain: llm
  architectures: [tinyarch]
  paramsStrings: [7B]
  contextLengths: [1024]
  vision: false
  reasoning: true
  trainedForToolUse: true
"""


@pytest.fixture
def home(home: Path) -> Path:
    for key, text in (
        ("acme/tiny-chat", VIRTUAL),
        ("acme/broken", "model: acme/broken\nmetadataOverrides: {vision: perhaps}\n"),
        ("acme/elsewhere", "model: acme/elsewhere\nbase: [{key: nobody/nothing-gguf}]\n"),
    ):
        (home / "hub" / "models" / key).mkdir(parents=True)
        (home / "hub" / "models" / key / "model.yaml").write_text(text)
    return home


async def test_v1_lists_the_virtual_model_with_its_overrides(client: httpx.AsyncClient) -> None:
    models = {m["key"]: m for m in (await client.get("/api/v1/models")).json()["models"]}
    virtual = models["acme/tiny-chat"]
    assert virtual["params_string"] == "7B" and virtual["architecture"] == "tinyarch"
    assert virtual["max_context_length"] == 1024 and virtual["error"] is None
    assert virtual["capabilities"] == {"vision": False, "trained_for_tool_use": True, "reasoning": True}
    assert virtual["virtual"] is True and virtual["domain"] == "llm"
    assert virtual["path"] == models["tiny-chat"]["path"]  # the file it loads
    assert models["tiny-chat"]["capabilities"]["reasoning"] is False
    broken = models["acme/broken"]
    assert "vision" in broken["error"] and "model.yaml" in broken["error"]
    assert "acme/elsewhere" not in models


async def test_v0_lists_the_overrides(client: httpx.AsyncClient) -> None:
    models = {m["id"]: m for m in (await client.get("/api/v0/models")).json()["data"]}
    virtual = models["acme/tiny-chat"]
    assert virtual["arch"] == "tinyarch" and virtual["params_string"] == "7B"
    assert virtual["capabilities"] == ["tool_use", "reasoning"] and virtual["max_context_length"] == 1024


async def test_a_virtual_model_loads_its_file_and_chats(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/v1/chat/completions",
        json={"model": "acme/tiny-chat", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "acme/tiny-chat"


async def test_loading_a_virtual_model_with_nothing_downloaded_says_what_to_do(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/api/v1/models/load", json={"model": "acme/elsewhere"})
    assert answer.status_code == 404
    assert "lms get acme/elsewhere" in answer.json()["error"]["message"]
    broken = await client.post("/api/v1/models/load", json={"model": "acme/broken"})
    assert broken.status_code == 422 and "model.yaml" in broken.json()["error"]["message"]


async def test_v0_single_model_by_virtual_key(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v0/models/acme/tiny-chat")
    assert answer.status_code == 200 and answer.json()["id"] == "acme/tiny-chat"
    assert answer.json()["params_string"] == "7B"
