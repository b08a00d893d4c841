"""DownloadService: resolving what to download, jobs (one per option, pause/resume, failures, the
max_concurrent_downloads queue), and the catalog seeing a finished download at once. The Hub is a stub
listing and the download a scripted function (the real ones are tested with FakeHub elsewhere)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from openlms.core.errors import (
    DownloadJobNotFoundError,
    DownloadVerificationError,
    HubError,
    InvalidRequestError,
    ModelNotFoundError,
    UnsupportedFormatError,
)
from openlms.core.settings import Settings
from openlms.engine.fake import FakeBackend
from openlms.engine.manager import InstanceManager
from openlms.services.download_jobs import DownloadJob, SpeedMeter
from openlms.services.downloads import DownloadService
from openlms.services.models import ModelService
from openlms.store import ModelCatalog
from openlms.store.hub import HubClient
from openlms.store.virtual import hub_models_dir
from tests.support.hub_stub import (
    BASE_SIZE,
    QUANTS,
    REPO,
    ScriptedDownload,
    StubHub,
    listing,
    option,
    stub_hub,
)
from tests.support.tiny_gguf import write_tiny_llama_gguf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("src") / "tiny.gguf", name="Tiny")


@pytest.fixture
def script(tiny: Path) -> ScriptedDownload:
    return ScriptedDownload(tiny)


def service(tmp_path: Path, hub: HubClient, script: ScriptedDownload, **settings: object) -> DownloadService:
    config = Settings(home=tmp_path, **settings)  # type: ignore[arg-type]
    catalog = ModelCatalog(config.resolved_models_dir, hub_models_dir(config.home))  # as app.py builds it
    models = ModelService(config, catalog, InstanceManager(FakeBackend()))
    return DownloadService(models, hub, downloader=script)


@pytest.fixture
def hub() -> StubHub:
    return stub_hub()


async def test_a_download_completes_and_the_catalog_lists_it_at_once(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    downloads = service(tmp_path, hub, script)
    job = await downloads.start(REPO, "q8_0")
    assert job.status == "downloading" and job.option.quantization == "Q8_0"
    await asyncio.wait_for(job.done.wait(), 30)
    body = job.to_json()
    assert (
        body["status"] == "completed"
        and body["downloaded_bytes"] == body["total_size_bytes"] == BASE_SIZE + 3000
    )
    assert body["completed_at"] and body["started_at"] and body["estimated_completion"] is None
    assert body["model_key"] and downloads.models.catalog.find(body["model_key"], refresh=False) is not None
    assert downloads.job(job.job_id) is job
    # asked again: already there, nothing downloaded
    again = await downloads.start(f"https://huggingface.co/{REPO}", "Q8_0")
    assert again.status == "already_downloaded" and again.model_key == body["model_key"]
    assert script.calls == [f"{REPO}/Tiny-Q8_0.gguf"]


async def test_no_quantization_picks_the_recommended_one(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    resolved = await service(tmp_path, hub, script).resolve(REPO)
    assert resolved.option.quantization == "Q4_K_M"  # fits any machine (1 MB)
    at_quant = await service(tmp_path, hub, script).resolve(f"{REPO}@q2_k")
    assert at_quant.option.quantization == "Q2_K"


async def test_two_requests_for_the_same_option_share_one_job(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    script.gate.clear()
    downloads = service(tmp_path, hub, script)
    first, second = await asyncio.gather(downloads.start(REPO, "Q4_K_M"), downloads.start(REPO, "q4_k_m"))
    assert first is second
    script.gate.set()
    await asyncio.wait_for(first.done.wait(), 30)
    assert first.status == "completed" and len(script.calls) == 1


async def test_pause_keeps_the_job_and_resume_finishes_it(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    script.gate.clear()
    downloads = service(tmp_path, hub, script)
    job = await downloads.start(REPO, "Q4_K_M")
    await asyncio.to_thread(script.started.wait, 30)
    paused = await downloads.pause(job.job_id)
    assert paused.status == "paused" and paused.downloaded_bytes == (BASE_SIZE + 2000) // 2  # kept
    assert (await downloads.start(REPO, "Q4_K_M")) is job  # the same download resumes it
    assert job.status == "downloading"
    script.gate.set()
    await asyncio.wait_for(job.done.wait(), 30)
    assert job.status == "completed" and len(script.calls) == 2
    assert (await downloads.resume(job.job_id)).status == "completed"  # nothing to resume


async def test_asking_again_while_a_pause_is_under_way_resumes_instead_of_joining_the_pause(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    """`lms get` run again right after Ctrl+C: the job is still stopping; the new request waits for
    the stop, then resumes the download, and does not end paused with it."""
    script.gate.clear()
    downloads = service(tmp_path, hub, script)
    job = await downloads.start(REPO, "Q4_K_M")
    await asyncio.to_thread(script.started.wait, 30)
    downloads.request_pause(job.job_id)  # no wait: the download thread has not stopped yet
    assert job.active and job.cancel.is_set()
    again = await downloads.start(REPO, "Q4_K_M")
    assert again is job and job.status == "downloading" and not job.cancel.is_set()
    script.gate.set()
    await asyncio.wait_for(job.done.wait(), 30)
    assert job.status == "completed" and len(script.calls) == 2


async def test_a_failed_download_reports_its_error_and_can_be_retried(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    script.fail = DownloadVerificationError("Tiny-Q2_K.gguf: sha256 mismatch; the file was deleted.")
    downloads = service(tmp_path, hub, script)
    job = await downloads.start(REPO, "Q2_K")
    await asyncio.wait_for(job.done.wait(), 30)
    body = job.to_json()
    assert body["status"] == "failed" and body["model_key"] is None
    assert body["error"] == {"message": script.fail.message, "code": "download_corrupt"}
    script.fail = None
    retried = await downloads.resume(job.job_id)
    await asyncio.wait_for(retried.done.wait(), 30)
    assert retried is job and job.status == "completed" and "error" not in job.to_json()


async def test_downloads_beyond_the_limit_wait_and_a_queued_one_pauses_at_once(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    script.gate.clear()
    downloads = service(tmp_path, hub, script, max_concurrent_downloads=1)
    running = await downloads.start(REPO, "Q2_K")
    queued = await downloads.start(REPO, "Q8_0")
    await asyncio.to_thread(script.started.wait, 30)
    await asyncio.sleep(0.05)
    assert running.started and not queued.started and len(script.calls) == 1
    assert (await downloads.pause(queued.job_id)).status == "paused"
    script.gate.set()
    await asyncio.wait_for(running.done.wait(), 30)
    assert running.status == "completed" and script.calls == [f"{REPO}/Tiny-Q2_K.gguf"]


async def test_resolving_errors_come_before_any_job(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    downloads = service(tmp_path, hub, script)
    with pytest.raises(InvalidRequestError) as info:
        await downloads.start(REPO, "IQ1_S")
    assert "IQ1_S" in info.value.message and "Q4_K_M" in info.value.message
    with pytest.raises(UnsupportedFormatError) as unsupported:
        await downloads.start("mlx-community/Tiny-4bit")
    assert "MLX" in unsupported.value.message and "--gguf" in unsupported.value.message
    with pytest.raises(ModelNotFoundError):
        await downloads.start("nobody/nothing-GGUF")
    with pytest.raises(ModelNotFoundError) as unknown:
        await downloads.start("no-such-curated-model")
    assert "lms get" in unknown.value.message
    with pytest.raises(DownloadJobNotFoundError):
        downloads.job("job_nope")
    assert downloads.jobs() == [] and script.calls == []


async def test_a_curated_name_resolves_to_its_first_source(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    resolved = await service(tmp_path, hub, script).resolve("smollm2-135m-instruct")
    assert resolved.curated is not None and resolved.curated.name == "smollm2-135m-instruct"
    assert resolved.option.repo_id.lower() == "huggingfacetb/smollm2-135m-instruct-gguf"


async def test_a_file_url_picks_that_file(tmp_path: Path, hub: StubHub, script: ScriptedDownload) -> None:
    url = f"https://huggingface.co/{REPO}/blob/main/Tiny-Q8_0.gguf"
    assert (await service(tmp_path, hub, script).resolve(url)).option.quantization == "Q8_0"
    option = await service(tmp_path, hub, script).resolve_identifier(f"{REPO}/Tiny-Q2_K.gguf")
    assert option.quantization == "Q2_K"
    with pytest.raises(InvalidRequestError):
        await service(tmp_path, hub, script).resolve_identifier(f"{REPO}/Nope.gguf")


async def test_search_lists_curated_entries_first_then_the_hub(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    downloads = service(tmp_path, hub, script)
    results = await downloads.search("smollm2-135m")
    assert results[0].kind == "catalog" and results[0].identifier == "huggingfacetb/smollm2-135m-instruct"
    exact = await downloads.search("smollm2-135m-instruct")
    assert exact[0].exact
    hits = await downloads.search("tiny")
    assert [r.identifier for r in hits if r.kind == "hf"] == [REPO, "other/tiny-x"]
    picks = await downloads.search("", show_all=True)
    assert picks and all(p.staff_pick and p.kind == "catalog" for p in picks)
    # the Hub down and no curated match: the Hub's error
    with pytest.raises(HubError):
        await downloads.search("unreachable")


async def test_options_mark_fit_and_one_recommendation(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    choices = await service(tmp_path, hub, script).options("hf", REPO)
    assert [c.option.quantization for c in choices] == list(QUANTS)
    assert [c.recommended for c in choices] == [False, True, False]
    assert all(c.fit in ("fullGPUOffload", "partialGPUOffload", "fitWithoutGPU") for c in choices)
    catalog = await service(tmp_path, hub, script).options("catalog", "smollm2-135m-instruct")
    assert [c.option.quantization for c in catalog] == ["Q8_0"] and catalog[0].recommended


async def test_a_curated_download_reports_its_virtual_model(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    downloads = service(tmp_path, hub, script)
    job = await downloads.start("smollm2-135m-instruct")
    await asyncio.wait_for(job.done.wait(), 30)
    assert job.status == "completed" and job.model_key == "huggingfacetb/smollm2-135m-instruct"
    assert (tmp_path / "hub" / "models" / "huggingfacetb" / "smollm2-135m-instruct" / "model.yaml").is_file()
    listed = downloads.models.catalog.find(job.model_key, refresh=False)
    assert listed is not None and listed.virtual
    # chosen through the SDK (a catalog search result's option): the same key
    choice = (await downloads.options("catalog", "huggingfacetb/smollm2-135m-instruct"))[0]
    again = await downloads.start_option(choice.option)
    assert again.status == "already_downloaded" and again.model_key == job.model_key


async def test_closing_the_service_pauses_running_and_queued_downloads(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    script.gate.clear()
    downloads = service(tmp_path, hub, script, max_concurrent_downloads=1)
    running = await downloads.start(REPO, "Q2_K")
    queued = await downloads.start(REPO, "Q8_0")
    await asyncio.to_thread(script.started.wait, 30)
    await asyncio.wait_for(downloads.close(), 30)
    assert (running.status, queued.status) == ("paused", "paused")
    assert running.downloaded_bytes > 0 and queued.downloaded_bytes == 0


@pytest.mark.parametrize(
    "identifier",
    ["junk", "../../etc/passwd.gguf", "a/../b.gguf", "acme/../x/y.gguf", "/acme/Tiny-GGUF/x.gguf"],
)
async def test_bad_download_identifiers_are_refused_before_the_hub(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload, identifier: str
) -> None:
    downloads = service(tmp_path, hub, script)
    with pytest.raises(InvalidRequestError):
        await downloads.resolve_identifier(identifier)
    assert hub.listings == 0


async def test_a_download_identifier_is_a_model_too(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    resolved = await service(tmp_path, hub, script).resolve(f"{REPO}/Tiny-Q8_0.gguf")
    assert resolved.option.identifier == f"{REPO}/Tiny-Q8_0.gguf"


async def test_a_curated_entry_falls_back_to_its_next_source(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    first = next(r for r in hub.repos if r.lower() == "huggingfacetb/smollm2-135m-instruct-gguf")
    del hub.repos[first]
    hub.repos["bartowski/SmolLM2-135M-Instruct-GGUF"] = listing(
        "bartowski/SmolLM2-135M-Instruct-GGUF", ("Q4_K_M",)
    )
    resolved = await service(tmp_path, hub, script).resolve("smollm2-135m-instruct")
    assert resolved.option.repo_id == "bartowski/SmolLM2-135M-Instruct-GGUF"


def test_speed_is_smoothed_over_time_and_gives_an_eta() -> None:
    meter = SpeedMeter()
    meter.update(0, now=0.0)
    assert meter.update(1_000_000, now=1.0) == 1_000_000  # the first measurement as it is
    slower = meter.update(1_500_000, now=2.0)  # 500 kB/s for a second: the average moves, not jumps
    assert 500_000 < slower < 1_000_000
    assert meter.update(1_500_100, now=2.01) == slower  # too short to measure
    job = DownloadJob(option=option(REPO, "Q4_K_M", 10_000_000), model=REPO)
    job.downloaded_bytes, job.bytes_per_second = 4_000_000, 2_000_000.0
    before = time.time()
    eta = job.estimated_completion()
    assert eta is not None and before + 3.0 <= eta <= time.time() + 3.0  # 6 MB left at 2 MB/s
    assert job.to_json()["estimated_completion"].endswith("Z")
    job.finish("paused")
    assert job.to_json()["estimated_completion"] is None and job.to_json()["bytes_per_second"] == 0


async def test_a_paused_job_whose_files_appeared_meanwhile_ends_as_already_downloaded(
    tmp_path: Path, hub: StubHub, script: ScriptedDownload
) -> None:
    script.gate.clear()
    downloads = service(tmp_path, hub, script)
    job = await downloads.start(REPO, "Q8_0")
    await asyncio.to_thread(script.started.wait, 30)
    await downloads.pause(job.job_id)
    script.gate.set()  # another process (lms get elsewhere) completes the same files
    other = service(tmp_path, hub, script)
    finished = await other.start(REPO, "Q8_0")
    await asyncio.wait_for(finished.done.wait(), 30)
    resumed = await downloads.resume(job.job_id)
    assert resumed is job and job.status == "already_downloaded" and job.model_key == finished.model_key
