"""The SDK's `repository` namespace: rpc `searchModels`, rpc `getModelDownloadOptions`, channel
`downloadModel` (research/sdk-protocol.md). All of it is `services.downloads.DownloadService`.

The channel sends `downloadProgress` at most every `PROGRESS_INTERVAL_S` (and at least every
`HEARTBEAT_S`, so the SDK's receive timeout never fires on a slow link), `startFinalizing` once the bytes
are in, then `success` with the model key to load. A client that closes the channel or its socket pauses
the download (the partial data stays; the same download later resumes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from openlms.core.errors import DownloadError, InvalidRequestError
from openlms.server.sdk.convert import as_object
from openlms.server.sdk.transport import Channel, Client, Namespace
from openlms.services.download_choice import Choice, SearchResult
from openlms.services.download_jobs import DownloadJob
from openlms.services.downloads import MAX_SEARCH_LIMIT, DownloadService

PROGRESS_INTERVAL_S = 0.25
HEARTBEAT_S = 15.0
_FORMATS: dict[str, str] = {
    "gguf": "gguf",
    "safetensors": "safetensors",
    "mlx_placeholder": "mlx",
    "mlx": "mlx",
}


class RepositoryEndpoints:
    def __init__(self, downloads: DownloadService) -> None:
        self.downloads = downloads

    def namespace(self) -> Namespace:
        return Namespace(
            "repository",
            {"searchModels": self.search_models, "getModelDownloadOptions": self.get_download_options},
            {"downloadModel": self.download_model},
        )

    async def search_models(self, _client: Client, parameter: Any) -> dict[str, Any]:
        opts = as_object(as_object(parameter).get("opts", {}), "opts")
        term = opts.get("searchTerm")
        if term is not None and not isinstance(term, str):
            raise InvalidRequestError("'searchTerm' must be a string.", param="opts.searchTerm")
        limit = opts.get("limit") or 10
        if not isinstance(limit, int) or not 0 < limit <= MAX_SEARCH_LIMIT:
            raise InvalidRequestError(f"'limit' must be 1 to {MAX_SEARCH_LIMIT}.", param="opts.limit")
        results = await self.downloads.search(term, limit=limit, formats=_formats(opts))
        return {"results": [_search_entry(r) for r in results]}

    async def get_download_options(self, _client: Client, parameter: Any) -> dict[str, Any]:
        ident = as_object(
            as_object(parameter).get("modelSearchResultIdentifier"), "modelSearchResultIdentifier"
        )
        kind, identifier = ident.get("type"), ident.get("identifier")
        if kind not in ("catalog", "hf") or not isinstance(identifier, str) or not identifier:
            raise InvalidRequestError(
                "'modelSearchResultIdentifier' must be {type: 'catalog'|'hf', identifier} from searchModels.",
                param="modelSearchResultIdentifier",
            )
        choices = await self.downloads.options("catalog" if kind == "catalog" else "hf", identifier)
        return {"results": [_option_entry(c) for c in choices]}

    async def download_model(self, channel: Channel, parameter: Any) -> None:
        identifier = as_object(parameter, "creationParameter").get("downloadIdentifier")
        if not isinstance(identifier, str) or not identifier:
            raise InvalidRequestError("'downloadIdentifier' must be a string.", param="downloadIdentifier")
        option = await self.downloads.resolve_identifier(identifier)
        job = await self.downloads.start_option(option, model=identifier)
        try:
            await _follow(channel, job)
        finally:
            if job.active:  # the client closed the channel or its socket: pause, keep the partial data
                self.downloads.request_pause(job.job_id)


async def _follow(channel: Channel, job: DownloadJob) -> None:
    sent_bytes, sent_at, finalizing = -1, 0.0, False
    while job.active and not channel.cancelled.is_set():
        now = time.monotonic()
        if job.downloaded_bytes != sent_bytes or now - sent_at >= HEARTBEAT_S:
            sent_bytes, sent_at = job.downloaded_bytes, now
            await channel.send(_progress(job))
        if job.finalizing and not finalizing:
            finalizing = True
            await channel.send({"type": "startFinalizing"})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROGRESS_INTERVAL_S):
                await _either(job.done, channel.cancelled)
    if job.active:
        return  # cancelled by the client: the caller pauses it
    if job.status in ("completed", "already_downloaded"):
        if job.status == "completed":
            await channel.send(_progress(job))
            if not finalizing:
                await channel.send({"type": "startFinalizing"})
        await channel.send({"type": "success", "defaultIdentifier": job.model_key or job.identifier})
        return
    if job.error is not None:
        raise job.error
    raise DownloadError(f"The download of {job.identifier} was paused; download it again to resume.")


async def _either(first: asyncio.Event, second: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _progress(job: DownloadJob) -> dict[str, Any]:
    return {
        "type": "downloadProgress",
        "update": {
            "downloadedBytes": job.downloaded_bytes,
            "totalBytes": job.total_size_bytes,
            "speedBytesPerSecond": round(job.bytes_per_second, 1),
        },
    }


def _formats(opts: Mapping[str, Any]) -> tuple[str, ...]:
    types = opts.get("compatibilityTypes")
    if types is None:
        return ("gguf",)
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise InvalidRequestError(
            "'compatibilityTypes' must be a list of strings.", param="opts.compatibilityTypes"
        )
    names: list[str] = [_FORMATS.get(str(t), str(t)) for t in types]
    return tuple(dict.fromkeys(names)) or ("gguf",)


def _search_entry(result: SearchResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": result.name,
        "identifier": {"type": result.kind, "identifier": result.identifier},
    }
    if result.exact:
        entry["exact"] = True
    if result.staff_pick:
        entry["staffPick"] = True
    # openlms extras (the SDK ignores fields it does not know): what `lms get` shows in its result table
    if result.downloads is not None:
        entry["downloads"] = result.downloads
    if result.likes is not None:
        entry["likes"] = result.likes
    if result.formats:
        entry["formats"] = sorted(result.formats)
    if result.description:
        entry["description"] = result.description
    return entry


def _option_entry(choice: Choice) -> dict[str, Any]:
    option = choice.option
    entry: dict[str, Any] = {
        "name": option.name,
        "sizeBytes": option.size_bytes,
        "fitEstimation": choice.fit,
        "downloadIdentifier": option.identifier,
        "indexedModelIdentifier": option.identifier,
    }
    if option.quantization:
        entry["quantization"] = option.quantization
    if choice.recommended:
        entry["recommended"] = True
    return entry
