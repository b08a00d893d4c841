"""`lms load --estimate-only` against the in-memory server: it asks the server's
`POST /api/v1/models/estimate` with only what the user set, prints LM Studio's lines, loads nothing, and
shows the server's errors. (The estimate itself: tests/unit/store/test_memory_estimate.py; the route:
tests/unit/server/test_estimate_routes.py; the real server: tests/e2e/test_estimate_e2e.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cli_fakes import FakeServer, Invoke, api_error

pytestmark = pytest.mark.usefixtures("running")

GB = 1000**3


class EstimatingServer(FakeServer):
    """The fake server plus the estimate route: 2 GB total, half of it on the GPU when `gpu` is set,
    refused by the guardrails above 100000 tokens, and a 2048-token limit for the embedding model."""

    def handle(self, request: httpx.Request) -> httpx.Response:
        if (request.method, request.url.path) != ("POST", "/api/v1/models/estimate"):
            return super().handle(request)
        body: dict[str, Any] = httpx.Response(200, content=request.content).json()
        self.requests.append((request.method, request.url.path, body))
        config = body["config"]
        context = config.get("context_length", 4096)
        if body["model"].startswith("text-embedding") and context > 2048:
            return api_error(400, "The model's maximum context length is 2048 tokens; use at most 2048.")
        fits = context <= 100000
        message = (
            "This model may be loaded based on your resource guardrails settings."
            if fits
            else "This model will fail to load based on your resource guardrails settings."
        )
        answer = {
            "model": body["model"],
            "context_length": context,
            "gpu_bytes": GB if "gpu" in config else 0,
            "total_bytes": 2 * GB,
            "guardrails": {"mode": "strict", "fits": fits, "limit_bytes": 10 * GB, "message": message},
        }
        return httpx.Response(200, json=answer)


@pytest.fixture
def server() -> FakeServer:
    return EstimatingServer()


def test_the_estimate_is_printed_as_lm_studio_prints_it(invoke: Invoke, server: FakeServer) -> None:
    args = ["load", "qwen2.5-0.5b-instruct", "--estimate-only", "--context-length", "8192", "--gpu", "max"]
    result = invoke([*args, "--parallel", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Model: Qwen/qwen2.5-0.5b-instruct",
        "Context Length: 8192 tokens",
        "Estimated GPU Memory:   1.00 GB",
        "Estimated Total Memory: 2.00 GB",
        "",
        "Estimate: This model may be loaded based on your resource guardrails settings.",
    ]
    sent = [body for method, path, body in server.requests if path == "/api/v1/models/estimate"]
    assert sent == [
        {"model": "qwen2.5-0.5b-instruct", "config": {"context_length": 8192, "gpu": "max", "parallel": 2}}
    ]
    assert not any(path == "/api/v1/models/load" for _, path, _ in server.requests)  # nothing loaded


def test_unset_flags_are_left_to_the_server(invoke: Invoke, server: FakeServer) -> None:
    result = invoke(["load", "smollm2-135m-instruct", "--estimate-only"])
    assert result.exit_code == 0, result.output
    assert server.requests[-1][2] == {"model": "smollm2-135m-instruct", "config": {}}
    assert "Context Length: 4096 tokens" in result.stdout  # what the server chose
    assert "Estimated GPU Memory:   0 B" in result.stdout


def test_a_refusal_is_worded_as_lm_studio_words_it(invoke: Invoke) -> None:
    result = invoke(["load", "smollm2-135m-instruct", "--estimate-only", "--context-length", "200000"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "Estimate: This model will fail to load based on your resource guardrails settings."
    )


def test_the_servers_errors_are_shown(invoke: Invoke) -> None:
    args = ["load", "text-embedding-nomic-embed-text-v1.5", "--estimate-only", "--context-length", "9999"]
    result = invoke(args)
    assert result.exit_code != 0
    assert "maximum context length is 2048" in result.output
    missing = invoke(["load", "no-such-model", "--estimate-only"])
    assert missing.exit_code != 0 and "No model matching 'no-such-model'" in missing.output
