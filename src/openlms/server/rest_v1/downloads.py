"""LM Studio 0.4's download API: `POST /api/v1/models/download` `{model, quantization?}` starts (or finds)
a download job, `GET /api/v1/models/download/status/{job_id}` reports it, `GET .../status` lists every
job by status; openlms adds `POST /api/v1/models/download/{job_id}/pause|resume` (what `lms get` does on
Ctrl+C and again) and `GET /api/v1/models/download/jobs`. Errors found while resolving the model are
HTTP errors; errors during the download end the job as `failed` with its `error`."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from openlms.server import openapi as doc
from openlms.server.state import State

router = APIRouter(prefix="/api/v1/models/download")


class DownloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(
        min_length=1,
        max_length=2048,
        description="A curated model (`llama-3.1-8b`, `meta/llama-3.1-8b`), a Hugging Face repo "
        "(`user/repo`) or URL; `@q4_k_m` picks a quantization",
    )
    quantization: str | None = Field(default=None, min_length=1, max_length=64)


class JobError(BaseModel):
    message: str
    code: str


class DownloadJobResponse(BaseModel):
    """A download job (LM Studio 0.4's fields first, then openlms's)."""

    model_config = ConfigDict(extra="allow")
    job_id: str
    status: Literal["downloading", "paused", "completed", "failed", "already_downloaded"]
    total_size_bytes: int
    downloaded_bytes: int
    bytes_per_second: float
    estimated_completion: str | None = Field(description="ISO 8601, from the smoothed speed")
    started_at: str | None
    completed_at: str | None
    model: str = Field(description="openlms: what was asked for")
    download_identifier: str = Field(description="openlms: user/repo/file of the main file")
    quantization: str | None
    files: list[dict[str, Any]]
    model_key: str | None = Field(description="openlms: the key to load once completed")
    error: JobError | None = None


class DownloadJobList(BaseModel):
    jobs: list[DownloadJobResponse]


class DownloadStatusBoard(BaseModel):
    """LM Studio 0.4's `GET /api/v1/models/download/status`: this server's jobs by status (a model that
    was already downloaded counts as completed)."""

    downloading: list[DownloadJobResponse]
    completed: list[DownloadJobResponse]
    failed: list[DownloadJobResponse]
    paused: list[DownloadJobResponse]


_UPSTREAM: dict[int | str, dict[str, Any]] = {
    502: {"model": doc.ErrorResponse, "description": "The model hub could not be reached or refused"},
    507: {"model": doc.ErrorResponse, "description": "Not enough free disk space for the model"},
}


@router.post("", response_model=None, responses=doc.responses(doc.ok(DownloadJobResponse), 404) | _UPSTREAM)
async def download(body: DownloadRequest, state: State) -> dict[str, Any]:
    job = await state.downloads.start(body.model, body.quantization)
    return job.to_json()


@router.get("/jobs", response_model=None, responses=doc.responses(doc.ok(DownloadJobList)))
async def list_jobs(state: State) -> dict[str, Any]:
    return {"jobs": [job.to_json() for job in state.downloads.jobs()]}


@router.get("/status", response_model=None, responses=doc.responses(doc.ok(DownloadStatusBoard)))
async def status_board(state: State) -> dict[str, Any]:
    board: dict[str, list[dict[str, Any]]] = {"downloading": [], "completed": [], "failed": [], "paused": []}
    for job in state.downloads.jobs():
        entry = job.to_json()
        board["completed" if entry["status"] == "already_downloaded" else entry["status"]].append(entry)
    return board


@router.get(
    "/status/{job_id}", response_model=None, responses=doc.responses(doc.ok(DownloadJobResponse), 404)
)
async def status(job_id: str, state: State) -> dict[str, Any]:
    return state.downloads.job(job_id).to_json()


@router.post(
    "/{job_id}/pause", response_model=None, responses=doc.responses(doc.ok(DownloadJobResponse), 404)
)
async def pause(job_id: str, state: State) -> dict[str, Any]:
    """Stop a running download (partial data is kept); the job turns `paused` within a moment."""
    return (await state.downloads.pause(job_id)).to_json()


@router.post(
    "/{job_id}/resume",
    response_model=None,
    responses=doc.responses(doc.ok(DownloadJobResponse), 404) | _UPSTREAM,
)
async def resume(job_id: str, state: State) -> dict[str, Any]:
    """Go on with a paused or failed download from where it stopped."""
    return (await state.downloads.resume(job_id)).to_json()
