"""The download APIs end to end: the real server (HF_ENDPOINT = a local fake Hub, an empty models
directory) driven by `httpx` (LM Studio 0.4's `/api/v1/models/download` + status) and by the real
`lmstudio` SDK's repository API (search, download options, download with progress callbacks), as the
SDK's own repository tests (1.5.0, tests/*/test_repository_*.py) use it.

The real SmolLM2 (~100 MB, served from the installed file) is downloaded once, through the SDK, then
chatted with; tiny random-weight GGUFs cover the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lmstudio as lms
import pytest

from tests.support.fake_hub import FakeHub
from tests.support.sdk import host_of
from tests.support.server import SDK_PORT, Server, free_port, sdk_port_held, start_server
from tests.support.tiny_gguf import write_tiny_llama_gguf

pytestmark = pytest.mark.e2e

TINY = "acme/Tiny-GGUF"
SMALL_LLM_SEARCH_TERM = "smollm2-135m"  # the SDK suite's term (tests/support/__init__.py)
WAIT_S = 300.0  # an upper bound for a job to end; not a timing assertion


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    root = tmp_path_factory.mktemp("hub-files")
    with FakeHub() as fake:
        fake.add_smollm2()
        fake.add_repo(
            TINY,
            {
                "Tiny-Q4_K_M.gguf": write_tiny_llama_gguf(root / "a.gguf", seed=1),
                "Tiny-Q8_0.gguf": write_tiny_llama_gguf(root / "b.gguf", seed=2),
            },
            downloads=5,
        )
        fake.add_repo("mlx-community/Tiny-4bit", {"model.safetensors": b"\0" * 64}, tags=("mlx",))
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("downloads")
    (tmp / "models").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
            patch.delenv(name, raising=False)
        patch.setenv("HF_ENDPOINT", hub.url)
        patch.setenv("HF_HOME", str(tmp / "hf"))
        srv = start_server(tmp, tmp / "models", free_port())
    try:
        yield srv
    finally:
        srv.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with server.http() as client:
        yield client


def wait_job(http: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        body: dict[str, Any] = http.get(f"/api/v1/models/download/status/{job_id}").json()
        if body["status"] != "downloading" or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_sdk_search_options_download_then_chat(server: Server, http: httpx.Client) -> None:
    """The SDK suite's test_download_model, with progress and finalize callbacks, then a chat."""
    progress: list[lms.DownloadProgressUpdate] = []
    finalized: list[bool] = []
    with lms.Client(host_of(server)) as client:
        models = client.repository.search_models(SMALL_LLM_SEARCH_TERM)
        assert isinstance(models, list) and models
        assert models[0].search_result.identifier.type == "catalog"
        options = models[0].get_download_options()
        assert isinstance(options, list) and options
        assert sum(1 for o in options if o.info.recommended) == 1
        key = options[0].download(on_progress=progress.append, on_finalize=lambda: finalized.append(True))
    assert isinstance(key, str) and key
    assert (
        progress and progress[-1].downloaded_bytes == progress[-1].total_bytes == options[0].info.size_bytes
    )
    assert [p.downloaded_bytes for p in progress] == sorted(p.downloaded_bytes for p in progress)
    assert finalized == [True]
    listed = {m["key"]: m for m in http.get("/api/v1/models").json()["models"]}
    assert key in listed and listed[key]["path"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/")
    # The REST API knows it is there; the model answers a chat (JIT load).
    again = http.post("/api/v1/models/download", json={"model": "smollm2-135m-instruct"}).json()
    assert again["status"] == "already_downloaded" and again["model_key"] == key
    chat = http.post(
        "/v1/chat/completions",
        json={
            "model": key,
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 4,
            "temperature": 0,
        },
    )
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] is not None


def test_the_sdk_docs_download_flow_then_load(server: Server, hub: FakeHub, tmp_path: Path) -> None:
    """_download-models.md's steps in Python (the page is a TypeScript draft): search with a term, a
    limit and compatibility types, pick Q4_K_M, download with both callbacks, load the key it returns."""
    hub.add_repo(
        "acme/Docs-GGUF",
        {
            "Docs-Q4_K_M.gguf": write_tiny_llama_gguf(tmp_path / "q4.gguf", seed=11),
            "Docs-Q8_0.gguf": write_tiny_llama_gguf(tmp_path / "q8.gguf", seed=12),
        },
    )
    finalizing: list[str] = []
    updates: list[lms.DownloadProgressUpdate] = []
    with lms.Client(host_of(server)) as client:
        results = client.repository.search_models("Docs-GGUF", limit=5, compatibility_types=["gguf"])
        best = results[0]
        assert best.search_result.identifier.identifier == "acme/Docs-GGUF"
        options = best.get_download_options()
        desired = next(o for o in options if o.info.quantization == "Q4_K_M")
        model_key = desired.download(on_progress=updates.append, on_finalize=lambda: finalizing.append("x"))
        model = client.llm.model(model_key)
        try:
            assert model.get_info().model_key == model_key
            reply = model.respond("Hi", config={"maxTokens": 2, "temperature": 0})
            assert reply.stats.predicted_tokens_count is not None
        finally:
            model.unload()
    assert finalizing == ["x"] and updates[-1].downloaded_bytes == desired.info.size_bytes


def test_sdk_objects_out_of_session_raise(server: Server) -> None:
    """The SDK suite's test_get_options_out_of_session and test_download_out_of_session."""
    with lms.Client(host_of(server)) as client:
        models = client.repository.search_models("tiny")
        options = models[0].get_download_options()
    with pytest.raises(lms.LMStudioClientError):
        models[0].get_download_options()
    with pytest.raises(lms.LMStudioClientError):
        options[0].download()


def test_async_sdk_downloads_a_hub_repo(server: Server) -> None:
    async def run() -> tuple[str, list[str]]:
        async with lms.AsyncClient(host_of(server)) as client:
            models = await client.repository.search_models("tiny", limit=5)
            hf = [m for m in models if m.search_result.identifier.identifier == TINY]
            options = await hf[0].get_download_options()
            q8 = next(o for o in options if o.info.quantization == "Q8_0")
            return await q8.download(), [o.info.quantization or "" for o in options]

    key, quants = asyncio.run(run())
    assert quants == ["Q4_K_M", "Q8_0"] and key


def test_rest_download_status_and_errors(http: httpx.Client, hub: FakeHub) -> None:
    job = http.post(
        "/api/v1/models/download", json={"model": f"https://huggingface.co/{TINY}", "quantization": "Q4_K_M"}
    )
    assert job.status_code == 200, job.text
    started = job.json()
    assert started["status"] in ("downloading", "already_downloaded") and started["job_id"]
    done = wait_job(http, started["job_id"])
    assert done["status"] in ("completed", "already_downloaded"), done
    assert done["downloaded_bytes"] == done["total_size_bytes"] and done["model_key"]
    for body, status in (
        ({"model": "nobody/no-such-repo-GGUF"}, 404),
        ({"model": "mlx-community/Tiny-4bit"}, 400),
        ({"model": TINY, "quantization": "Q3_K_S"}, 400),
    ):
        response = http.post("/api/v1/models/download", json=body)
        assert response.status_code == status and response.json()["error"]["message"], response.text
    assert http.get("/api/v1/models/download/status/job_unknown").status_code == 404


def test_closing_the_sdk_channel_pauses_and_the_same_download_resumes(
    server: Server, http: httpx.Client, hub: FakeHub, tmp_path: Path
) -> None:
    hub.add_repo("acme/Slow-GGUF", {"Slow-Q4_K_M.gguf": write_tiny_llama_gguf(tmp_path / "s.gguf", seed=3)})
    hub.slow(100_000)
    try:
        seen: list[int] = []

        def stop_early(update: lms.DownloadProgressUpdate) -> None:
            seen.append(update.downloaded_bytes)
            if update.downloaded_bytes > 0:
                raise KeyboardInterrupt  # the user's Ctrl+C: the SDK closes the channel

        with lms.Client(host_of(server)) as client:
            models = client.repository.search_models("Slow")
            option = next(m for m in models if m.search_result.identifier.identifier == "acme/Slow-GGUF")
            download = option.get_download_options()[0]
            with contextlib.suppress(KeyboardInterrupt):
                download.download(on_progress=stop_early)
        jobs = http.get("/api/v1/models/download/jobs").json()["jobs"]
        slow = next(j for j in jobs if j["download_identifier"].startswith("acme/Slow-GGUF/"))
        paused = wait_job(http, slow["job_id"])
        assert paused["status"] == "paused", paused
        assert 0 < paused["downloaded_bytes"] < paused["total_size_bytes"]
    finally:
        hub.slow(None)
    resumed = http.post("/api/v1/models/download", json={"model": "acme/Slow-GGUF"}).json()
    assert resumed["job_id"] == slow["job_id"]
    assert wait_job(http, slow["job_id"])["status"] == "completed"


# -- the SDK's own repository tests ------------------------------------------------------------------

SUITE_SDIST_DIR = Path.home() / ".cache" / "openlms" / "sdk-suite" / "sdist"  # as scripts/sdk-suite.sh
SUITE_FILES = ("tests/sync/test_repository_sync.py", "tests/async/test_repository_async.py")


def sdk_suite(tmp: Path) -> Path:
    """The lmstudio 1.5.0 sdist's root (its pyproject.toml's pytest settings and `tests/`), unpacked."""
    sdist = SUITE_SDIST_DIR / "lmstudio-1.5.0.tar.gz"
    if not sdist.exists():
        SUITE_SDIST_DIR.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        fetched = subprocess.run(
            [*pip, "-d", str(SUITE_SDIST_DIR), "lmstudio==1.5.0"], capture_output=True, timeout=300
        )
        if fetched.returncode != 0 or not sdist.exists():
            pytest.skip("the lmstudio 1.5.0 sdist (the SDK's test suite) could not be fetched from PyPI")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp, filter="data")
    return tmp / "lmstudio-1.5.0"


def test_the_sdks_own_repository_tests_pass(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> None:
    """lmstudio 1.5.0's tests/{sync,async}/test_repository_*.py, unchanged: `Client()` with no host finds
    the server on 41343; its Hub is the fake one, serving SmolLM2 (the suite's search term)."""
    tmp = tmp_path_factory.mktemp("sdk-suite")
    root = sdk_suite(tmp)
    (tmp / "models").mkdir()
    with sdk_port_held(), pytest.MonkeyPatch.context() as patch:
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
            patch.delenv(name, raising=False)
        patch.setenv("HF_ENDPOINT", hub.url)
        patch.setenv("HF_HOME", str(tmp / "hf"))
        srv = start_server(tmp, tmp / "models", free_port(), sdk_port=SDK_PORT)
        try:
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-p",
                    "no:cacheprovider",
                    "-m",
                    "lmstudio",
                    "-q",
                    "-rA",
                    *SUITE_FILES,
                ],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            srv.lms("server", "stop", check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "6 passed" in run.stdout, run.stdout[-2000:]
