"""What the app's Discover page asks for, over the same `DownloadService` that `lms get` and the SDK's
`repository` namespace use: search results marked as already downloaded (or not), and a model's
download options marked the same way. Only the marking is new here; searching, listing, fit estimates
and the recommendation are `DownloadService`'s."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from openlms.core.errors import ModelNotFoundError
from openlms.core.types import ModelDescriptor
from openlms.services.download_choice import Choice, SearchKind, SearchResult
from openlms.services.downloads import DownloadService
from openlms.store.curated import CuratedModel, find_curated
from openlms.store.hub import DownloadOption, installed_path, parse_model_ref


@dataclass(frozen=True, slots=True)
class Found:
    """A search result, with whether a model of its repo (any of a curated entry's repos) is here."""

    result: SearchResult
    downloaded: bool
    curated: CuratedModel | None


@dataclass(frozen=True, slots=True)
class Offered:
    """A download option, with whether every one of its files is already in the models folder."""

    choice: Choice
    downloaded: bool


@dataclass(frozen=True, slots=True)
class Options:
    kind: SearchKind
    identifier: str  # the curated model id, or the repo
    offered: list[Offered]


def downloaded_repos(descriptors: Iterable[ModelDescriptor]) -> frozenset[str]:
    """The `publisher/repo` folders (lower case) holding a downloaded model file."""
    return frozenset(
        "/".join(d.rel_path.split("/")[:2]).lower()
        for d in descriptors
        if not d.virtual and d.rel_path.count("/") >= 2
    )


def mark(results: Sequence[SearchResult], repos: frozenset[str]) -> list[Found]:
    found: list[Found] = []
    for result in results:
        entry = find_curated(result.identifier) if result.kind == "catalog" else None
        names = [f"{s.user}/{s.repo}" for s in entry.sources] if entry is not None else [result.identifier]
        found.append(Found(result, any(n.lower() in repos for n in names), entry))
    return found


def target(model: str, *, endpoint: str | None = None) -> tuple[SearchKind, str]:
    """What `model` names for its download options: a curated entry (name or id) or a Hub repo
    (`user/repo` or a Hugging Face URL)."""
    text = model.strip()
    entry = find_curated(text)
    if entry is not None:
        return "catalog", entry.model
    ref = parse_model_ref(text, endpoint=endpoint)
    if ref.repo_id is None:
        raise ModelNotFoundError(
            text,
            reason=f"'{text}' is neither a curated model nor a Hugging Face repo (user/repo or a "
            "https://huggingface.co/... URL). Search for it first.",
        )
    return "hf", ref.repo_id


async def search(
    downloads: DownloadService, term: str | None, *, limit: int, show_all: bool = False
) -> list[Found]:
    """`lms get`'s search (curated entries first, then the Hub; no term: the staff picks that fit)."""
    results = await downloads.search(term, limit=limit, show_all=show_all)
    repos = downloaded_repos(await downloads.models.downloaded())
    return mark(results, repos)


async def options(downloads: DownloadService, model: str) -> Options:
    kind, identifier = target(model, endpoint=downloads.hub.endpoint)
    choices = await downloads.options(kind, identifier)
    here = await asyncio.to_thread(_installed, [c.option for c in choices], downloads.models_dir)
    return Options(kind, identifier, [Offered(c, ok) for c, ok in zip(choices, here, strict=True)])


def _installed(options: Sequence[DownloadOption], models_dir: Path) -> list[bool]:
    return [installed_path(o, models_dir) is not None for o in options]
