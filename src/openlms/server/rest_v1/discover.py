"""openlms: searching for models and a model's download options over HTTP (what the app's Discover page
and any script use; the SDK has the same through its `repository` namespace). `lms get`'s service
answers both: `GET /api/v1/models/search?q=&limit=` and `GET /api/v1/models/download/options?model=`.
Downloads themselves are `downloads.py`'s `POST /api/v1/models/download`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from openlms.server import openapi as doc
from openlms.server.state import State
from openlms.services import discover
from openlms.services.downloads import MAX_SEARCH_LIMIT

router = APIRouter(prefix="/api/v1/models")


class SearchEntry(BaseModel):
    name: str
    kind: Literal["catalog", "hf"] = Field(description="a curated model or a Hugging Face repo")
    identifier: str = Field(description="what `model` of the options and download requests takes")
    exact: bool
    staff_pick: bool
    description: str | None
    downloads: int | None
    likes: int | None
    gated: bool
    formats: list[str]
    params: str | None = Field(description="a curated model's parameter count (`8B`)")
    min_memory_bytes: int | None = Field(description="a curated model's memory need, roughly")
    downloaded: bool = Field(description="a model file of this repo is in the models folder")


class SearchResults(BaseModel):
    results: list[SearchEntry]


class OptionEntry(BaseModel):
    name: str
    quantization: str | None
    size_bytes: int
    fit: Literal["fullGPUOffload", "partialGPUOffload", "fitWithoutGPU", "willNotFit"]
    recommended: bool
    download_identifier: str = Field(description="`model` of POST /api/v1/models/download for this one")
    files: list[dict[str, Any]]
    downloaded: bool


class DownloadOptions(BaseModel):
    model: str
    kind: Literal["catalog", "hf"]
    identifier: str
    options: list[OptionEntry]


_UPSTREAM: dict[int | str, dict[str, Any]] = {
    502: {"model": doc.ErrorResponse, "description": "The model hub could not be reached or refused"},
}


@router.get("/search", response_model=None, responses=doc.responses(doc.ok(SearchResults), 400) | _UPSTREAM)
async def search(
    state: State,
    q: Annotated[str, Query(max_length=200, description="Search term; empty: the staff picks")] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_LIMIT)] = 10,
    all: Annotated[
        bool, Query(description="Without a term: every staff pick, not only those that fit")
    ] = False,
) -> dict[str, Any]:
    found = await discover.search(state.downloads, q, limit=limit, show_all=all)
    return {"results": [_search_entry(f) for f in found]}


@router.get(
    "/download/options",
    response_model=None,
    responses=doc.responses(doc.ok(DownloadOptions), 400, 404) | _UPSTREAM,
)
async def download_options(
    state: State,
    model: Annotated[str, Query(min_length=1, max_length=2048, description="Curated name, user/repo or URL")],
) -> dict[str, Any]:
    found = await discover.options(state.downloads, model)
    return {
        "model": model,
        "kind": found.kind,
        "identifier": found.identifier,
        "options": [_option_entry(o) for o in found.offered],
    }


def _search_entry(found: discover.Found) -> dict[str, Any]:
    result, entry = found.result, found.curated
    return {
        "name": result.name,
        "kind": result.kind,
        "identifier": result.identifier,
        "exact": result.exact,
        "staff_pick": result.staff_pick,
        "description": result.description or None,
        "downloads": result.downloads,
        "likes": result.likes,
        "gated": result.gated,
        "formats": sorted(result.formats),
        "params": entry.params if entry else None,
        "min_memory_bytes": entry.min_memory_bytes if entry else None,
        "downloaded": found.downloaded,
    }


def _option_entry(offered: discover.Offered) -> dict[str, Any]:
    choice = offered.choice
    option = choice.option
    return {
        "name": option.name,
        "quantization": option.quantization,
        "size_bytes": option.size_bytes,
        "fit": choice.fit,
        "recommended": choice.recommended,
        "download_identifier": option.identifier,
        "files": [{"path": f.path, "size_bytes": f.size} for f in option.files],
        "downloaded": offered.downloaded,
    }
