"""The Discover page's HTTP endpoints on the real app (fake engine) against FakeHub through the real Hub
client: `GET /api/v1/models/search` and `GET /api/v1/models/download/options`, their `downloaded`
marks, and their errors (unknown repo, an MLX repo, the Hub unreachable) in the OpenAI shape."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openlms.engine.fake import FakeBackend
from openlms.store.curated import curated_models
from tests.support.fake_hub import FakeHub
from tests.support.tiny_gguf import write_tiny_llama_gguf
from tests.unit.server.conftest import make_app

REPO = "acme/Tiny-GGUF"
HERE = "acme/tiny-chat-GGUF"  # the conftest's models folder holds a model of this repo
FITS = {"fullGPUOffload", "partialGPUOffload", "fitWithoutGPU", "willNotFit"}
WAIT_S = 60.0  # an upper bound for a job to end; not a timing assertion


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub-files")
    return {
        "Tiny-Q4_K_M.gguf": write_tiny_llama_gguf(root / "q4.gguf", name="Tiny"),
        "Tiny-Q8_0.gguf": write_tiny_llama_gguf(root / "q8.gguf", name="Tiny", n_embd=128),
    }


@pytest.fixture
def hub(ggufs: dict[str, Path]) -> Iterator[FakeHub]:
    with FakeHub() as hub:
        hub.add_repo(REPO, ggufs, downloads=50, likes=3)
        hub.add_repo(HERE, {"tiny-chat-Q4_K_M.gguf": ggufs["Tiny-Q4_K_M.gguf"]}, downloads=7, likes=1)
        hub.add_repo("mlx-community/Tiny-4bit", {"model.safetensors": b"\0" * 64}, tags=("mlx",))
        yield hub


async def _client(home: Path, fake: FakeBackend, endpoint: str) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(home, fake, hub_endpoint=endpoint, download_retries=0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


@pytest.fixture
async def http(home: Path, fake: FakeBackend, hub: FakeHub) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(home, fake, hub.url):
        yield client


@pytest.fixture
async def offline(home: Path, fake: FakeBackend) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(home, fake, "http://hub.openlms-offline.invalid"):  # never resolves
        yield client


async def test_search_marks_what_is_downloaded(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/models/search", params={"q": "tiny", "limit": 5})
    assert response.status_code == 200, response.text
    by_id = {r["identifier"]: r for r in response.json()["results"]}
    assert set(by_id) >= {REPO, HERE}
    tiny = by_id[REPO]
    assert tiny["kind"] == "hf" and tiny["downloads"] == 50 and tiny["likes"] == 3
    assert tiny["formats"] == ["gguf"] and tiny["downloaded"] is False and tiny["gated"] is False
    assert by_id[HERE]["downloaded"] is True


async def test_no_term_gives_the_staff_picks(http: httpx.AsyncClient) -> None:
    picks = (await http.get("/api/v1/models/search", params={"limit": 25, "all": "true"})).json()["results"]
    assert [p["identifier"] for p in picks] == [e.model for e in curated_models()][:25]
    assert all(p["kind"] == "catalog" and p["staff_pick"] and p["description"] for p in picks)
    fitting = (await http.get("/api/v1/models/search", params={"limit": 25})).json()["results"]
    assert {p["identifier"] for p in fitting} <= {p["identifier"] for p in picks}


async def test_a_curated_name_comes_first(http: httpx.AsyncClient) -> None:
    results = (await http.get("/api/v1/models/search", params={"q": "smollm2-135m-instruct"})).json()[
        "results"
    ]
    first = results[0]
    assert first["kind"] == "catalog" and first["exact"] is True and first["params"]
    assert first["identifier"].endswith("/smollm2-135m-instruct")


async def test_options_then_download_marks_the_option(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/models/download/options", params={"model": REPO})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "hf" and body["identifier"] == REPO
    options = {o["quantization"]: o for o in body["options"]}
    assert set(options) == {"Q4_K_M", "Q8_0"}
    assert sum(o["recommended"] for o in options.values()) == 1
    assert all(o["fit"] in FITS and o["size_bytes"] > 0 and not o["downloaded"] for o in options.values())
    q8 = options["Q8_0"]
    assert q8["download_identifier"] == f"{REPO}/Tiny-Q8_0.gguf"
    assert q8["files"] == [{"path": "Tiny-Q8_0.gguf", "size_bytes": q8["size_bytes"]}]
    job = (await http.post("/api/v1/models/download", json={"model": q8["download_identifier"]})).json()
    assert (await _wait(http, job["job_id"]))["status"] == "completed"
    again = (await http.get("/api/v1/models/download/options", params={"model": REPO})).json()
    marks = {o["quantization"]: o["downloaded"] for o in again["options"]}
    assert marks == {"Q4_K_M": False, "Q8_0": True}
    found = (await http.get("/api/v1/models/search", params={"q": "Tiny-GGUF"})).json()["results"]
    assert next(r for r in found if r["identifier"] == REPO)["downloaded"] is True


async def test_options_accept_a_url(http: httpx.AsyncClient) -> None:
    url = f"https://huggingface.co/{REPO}"
    body = (await http.get("/api/v1/models/download/options", params={"model": url})).json()
    assert body["identifier"] == REPO and len(body["options"]) == 2


async def test_option_errors_are_openai_errors(http: httpx.AsyncClient) -> None:
    cases = [
        ("nobody/nothing-GGUF", 404, "model_not_found"),
        ("just some words", 404, "model_not_found"),
        ("mlx-community/Tiny-4bit", 400, "unsupported_format"),
    ]
    for model, status, code in cases:
        response = await http.get("/api/v1/models/download/options", params={"model": model})
        assert response.status_code == status, (model, response.text)
        error = response.json()["error"]
        assert error["code"] == code and error["message"], (model, error)
    missing = await http.get("/api/v1/models/download/options")
    assert missing.status_code == 400 and missing.json()["error"]["message"]
    too_many = await http.get("/api/v1/models/search", params={"q": "x", "limit": 500})
    assert too_many.status_code == 400 and "limit" in too_many.json()["error"]["message"]


async def test_offline_says_the_hub_cannot_be_reached(offline: httpx.AsyncClient) -> None:
    for path, params in (
        ("/api/v1/models/search", {"q": "nothing-curated-xyz"}),
        ("/api/v1/models/download/options", {"model": "someone/Some-GGUF"}),
    ):
        response = await offline.get(path, params=params)
        assert response.status_code == 502, response.text
        error = response.json()["error"]
        assert error["code"] == "hub_unavailable" and "Could not reach the model hub" in error["message"]
    picks = await offline.get("/api/v1/models/search")  # the staff picks need no Hub
    assert picks.status_code == 200 and picks.json()["results"]
    curated = (await offline.get("/api/v1/models/search", params={"q": "qwen3"})).json()["results"]
    assert curated and all(r["kind"] == "catalog" for r in curated)


async def _wait(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        body: dict[str, Any] = (await http.get(f"/api/v1/models/download/status/{job_id}")).json()
        if body["status"] != "downloading" or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_the_routes_are_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    search = paths["/api/v1/models/search"]["get"]
    assert {p["name"] for p in search["parameters"]} == {"q", "limit", "all"}
    assert {"200", "502"} <= set(search["responses"])
    options = paths["/api/v1/models/download/options"]["get"]
    assert {"200", "404", "502"} <= set(options["responses"])
