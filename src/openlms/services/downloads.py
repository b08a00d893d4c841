"""Getting models: search (the curated catalog first, then the Hub), a repo's download options with a
fit estimate and a recommendation, and download jobs (LM Studio 0.4's `/api/v1/models/download` and the
SDK's `repository` namespace both drive this one service).

Downloads run in threads (`store.hub.download_option` blocks) under a semaphore of
`max_concurrent_downloads`. Jobs live in this service's memory; the same option asked for twice while it
downloads is the same job, a paused one is resumed, and an installed one answers `already_downloaded`.
After a download the models catalog is rescanned so `/api/v1/models`, `lms ls` and JIT see it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from openlms.core.errors import (
    DownloadError,
    DownloadJobNotFoundError,
    HubError,
    InvalidRequestError,
    ModelNotFoundError,
    OpenLMSError,
)
from openlms.services.download_choice import (
    Choice,
    SearchKind,
    SearchResult,
    by_file,
    choices,
    curated_matches,
    curated_picks,
    curated_result,
    gguf_options,
    is_exact,
    pick,
)
from openlms.services.download_jobs import DownloadJob
from openlms.services.load_limits import runtime_offloads
from openlms.services.models import ModelService
from openlms.store.curated import CuratedModel, curated_models, find_curated, install_virtual_model
from openlms.store.hub import (
    DownloadCancelled,
    DownloadOption,
    DownloadProgress,
    HubClient,
    RepoListing,
    download_option,
    installed_path,
    parse_model_ref,
)
from openlms.store.memory import gpu_memory_bytes

log = logging.getLogger("openlms.downloads")

MAX_SEARCH_LIMIT = 25
PAUSE_WAIT_S = 15.0  # a download notices a pause between chunks (a stalled link: within 10 s)


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a `model` string names: a repo's listing and the option to download."""

    option: DownloadOption
    curated: CuratedModel | None


class Downloader(Protocol):
    """`store.hub.download_option`'s signature (tests give a scripted one)."""

    def __call__(
        self,
        client: HubClient,
        option: DownloadOption,
        models_dir: Path,
        *,
        on_progress: Callable[[DownloadProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Path: ...


class DownloadService:
    def __init__(
        self, models: ModelService, hub: HubClient | None = None, *, downloader: Downloader = download_option
    ) -> None:
        self.models = models
        self.settings = models.settings
        self._hub = hub
        self._download = downloader
        self._jobs: dict[str, DownloadJob] = {}
        self._by_option: dict[str, DownloadJob] = {}
        self._task_of: dict[str, asyncio.Task[None]] = {}  # job id -> its running download
        self._semaphore: asyncio.Semaphore | None = None
        self._start_lock = asyncio.Lock()
        self._curated_of: dict[str, CuratedModel] = {}  # option identifier -> the curated entry offering it
        self._vram_bytes: int | None = None
        self._vram_asked = False

    @property
    def hub(self) -> HubClient:
        if self._hub is None:
            self._hub = HubClient(self.settings.hub_endpoint, retries=self.settings.download_retries)
        return self._hub

    @property
    def models_dir(self) -> Path:
        return self.settings.resolved_models_dir

    # -- search ---------------------------------------------------------------------------------------

    async def search(
        self,
        term: str | None,
        *,
        limit: int = 10,
        formats: Collection[str] = ("gguf",),
        show_all: bool = False,
    ) -> list[SearchResult]:
        """Curated entries matching `term` first (an exact name is `exact`), then the Hub's repos. No
        term: the curated entries (staff picks) that fit this machine's memory, all with `show_all`."""
        limit = max(1, min(limit, MAX_SEARCH_LIMIT))
        text = (term or "").strip()
        if not text:
            return curated_picks(show_all=show_all)[:limit]
        curated = curated_matches(text)
        try:
            hits = await asyncio.to_thread(self.hub.search, text, limit=limit, formats=tuple(formats))
        except HubError:
            if not curated:
                raise
            log.warning("Hub search for %r failed; answering with the curated catalog only", text)
            hits = []
        known = {s for entry in curated for s in (f"{x.user}/{x.repo}".lower() for x in entry.sources)}
        results = [curated_result(entry, exact=is_exact(entry, text)) for entry in curated]
        results += [
            SearchResult(
                name=hit.repo_id,
                kind="hf",
                identifier=hit.repo_id,
                exact=hit.repo_id.lower() == text.lower(),
                downloads=hit.downloads,
                likes=hit.likes,
                gated=hit.gated,
                formats=hit.formats,
            )
            for hit in hits
            if hit.repo_id.lower() not in known
        ]
        return results[:limit]

    # -- options --------------------------------------------------------------------------------------

    async def options(self, kind: SearchKind, identifier: str) -> list[Choice]:
        """The download options of a search result (a curated entry or a Hub repo)."""
        if kind == "catalog":
            entry = find_curated(identifier)
            if entry is None:
                raise ModelNotFoundError(identifier, reason=f"No curated model named '{identifier}'.")
            listing = await self._curated_listing(entry)
            self._curated_of.update({o.identifier: entry for o in listing.options})
        else:
            listing = await self._listing(identifier, None)
        return choices(gguf_options(listing), vram_bytes=await self._vram())

    async def _vram(self) -> int | None:
        """The GPU memory download options are marked against: asked once, and only when this runtime
        offloads to a GPU (a CPU build on a GPU machine runs everything in RAM)."""
        if not self._vram_asked:
            self._vram_asked = True
            if runtime_offloads(self.models.runtime_name):
                self._vram_bytes = await asyncio.to_thread(gpu_memory_bytes)
        return self._vram_bytes

    async def _listing(self, repo_id: str, revision: str | None) -> RepoListing:
        return await asyncio.to_thread(self.hub.listing, repo_id, revision)

    async def _curated_listing(self, entry: CuratedModel) -> RepoListing:
        if not entry.sources:
            raise ModelNotFoundError(entry.name, reason=f"The curated model '{entry.name}' has no source.")
        error: OpenLMSError | None = None
        for source in entry.sources:  # preferred first; the next when one is gone
            try:
                return await self._listing(f"{source.user}/{source.repo}", None)
            except ModelNotFoundError as exc:
                error = exc
        assert error is not None
        raise error

    # -- resolving what to download -------------------------------------------------------------------

    async def resolve(self, model: str, quantization: str | None = None) -> Resolved:
        """`model`: a curated name or id, `user/repo`, a Hugging Face URL (repo, /blob/ or /resolve/
        file), or a download identifier (`user/repo/file.gguf`); `@quant` allowed on any of them."""
        text = model.strip()
        if not text:
            raise InvalidRequestError("'model' must name a model: a curated name, user/repo or a URL.")
        base, _, at_quant = text.partition("@")
        entry = find_curated(base.strip())
        quant = quantization or at_quant.strip() or None
        if entry is not None:
            return Resolved(
                pick(gguf_options(await self._curated_listing(entry)), quant, vram_bytes=await self._vram()),
                entry,
            )
        if text.lower().endswith(".gguf") and text.count("/") >= 2 and "://" not in text:
            return Resolved(await self.resolve_identifier(text), None)  # user/repo/<file>.gguf
        ref = parse_model_ref(text, endpoint=self.hub.endpoint)
        quant = quantization or ref.quantization
        if ref.repo_id is None:
            entry = find_curated(ref.term or text)
            if entry is None:
                raise ModelNotFoundError(
                    text,
                    available=[e.name for e in curated_models()],
                    reason=f"'{text}' is neither a curated model nor a Hugging Face repo (user/repo or "
                    "a https://huggingface.co/... URL). Search for it first (`lms get <term>`).",
                )
            return Resolved(
                pick(gguf_options(await self._curated_listing(entry)), quant, vram_bytes=await self._vram()),
                entry,
            )
        options = gguf_options(await self._listing(ref.repo_id, None))
        if ref.file is not None:
            return Resolved(by_file(options, ref.file, ref.repo_id), None)
        return Resolved(pick(options, quant, vram_bytes=await self._vram()), None)

    async def resolve_identifier(self, identifier: str) -> DownloadOption:
        """A download identifier (`user/repo/<file>`, the SDK's `downloadIdentifier`) → its option."""
        parts = identifier.strip().split("/", 2)
        ref = parse_model_ref(f"{parts[0]}/{parts[1]}") if len(parts) == 3 and all(parts) else None
        if ref is None or ref.repo_id is None:
            raise InvalidRequestError(
                f"'{identifier}' is not a download identifier (user/repo/file.gguf from "
                "getModelDownloadOptions).",
                param="downloadIdentifier",
            )
        return by_file(gguf_options(await self._listing(ref.repo_id, None)), parts[2], ref.repo_id)

    # -- jobs -----------------------------------------------------------------------------------------

    async def start(self, model: str, quantization: str | None = None) -> DownloadJob:
        """Resolve `model` (errors raise here, before a job exists), then download it in the background."""
        resolved = await self.resolve(model, quantization)
        return await self.start_option(resolved.option, model=model, curated=resolved.curated)

    async def start_option(
        self, option: DownloadOption, *, model: str | None = None, curated: CuratedModel | None = None
    ) -> DownloadJob:
        async with self._start_lock:  # two requests at once for one option: one job
            return await self._start_locked(option, model, curated)

    async def _start_locked(
        self, option: DownloadOption, model: str | None, curated: CuratedModel | None
    ) -> DownloadJob:
        curated = curated or self._curated_of.get(option.identifier)  # chosen from a catalog result
        job = self._by_option.get(option.identifier)
        if job is not None and job.active and job.cancel.is_set():
            await job.done.wait()  # still pausing (a Ctrl+C just before): let it stop, then resume it
        if job is not None and job.active:
            return job  # the same download, asked for again
        installed = await asyncio.to_thread(installed_path, option, self.models_dir)
        if installed is not None:  # a paused/failed job finished elsewhere (another process) ends here
            if job is None or job.status not in ("paused", "failed"):
                job = self._new_job(option, model, curated)
            job.model_key = await self._model_key(installed, curated)
            job.finish("already_downloaded")
            return job
        if job is not None and job.status in ("paused", "failed"):
            job.restart()  # the partial data is resumed
        else:
            job = self._new_job(option, model, curated)
        self._spawn(job)
        return job

    def job(self, job_id: str) -> DownloadJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise DownloadJobNotFoundError(
                f"No download job '{job_id}'. Jobs are kept until the server stops; start the download "
                "again with POST /api/v1/models/download."
            )
        return job

    async def pause(self, job_id: str, *, wait_s: float = PAUSE_WAIT_S) -> DownloadJob:
        """Stop a running download; its partial data stays and `resume` (or the same download) goes on.
        Waits (a moment at most) until the download thread has stopped writing."""
        job = self.request_pause(job_id)
        if not job.active:
            return job
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await job.done.wait()
        return job

    def request_pause(self, job_id: str) -> DownloadJob:
        """Ask a running download to stop (without waiting): the job turns `paused` soon after."""
        job = self.job(job_id)
        if job.active:
            job.cancel.set()
            task = self._task_of.get(job.job_id)
            if task is not None and not job.started:
                task.cancel()  # still queued behind max_concurrent_downloads
        return job

    async def resume(self, job_id: str) -> DownloadJob:
        job = self.job(job_id)
        if job.status in ("paused", "failed"):
            return await self.start_option(job.option, model=job.model, curated=None)
        return job

    def jobs(self) -> list[DownloadJob]:
        return list(self._jobs.values())

    async def close(self) -> None:
        """Server shutdown: cancel running downloads (their partial data stays) and wait for them."""
        for job in self._jobs.values():
            job.cancel.set()
        tasks = list(self._task_of.values())
        for task in tasks:
            if not self._jobs[_job_id(task)].started:
                task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _new_job(
        self, option: DownloadOption, model: str | None, curated: CuratedModel | None
    ) -> DownloadJob:
        job = DownloadJob(option=option, model=model or option.identifier)
        job.curated = curated.model if curated else None
        self._jobs[job.job_id] = job
        self._by_option[option.identifier] = job
        return job

    def _spawn(self, job: DownloadJob) -> None:
        task = asyncio.create_task(self._run(job), name=job.job_id)
        self._task_of[job.job_id] = task
        task.add_done_callback(lambda done: self._task_of.pop(_job_id(done), None))

    def _limit(self) -> asyncio.Semaphore:
        if self._semaphore is None:  # made on the event loop that runs the downloads
            self._semaphore = asyncio.Semaphore(max(1, self.settings.max_concurrent_downloads))
        return self._semaphore

    async def _run(self, job: DownloadJob) -> None:
        try:
            async with self._limit():
                if job.cancel.is_set():
                    raise DownloadCancelled()
                job.started = True
                path = await asyncio.to_thread(
                    self._download,
                    self.hub,
                    job.option,
                    self.models_dir,
                    on_progress=job.on_progress,
                    cancel=job.cancel,
                )
            await self._installed(job, path)
            job.finish("completed")
        except (DownloadCancelled, asyncio.CancelledError):  # paused (asyncio: while still queued)
            job.finish("paused")
        except OpenLMSError as exc:
            log.warning("Download of %s failed: %s", job.identifier, exc.message)
            job.finish("failed", error=exc)
        except Exception as exc:  # an unexpected failure still ends the job with a message
            log.exception("Download of %s failed", job.identifier)
            job.finish("failed", error=DownloadError(f"Downloading {job.identifier} failed: {exc}"))

    async def _installed(self, job: DownloadJob, path: Path) -> None:
        job.model_key = await self._model_key(path, find_curated(job.curated) if job.curated else None)

    async def _model_key(self, path: Path, curated: CuratedModel | None) -> str | None:
        """The key to load: a curated entry's virtual model (its model.yaml installed now) when the
        catalog resolves it to the files, else the downloaded file's own key."""
        if curated is not None:
            await asyncio.to_thread(install_virtual_model, curated, self.settings.home)
        await self.models.downloaded()  # rescan: the new files are listed at once
        catalog = self.models.catalog
        virtual = catalog.find(curated.model, refresh=False) if curated is not None else None
        if virtual is not None and virtual.virtual:
            return virtual.key
        descriptor = catalog.find(str(path), refresh=False)
        return descriptor.key if descriptor else None


def _job_id(task: asyncio.Task[None]) -> str:
    return task.get_name()
