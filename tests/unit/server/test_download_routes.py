"""The download APIs on the real app (fake engine) against FakeHub through the real Hub client and
downloads: LM Studio 0.4's `/api/v1/models/download` + status (and openlms's pause/resume), and the SDK's
`repository` namespace frame by frame."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from openlms.engine.fake import FakeBackend
from tests.support.fake_hub import FakeHub
from tests.support.tiny_gguf import write_tiny_llama_gguf
from tests.unit.server.conftest import make_app
from tests.unit.server.test_sdk_protocol import Socket, connect, messages

REPO = "acme/Tiny-GGUF"
Q4 = "Tiny-Q4_K_M.gguf"
Q8 = "Tiny-Q8_0.gguf"
WAIT_S = 60.0  # an upper bound for a job to end; not a timing assertion


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub-files")
    return {
        Q4: write_tiny_llama_gguf(root / Q4, name="Tiny"),
        Q8: write_tiny_llama_gguf(root / Q8, name="Tiny", n_embd=128),
    }


@pytest.fixture
def hub(ggufs: dict[str, Path]) -> Iterator[FakeHub]:
    with FakeHub() as hub:
        hub.add_repo(REPO, {Q4: ggufs[Q4], Q8: ggufs[Q8]}, downloads=50, likes=3)
        hub.add_repo("acme/Gated-GGUF", {"Gated-Q4_K_M.gguf": ggufs[Q4]}, gated=True)
        hub.add_repo(
            "mlx-community/Tiny-4bit", {"model.safetensors": b"\0" * 64}, tags=("mlx",), library_name="mlx"
        )
        yield hub


@pytest.fixture
async def http(home: Path, fake: FakeBackend, hub: FakeHub) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(home, fake, hub_endpoint=hub.url, download_retries=1)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


async def wait_job(http: httpx.AsyncClient, job_id: str, until: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        body: dict[str, Any] = (await http.get(f"/api/v1/models/download/status/{job_id}")).json()
        if body["status"] in until or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_download_then_status_then_listed(http: httpx.AsyncClient) -> None:
    started = await http.post("/api/v1/models/download", json={"model": REPO, "quantization": "q8_0"})
    assert started.status_code == 200
    job = started.json()
    assert job["status"] == "downloading" and job["job_id"] and job["quantization"] == "Q8_0"
    assert job["total_size_bytes"] > 0 and job["files"] == [
        {"path": Q8, "size_bytes": job["total_size_bytes"]}
    ]
    done = await wait_job(http, job["job_id"], ("completed", "failed"))
    assert done["status"] == "completed", done
    assert done["downloaded_bytes"] == done["total_size_bytes"] and done["completed_at"]
    keys = {m["key"]: m for m in (await http.get("/api/v1/models")).json()["models"]}
    assert done["model_key"] in keys and keys[done["model_key"]]["path"] == f"{REPO}/{Q8}"
    again = (
        await http.post("/api/v1/models/download", json={"model": f"https://huggingface.co/{REPO}@Q8_0"})
    ).json()
    assert again["status"] == "already_downloaded" and again["model_key"] == done["model_key"]


async def test_no_quantization_downloads_the_recommended_file(http: httpx.AsyncClient) -> None:
    job = (await http.post("/api/v1/models/download", json={"model": REPO})).json()
    assert job["quantization"] == "Q4_K_M"
    assert (await wait_job(http, job["job_id"], ("completed", "failed")))["status"] == "completed"


async def test_errors_before_a_job(http: httpx.AsyncClient) -> None:
    cases = [
        ({"model": "nobody/nothing-GGUF"}, 404, None),
        ({"model": "mlx-community/Tiny-4bit"}, 400, "unsupported_format"),
        ({"model": REPO, "quantization": "IQ1_S"}, 400, None),
        ({"model": ""}, 400, None),
        ({"model": REPO, "extra": 1}, 400, None),
    ]
    for body, status, code in cases:
        response = await http.post("/api/v1/models/download", json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error["message"]
        if code:
            assert error["code"] == code
    missing_quant = (await http.post("/api/v1/models/download", json={"model": f"{REPO}@iq1_s"})).json()
    assert "Q4_K_M" in missing_quant["error"]["message"] and "Q8_0" in missing_quant["error"]["message"]
    unknown = await http.get("/api/v1/models/download/status/job_nope")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "job_not_found"
    assert (await http.get("/api/v1/models/download/jobs")).json() == {"jobs": []}


async def test_a_gated_repo_without_a_token_fails_saying_what_to_do(http: httpx.AsyncClient) -> None:
    # A gated repo's listing is public; its files need a token: the job fails with the Hub's answer.
    job = (await http.post("/api/v1/models/download", json={"model": "acme/Gated-GGUF"})).json()
    done = await wait_job(http, job["job_id"], ("completed", "failed"))
    assert done["status"] == "failed" and done["error"]["code"] == "hub_auth_required", done
    assert "HF_TOKEN" in done["error"]["message"]


async def test_a_corrupt_file_fails_the_job_and_nothing_is_listed(
    http: httpx.AsyncClient, hub: FakeHub
) -> None:
    hub.corrupt(Q4)
    job = (await http.post("/api/v1/models/download", json={"model": f"{REPO}@q4_k_m"})).json()
    done = await wait_job(http, job["job_id"], ("completed", "failed"))
    assert done["status"] == "failed" and done["error"]["code"] == "download_corrupt", done
    assert "sha256" in done["error"]["message"].lower()
    paths = [m["path"] for m in (await http.get("/api/v1/models")).json()["models"]]
    assert not any(p.startswith(REPO) for p in paths)


async def test_pause_then_resume(http: httpx.AsyncClient, hub: FakeHub) -> None:
    hub.slow(100_000)  # bytes/s: the tiny file takes seconds
    job = (await http.post("/api/v1/models/download", json={"model": f"{REPO}@q8_0"})).json()
    while (await http.get(f"/api/v1/models/download/status/{job['job_id']}")).json()["downloaded_bytes"] == 0:
        await asyncio.sleep(0.05)
    paused = (await http.post(f"/api/v1/models/download/{job['job_id']}/pause")).json()
    assert paused["status"] == "paused", paused
    assert 0 < paused["downloaded_bytes"] < paused["total_size_bytes"]
    assert paused["estimated_completion"] is None
    hub.slow(None)
    resumed = (await http.post(f"/api/v1/models/download/{job['job_id']}/resume")).json()
    assert resumed["job_id"] == job["job_id"] and resumed["status"] == "downloading"
    done = await wait_job(http, job["job_id"], ("completed", "failed"))
    assert done["status"] == "completed", done
    ranges = [r.headers.get("range") for r in hub.file_gets(Q8)]
    assert any(r and not r.startswith("bytes=0-") for r in ranges), ranges  # resumed, not restarted


async def test_two_clients_asking_at_once_share_one_download(http: httpx.AsyncClient, hub: FakeHub) -> None:
    hub.slow(400_000)
    try:
        body = {"model": REPO, "quantization": "Q8_0"}
        first, second = await asyncio.gather(
            http.post("/api/v1/models/download", json=body), http.post("/api/v1/models/download", json=body)
        )
        assert first.json()["job_id"] == second.json()["job_id"]
    finally:
        hub.slow(None)
    assert (await wait_job(http, first.json()["job_id"], ("completed", "failed")))["status"] == "completed"
    assert len([r for r in hub.file_gets(Q8) if not r.headers.get("range")]) <= 1  # one transfer


async def test_a_cut_connection_is_resumed_within_the_job(http: httpx.AsyncClient, hub: FakeHub) -> None:
    cut_at = random.randrange(1, 700_000)
    hub.cut_after(Q4, cut_at)
    job = (await http.post("/api/v1/models/download", json={"model": f"{REPO}@Q4_K_M"})).json()
    done = await wait_job(http, job["job_id"], ("completed", "failed"))
    assert done["status"] == "completed", (cut_at, done)
    ranges = [r.headers.get("range") for r in hub.file_gets(Q4)]
    assert f"bytes={cut_at}-" in ranges, (cut_at, ranges)  # went on from the byte it had


async def test_split_files_and_the_vision_projector_come_as_one_model(
    http: httpx.AsyncClient, hub: FakeHub, tmp_path: Path, ggufs: dict[str, Path]
) -> None:
    write_tiny_llama_gguf(tmp_path / "Split-Q8_0.gguf", split_max_tensors=10, seed=7)
    parts = sorted(tmp_path.glob("Split-Q8_0-*.gguf"))
    assert len(parts) > 1
    files: dict[str, bytes | Path] = {f"Q8_0/{p.name}": p for p in parts}
    hub.add_repo("acme/Split-GGUF", {**files, "mmproj-Split-F16.gguf": ggufs[Q4]})
    url = f"https://huggingface.co/acme/Split-GGUF/blob/main/Q8_0/{parts[1].name}"  # the second part's URL
    job = (await http.post("/api/v1/models/download", json={"model": url})).json()
    assert [f["path"] for f in job["files"]] == [*files, "mmproj-Split-F16.gguf"], job
    done = await wait_job(http, job["job_id"], ("completed", "failed"))
    assert done["status"] == "completed", done
    models = [
        m for m in (await http.get("/api/v1/models")).json()["models"] if m["path"].startswith("acme/Split")
    ]
    assert [m["key"] for m in models] == [done["model_key"]]  # one model, its projector not listed apart
    assert (await http.post("/api/v1/models/download", json={"model": "acme/Split-GGUF"})).json()[
        "status"
    ] == "already_downloaded"


# -- the SDK's repository namespace ------------------------------------------------------------------


@pytest.fixture
def repository(home: Path, fake: FakeBackend, hub: FakeHub) -> Iterator[Socket]:
    with TestClient(make_app(home, fake, hub_endpoint=hub.url, download_retries=1)) as client:
        yield from connect(client, "repository")


def test_sdk_search_options_and_download(repository: Socket) -> None:
    found = repository.call("searchModels", {"opts": {"searchTerm": "tiny", "limit": 5}})
    results = found["result"]["results"]
    hf = [r for r in results if r["identifier"]["type"] == "hf"]
    assert hf[0]["name"] == REPO and hf[0]["identifier"] == {"type": "hf", "identifier": REPO}
    assert hf[0]["formats"] == ["gguf"] and isinstance(hf[0]["downloads"], int)  # openlms extras
    options = repository.call("getModelDownloadOptions", {"modelSearchResultIdentifier": hf[0]["identifier"]})
    listed = options["result"]["results"]
    assert [o["quantization"] for o in listed] == ["Q4_K_M", "Q8_0"]
    assert [o.get("recommended", False) for o in listed] == [True, False]
    assert all(o["fitEstimation"] in ("fullGPUOffload", "partialGPUOffload", "fitWithoutGPU") for o in listed)
    assert listed[0]["downloadIdentifier"] == f"{REPO}/{Q4}" and listed[0]["sizeBytes"] > 0
    frames = repository.channel("downloadModel", {"downloadIdentifier": listed[0]["downloadIdentifier"]})
    sent = messages(frames)
    assert frames[-1]["type"] == "channelClose"
    kinds = [m["type"] for m in sent]
    assert kinds[0] == "downloadProgress" and kinds[-2:] == ["startFinalizing", "success"]
    last = [m["update"] for m in sent if m["type"] == "downloadProgress"][-1]
    assert last["downloadedBytes"] == last["totalBytes"] == listed[0]["sizeBytes"]
    assert sent[-1]["defaultIdentifier"] == "tiny"
    # downloaded already: success at once
    again = messages(
        repository.channel("downloadModel", {"downloadIdentifier": listed[0]["downloadIdentifier"]})
    )
    assert again[-1] == {"type": "success", "defaultIdentifier": "tiny"}


def test_sdk_curated_search_and_errors(repository: Socket) -> None:
    picks = repository.call("searchModels", {"opts": {"limit": 25}})["result"]["results"]
    assert picks and all(p["staffPick"] and p["identifier"]["type"] == "catalog" for p in picks)
    named = repository.call("searchModels", {"opts": {"searchTerm": "smollm2-135m-instruct"}})["result"][
        "results"
    ]
    assert named[0]["exact"] and named[0]["identifier"]["type"] == "catalog"
    bad = repository.call("searchModels", {"opts": {"limit": 100}})
    assert bad["type"] == "rpcError" and "limit" in bad["error"]["title"]
    missing = repository.call(
        "getModelDownloadOptions", {"modelSearchResultIdentifier": {"type": "hf", "identifier": "no/repo"}}
    )
    assert missing["type"] == "rpcError" and "no/repo" in missing["error"]["title"]
    mlx = repository.call(
        "getModelDownloadOptions",
        {"modelSearchResultIdentifier": {"type": "hf", "identifier": "mlx-community/Tiny-4bit"}},
    )
    assert mlx["type"] == "rpcError" and "MLX" in mlx["error"]["title"]
    frames = repository.channel("downloadModel", {"downloadIdentifier": "junk"})
    assert frames[-1]["type"] == "channelError" and "download identifier" in frames[-1]["error"]["title"]


def test_sdk_download_of_a_gated_repo_is_a_channel_error_naming_hf_token(repository: Socket) -> None:
    options = repository.call(
        "getModelDownloadOptions",
        {"modelSearchResultIdentifier": {"type": "hf", "identifier": "acme/Gated-GGUF"}},
    )["result"]["results"]
    frames = repository.channel("downloadModel", {"downloadIdentifier": options[0]["downloadIdentifier"]})
    assert frames[-1]["type"] == "channelError", frames
    assert "HF_TOKEN" in frames[-1]["error"]["title"]
