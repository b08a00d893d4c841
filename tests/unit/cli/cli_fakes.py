"""Test helpers for `lms`: sample models and an in-memory server behind `httpx.MockTransport`."""

from __future__ import annotations

import copy
import json
import os
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click.testing
import httpx

Invoke = Callable[..., click.testing.Result]  # the `invoke` fixture: (args, *, tty, input, **CliApp fields)

FAKE_SERVER_SCRIPT = Path(__file__).with_name("fake_openlms_server.py")

SMOLLM: dict[str, Any] = {
    "type": "llm",
    "publisher": "HuggingFaceTB",
    "key": "smollm2-135m-instruct",
    "display_name": "SmolLM2 135M Instruct",
    "architecture": "llama",
    "quantization": {"name": "Q4_1", "bits_per_weight": 5.0},
    "size_bytes": 98362432,
    "params_string": "135M",
    "max_context_length": 8192,
    "format": "gguf",
    "capabilities": {"vision": False, "trained_for_tool_use": False},
    "description": None,
    "path": "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf",
    "error": None,
    "loaded_instances": [],
}
QWEN: dict[str, Any] = {
    **SMOLLM,
    "publisher": "Qwen",
    "key": "qwen2.5-0.5b-instruct",
    "display_name": "Qwen2.5 0.5B Instruct",
    "architecture": "qwen2",
    "quantization": {"name": "Q4_K_M", "bits_per_weight": 4.5},
    "size_bytes": 397807936,
    "params_string": "0.5B",
    "max_context_length": 32768,
    "capabilities": {"vision": False, "trained_for_tool_use": True},
    "path": "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf",
}
NOMIC: dict[str, Any] = {
    **SMOLLM,
    "type": "embedding",
    "publisher": "nomic-ai",
    "key": "text-embedding-nomic-embed-text-v1.5",
    "display_name": "Nomic Embed Text v1.5",
    "architecture": "nomic-bert",
    "quantization": {"name": "Q4_K_M", "bits_per_weight": 4.5},
    "size_bytes": 84106624,
    "params_string": None,
    "max_context_length": 2048,
    "path": "nomic-ai/nomic-embed-text-v1.5-GGUF/nomic-embed-text-v1.5.Q4_K_M.gguf",
}
BROKEN: dict[str, Any] = {
    **SMOLLM,
    "key": "broken-model",
    "display_name": "broken-model",
    "architecture": None,
    "quantization": None,
    "size_bytes": 1000,
    "params_string": None,
    "max_context_length": None,
    "path": "someone/broken/broken-model.gguf",
    "error": "not a GGUF file",
}


def instance(identifier: str, **overrides: Any) -> dict[str, Any]:
    base = {
        "id": identifier,
        "config": {
            "context_length": 4096,
            "eval_batch_size": 512,
            "flash_attention": False,
            "gpu": "off",
            "ttl_seconds": None,
        },
        "status": "idle",
        "active_requests": 0,
        "queued_requests": 0,
        "jit": False,
        "ttl_seconds": None,
        "idle_seconds": 12.5,
        "size_bytes": 98362432,
    }
    return {**base, **overrides}


def api_error(status: int, message: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}},
    )


class FakeServer:
    """An in-memory server speaking docs/http-api.md, for `httpx.MockTransport`."""

    def __init__(self, models: Sequence[dict[str, Any]] = (SMOLLM, QWEN, NOMIC)) -> None:
        self.models = [copy.deepcopy(m) for m in models]  # one copy each: the samples share lists
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, JSON body or None)
        self.urls: list[str] = []
        self.stream_load = True

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = json.loads(request.content) if request.content else {}
        self.urls.append(str(request.url))
        self.requests.append((request.method, request.url.path, body or None))
        route = (request.method, request.url.path)
        if route == ("GET", "/lmstudio-greeting"):
            return httpx.Response(200, json={"lmstudio": True})
        if route == ("GET", "/api/v1/models"):
            return httpx.Response(200, json={"models": self.models})
        if route == ("POST", "/api/v1/models/load"):
            return self._load(body)
        if route == ("POST", "/api/v1/models/unload"):
            return self._unload(body["instance_id"])
        return api_error(404, f"Unexpected endpoint {request.url.path}")

    def loaded_ids(self) -> list[str]:
        return [i["id"] for m in self.models for i in m["loaded_instances"]]

    def _load(self, body: dict[str, Any]) -> httpx.Response:
        model = next((m for m in self.models if m["key"] == body["model"]), None)
        if model is None:
            return api_error(404, f"No model matching '{body['model']}' was found.")
        identifier = body.get("identifier") or model["key"]
        if identifier in self.loaded_ids():
            return api_error(409, f"an instance with identifier '{identifier}' already exists.")
        model["loaded_instances"].append(instance(identifier, size_bytes=model["size_bytes"]))
        result = {
            "type": model["type"],
            "model_instance_id": identifier,
            "config": {"context_length": 4096},
            "load_time_seconds": 0.31,
        }
        if not (body.get("stream") and self.stream_load):
            return httpx.Response(200, json=result)
        events = [("progress", {"progress": p}) for p in (0.0, 0.5, 1.0)] + [("loaded", result)]
        text = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    def _unload(self, identifier: str) -> httpx.Response:
        for model in self.models:
            kept = [i for i in model["loaded_instances"] if i["id"] != identifier]
            if len(kept) != len(model["loaded_instances"]):
                model["loaded_instances"] = kept
                return httpx.Response(200, json={"instance_id": identifier})
        return api_error(404, f"No loaded model instance '{identifier}'.")


def write_server_file(
    home: Path, *, pid: int | None = None, port: int = 1234, host: str = "127.0.0.1"
) -> Path:
    path = home / "openlms" / "server.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC).isoformat()  # after this test process started, as a real record
    record = {"pid": pid or os.getpid(), "host": host, "port": port, "started_at": started_at}
    path.write_text(json.dumps(record))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
