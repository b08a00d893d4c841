"""Download jobs: one per model (a Hub repo's quantization) being fetched, kept in memory by
`DownloadService`. A job's counters are written by its download thread and read by the event loop
(plain attribute writes; a reader sees a consistent-enough snapshot for a progress report)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from openlms.core.errors import OpenLMSError
from openlms.store.hub import DownloadOption, DownloadProgress

JobStatus = Literal["downloading", "paused", "completed", "failed", "already_downloaded"]
ACTIVE: frozenset[JobStatus] = frozenset({"downloading"})
SPEED_HALF_LIFE_S = 2.0  # the reported bytes/s forgets half of its history every 2 s


@dataclass
class SpeedMeter:
    """Smoothed bytes/s: an exponential moving average over time, not over updates, so a burst of
    callbacks weighs no more than a slow one."""

    rate: float = 0.0
    _last_bytes: int | None = None
    _last_time: float = 0.0

    def update(self, downloaded: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if self._last_bytes is None or downloaded < self._last_bytes:
            self._last_bytes, self._last_time = downloaded, now
            return self.rate
        elapsed = now - self._last_time
        if elapsed < 0.05:  # too short to measure; wait for more bytes
            return self.rate
        instant = (downloaded - self._last_bytes) / elapsed
        weight = 1.0 - 0.5 ** (elapsed / SPEED_HALF_LIFE_S)
        self.rate = instant if self.rate == 0.0 else self.rate + weight * (instant - self.rate)
        self._last_bytes, self._last_time = downloaded, now
        return self.rate

    def reset(self) -> None:
        self.rate, self._last_bytes = 0.0, None


@dataclass
class DownloadJob:
    """One download, as LM Studio 0.4's job object plus openlms's `model_key`, `error`, `model`,
    `quantization` and `files`."""

    option: DownloadOption
    model: str  # what the user asked for
    status: JobStatus = "downloading"
    job_id: str = field(default_factory=lambda: f"job_{uuid.uuid4().hex[:12]}")
    downloaded_bytes: int = 0
    bytes_per_second: float = 0.0
    finalizing: bool = False
    started: bool = False  # past the max_concurrent_downloads queue, its thread is downloading
    started_at: float = field(default_factory=time.time)
    completed_at: float | None = None
    model_key: str | None = None
    error: OpenLMSError | None = None
    curated: str | None = None  # the curated entry's `model` when the download came from one
    cancel: threading.Event = field(default_factory=threading.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # set when it leaves `downloading`
    meter: SpeedMeter = field(default_factory=SpeedMeter)

    @property
    def total_size_bytes(self) -> int:
        return self.option.size_bytes

    @property
    def identifier(self) -> str:
        return self.option.identifier

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def on_progress(self, progress: DownloadProgress) -> None:
        """Called from the download thread."""
        self.downloaded_bytes = progress.downloaded_bytes
        self.finalizing = progress.finalizing
        self.bytes_per_second = self.meter.update(progress.downloaded_bytes)

    def restart(self) -> None:
        """Back to `downloading` (a resume or a retry): a fresh cancel flag, speed and done event."""
        self.status, self.error, self.finalizing, self.started = "downloading", None, False, False
        self.cancel = threading.Event()
        self.done = asyncio.Event()
        self.meter.reset()
        self.bytes_per_second = 0.0

    def finish(self, status: JobStatus, *, error: OpenLMSError | None = None) -> None:
        self.status, self.error = status, error
        self.bytes_per_second = 0.0
        if status in ("completed", "already_downloaded"):
            self.completed_at = time.time()
            self.downloaded_bytes = self.total_size_bytes
        self.done.set()

    def estimated_completion(self) -> float | None:
        if self.status != "downloading" or self.bytes_per_second <= 0:
            return None
        left = max(0, self.total_size_bytes - self.downloaded_bytes)
        return time.time() + left / self.bytes_per_second

    def to_json(self) -> dict[str, Any]:
        """LM Studio 0.4's fields (`GET /api/v1/models/download/status/{job_id}`) and openlms's extras."""
        out: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status,
            "total_size_bytes": self.total_size_bytes,
            "downloaded_bytes": self.downloaded_bytes,
            "bytes_per_second": round(self.bytes_per_second, 1),
            "estimated_completion": iso(self.estimated_completion()),
            "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at),
            "model": self.model,
            "download_identifier": self.identifier,
            "quantization": self.option.quantization,
            "files": [{"path": f.path, "size_bytes": f.size} for f in self.option.files],
            "model_key": self.model_key,
        }
        if self.status == "downloading" and self.finalizing:
            out["finalizing"] = True
        if self.error is not None:
            out["error"] = {"message": self.error.message, "code": self.error.code}
        return out


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
