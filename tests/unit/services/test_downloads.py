"""DownloadService: resolving what to download, jobs (one per option, pause/resume, failures, the
max_concurrent_downloads queue), and the catalog seeing a finished download at once. The Hub is a stub
listing and the download a scripted function (the real ones are tested with FakeHub elsewhere)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
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
from openlms.services.downloads import DownloadService
from openlms.services.models import ModelService
from openlms.store import ModelCatalog
from openlms.store.curated import find_curated
from openlms.store.hub import (
    DownloadCancelled,
    DownloadOption,
    DownloadProgress,
    HubClient,
    HubFile,
    RepoListing,
    SearchHit,
)
from tests.support.tiny_gguf import write_tiny_llama_gguf

REPO = "acme/Tiny-GGUF"
QUANTS = ("Q2_K", "Q4_K_M", "Q8_0")
BASE_SIZE = 1 << 20  # above the tiny GGUF's own size


def option(repo: str, quant: str, size: int = 1000) -> DownloadOption:
    name = f"{repo.split('/')[1].removesuffix('-GGUF')}-{quant}.gguf"
    return DownloadOption(repo, "abc123", name, quant, (HubFile(name, size, "0" * 64),))


def listing(
    repo: str, quants: Collection[str] = QUANTS, formats: frozenset[str] = frozenset({"gguf"})
) -> RepoListing:
    options = tuple(option(repo, q, BASE_SIZE + 1000 * (i + 1)) for i, q in enumerate(quants))
    return RepoListing(repo, "abc123", False, formats, options)


class StubHub(HubClient):
    def __init__(self, repos: dict[str, RepoListing], hits: list[SearchHit] | None = None) -> None:
        super().__init__("http://hub.invalid")
        self.repos = repos
        self.hits = hits or []
        self.listings = 0

    def search(self, term: str, *, limit: int = 10, formats: Collection[str] = ("gguf",)) -> list[SearchHit]:
        if term == "unreachable":
            raise HubError("The Hub at http://hub.invalid could not be reached.")
        return [h for h in self.hits if term.lower() in h.repo_id.lower()][:limit]

    def listing(self, repo_id: str, revision: str | None = None) -> RepoListing:
        self.listings += 1
        if repo_id not in self.repos:
            raise ModelNotFoundError(repo_id, reason=f"No repository '{repo_id}' on the Hub.")
        return self.repos[repo_id]


@dataclass
class ScriptedDownload:
    """Writes a real tiny GGUF into place, reporting progress in steps; `gate` holds it mid-way."""

    source: Path
    gate: threading.Event = field(default_factory=threading.Event)
    calls: list[str] = field(default_factory=list)
    fail: Exception | None = None
    started: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    def __call__(
        self,
        client: HubClient,
        option: DownloadOption,
        models_dir: Path,
        *,
        on_progress: Callable[[DownloadProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Path:
        self.calls.append(option.identifier)
        self.started.set()
        total = option.size_bytes
        assert on_progress is not None and cancel is not None
        on_progress(DownloadProgress(total // 2, total, 100.0))
        deadline = time.monotonic() + 30  # never hold a test run (the gate is opened by the test)
        while not self.gate.wait(0.01):
            if cancel.is_set() or time.monotonic() > deadline:
                raise DownloadCancelled()
        if self.fail is not None:
            raise self.fail
        on_progress(DownloadProgress(total, total, 100.0, finalizing=True))
        target = models_dir.joinpath(*option.repo_id.split("/")) / option.files[0].path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.source, target)
        with target.open("ab") as out:  # a real GGUF of the option's size (padding after the tensors)
            out.truncate(option.files[0].size)
        return target


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("src") / "tiny.gguf", name="Tiny")


@pytest.fixture
def script(tiny: Path) -> ScriptedDownload:
    return ScriptedDownload(tiny)


def service(tmp_path: Path, hub: HubClient, script: ScriptedDownload, **settings: object) -> DownloadService:
    config = Settings(home=tmp_path, **settings)  # type: ignore[arg-type]
    models = ModelService(config, ModelCatalog(config.resolved_models_dir), InstanceManager(FakeBackend()))
    return DownloadService(models, hub, downloader=script)


@pytest.fixture
def hub() -> StubHub:
    smol = find_curated("smollm2-135m-instruct")
    assert smol is not None
    source = f"{smol.sources[0].user}/{smol.sources[0].repo}"
    return StubHub(
        {
            REPO: listing(REPO),
            source: listing(source, ("Q8_0",)),
            "mlx-community/Tiny-4bit": listing("mlx-community/Tiny-4bit", (), frozenset({"mlx"})),
        },
        [
            SearchHit(REPO, 10, 1, frozenset({"gguf"}), False),
            SearchHit("other/tiny-x", 5, 0, frozenset(), False),
        ],
    )


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
