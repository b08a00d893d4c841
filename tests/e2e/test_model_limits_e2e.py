"""Model limits on the real server (issue 10): a huge or wrapping context_length is refused at once with a
4xx on every load path (REST v1, the SDK, per-model defaults), and a crafted GGUF is listed with its error
and refused with a 4xx, while the server stays up, its memory flat, and answers a normal chat after."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import lmstudio as lms
import psutil
import pytest

from tests.support.gguf_craft import crafted_llama
from tests.support.sdk import host_of
from tests.support.server import CHAT_MODEL, Server, free_port, start_server

pytestmark = pytest.mark.e2e

HUGE = (10**9, 2**32 + 64)
RSS_SLACK = 256 << 20  # far below what a 10^9-token KV cache would take (the old behaviour: ~420 MB/s)
CRAFTED = "crafted-block-count"


@pytest.fixture(scope="module")
def limits_server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    """A server whose models dir holds the default models (linked) and a GGUF whose header says
    `llama.block_count = 100000` (llama.cpp aborts the process on it)."""
    root = tmp_path_factory.mktemp("limits")
    models = root / "models"
    models.mkdir()
    for publisher in models_dir.iterdir():
        if publisher.is_dir() and not publisher.name.startswith("."):
            (models / publisher.name).symlink_to(publisher, target_is_directory=True)
    crafted_llama(models / "evil" / "crafted-GGUF" / f"{CRAFTED}.gguf", "llama.block_count", 100_000)
    server = start_server(root, models, free_port())
    yield server
    server.lms("server", "stop", check=False)


def server_rss(server: Server) -> int:
    pid = json.loads((server.home / "openlms" / "server.json").read_text())["pid"]
    return int(psutil.Process(pid).memory_info().rss)


def chat_works(server: Server) -> None:
    with server.http() as http:
        body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["role"] == "assistant"


@pytest.mark.parametrize("context_length", HUGE)
def test_rest_load_refuses_a_huge_context_at_once(limits_server: Server, context_length: int) -> None:
    before = server_rss(limits_server)
    with limits_server.http() as http:
        body = {"model": CHAT_MODEL, "config": {"context_length": context_length}}
        response = http.post("/api/v1/models/load", json=body, timeout=30)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert "maximum context length is 8192" in error["message"]
        assert error["param"] == "config.context_length"
        instances = http.get("/api/v1/models").json()["models"]
    assert server_rss(limits_server) - before < RSS_SLACK
    assert not any(m["loaded_instances"] for m in instances if m["key"] == CHAT_MODEL)


@pytest.mark.parametrize("context_length", HUGE)
def test_sdk_load_refuses_a_huge_context(limits_server: Server, context_length: int) -> None:
    before = server_rss(limits_server)
    with lms.Client(host_of(limits_server)) as client:
        with pytest.raises(lms.LMStudioServerError) as info:
            client.llm.load_new_instance(CHAT_MODEL, config={"contextLength": context_length})
        assert "maximum context length is 8192" in str(info.value)
        assert not client.llm.list_loaded()
    assert server_rss(limits_server) - before < RSS_SLACK


@pytest.mark.parametrize("context_length", HUGE)
def test_model_config_put_refuses_a_huge_context(limits_server: Server, context_length: int) -> None:
    with limits_server.http() as http:
        body = {"load": {"contextLength": context_length}}
        response = http.put("/api/v1/models/config", params={"model": CHAT_MODEL}, json=body)
        assert response.status_code == 400, response.text
        assert "8192" in response.json()["error"]["message"]
        stored = http.get("/api/v1/models/config", params={"model": CHAT_MODEL})
        assert stored.status_code == 200
        assert "contextLength" not in stored.json().get("load", {})


def test_lms_load_refuses_a_huge_context(limits_server: Server) -> None:
    result = limits_server.lms("load", CHAT_MODEL, "--context-length", str(10**9), check=False)
    assert result.returncode != 0
    assert "maximum context length is 8192" in result.stdout + result.stderr


def test_a_crafted_gguf_is_listed_with_an_error_and_refused(limits_server: Server) -> None:
    before = server_rss(limits_server)
    with limits_server.http() as http:
        models = {m["key"]: m for m in http.get("/api/v1/models").json()["models"]}
        crafted = models[CRAFTED]
        assert crafted["error"] and "block_count = 100000" in crafted["error"]
        chat = {"model": CRAFTED, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        refused = http.post("/v1/chat/completions", json=chat, timeout=30)
        assert refused.status_code == 422, refused.text
        assert "block_count" in refused.json()["error"]["message"]
        load = http.post("/api/v1/models/load", json={"model": CRAFTED}, timeout=30)
        assert load.status_code == 422, load.text
        v0 = http.post("/api/v0/chat/completions", json=chat, timeout=30)
        assert v0.status_code == 422, v0.text
    assert server_rss(limits_server) - before < RSS_SLACK
    chat_works(limits_server)  # still up, and serving
