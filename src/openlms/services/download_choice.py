"""What a download request resolves to, as pure functions: search results (curated entries first),
download options with their fit on this machine and one recommendation, the option for a quantization or
a file, and the errors for repos openlms cannot run. `DownloadService` (downloads.py) uses them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from openlms.core.errors import InvalidRequestError, UnsupportedFormatError
from openlms.store.curated import CuratedModel, curated_models
from openlms.store.hub import DownloadOption, RepoListing, find_option, recommend
from openlms.store.memory import FitEstimation, fit_estimation, system_memory

SearchKind = Literal["catalog", "hf"]


@dataclass(frozen=True, slots=True)
class SearchResult:
    name: str
    kind: SearchKind  # "catalog": a curated entry (identifier = its model id), "hf": a Hub repo
    identifier: str
    exact: bool = False
    staff_pick: bool = False
    description: str | None = None
    downloads: int | None = None
    likes: int | None = None
    gated: bool = False
    formats: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Choice:
    """One download option as offered to a user: its files, size, fit on this machine, recommended?"""

    option: DownloadOption
    fit: FitEstimation
    recommended: bool


def choices(options: Sequence[DownloadOption], *, vram_bytes: int | None = None) -> list[Choice]:
    """Each option with its fit on this machine (RAM, and the GPU's memory when the runtime offloads to
    one); the recommended one is what fits best (Q4_K_M first)."""
    system = system_memory()
    fits = [fit_estimation(o.size_bytes, system=system, vram_bytes=vram_bytes) for o in options]
    budget = max((o.size_bytes for o, f in zip(options, fits, strict=True) if f != "willNotFit"), default=0)
    best = recommend(options, budget)
    return [Choice(o, f, o == best) for o, f in zip(options, fits, strict=True)]


def pick(
    options: Sequence[DownloadOption], quantization: str | None, *, vram_bytes: int | None = None
) -> DownloadOption:
    """The option for `quantization`, else the recommended one for this machine."""
    if quantization:
        found = find_option(options, quantization)
        if found is None:
            have = ", ".join(o.quantization or o.name for o in options)
            raise InvalidRequestError(
                f"No {quantization.upper()} file in {options[0].repo_id}; it has: {have}.",
                param="quantization",
            )
        return found
    best = next((c.option for c in choices(options, vram_bytes=vram_bytes) if c.recommended), None)
    return best or options[0]


def gguf_options(listing: RepoListing) -> tuple[DownloadOption, ...]:
    if listing.options:
        return listing.options
    if "mlx" in listing.formats:
        name = listing.repo_id.split("/")[-1]
        raise UnsupportedFormatError(
            f"{listing.repo_id} is an MLX model; openlms runs GGUF models on llama.cpp. Look for a GGUF "
            f"version, e.g. `lms get {name} --gguf`.",
            param="model",
        )
    if "gguf" in listing.formats:
        raise InvalidRequestError(
            f"{listing.repo_id} has no complete GGUF model to download (a split set with a part "
            "missing, or only vision projectors); pick another repo.",
            param="model",
        )
    raise UnsupportedFormatError(
        f"{listing.repo_id} has no GGUF files; openlms runs GGUF models on llama.cpp. Look for a GGUF "
        "version of it (repos named ...-GGUF).",
        param="model",
    )


def by_file(options: Sequence[DownloadOption], file: str, repo_id: str) -> DownloadOption:
    """The option holding `file` (its main file or any split part; not the shared vision projector)."""
    wanted = file.strip("/").lower()
    for option in options:
        paths = [option.name] + [f.path for f in option.files if "mmproj" not in f.path.lower()]
        names = {p.lower() for p in paths} | {p.lower().rsplit("/", 1)[-1] for p in paths}
        if wanted in names:
            return option
    have = ", ".join(o.name for o in options)
    raise InvalidRequestError(f"No model file '{file}' in {repo_id}; it has: {have}.", param="model")


def is_exact(entry: CuratedModel, term: str) -> bool:
    text = term.lower()
    return text in (entry.name.lower(), entry.model.lower())


def curated_matches(term: str) -> list[CuratedModel]:
    text = term.lower()
    found = [e for e in curated_models() if text in e.name.lower() or text in e.model.lower()]
    return sorted(found, key=lambda e: not is_exact(e, term))


def curated_picks(*, show_all: bool) -> list[SearchResult]:
    total = system_memory().total_bytes
    return [
        curated_result(entry, staff_pick=True)
        for entry in curated_models()
        if show_all or entry.min_memory_bytes is None or entry.min_memory_bytes <= total
    ]


def curated_result(entry: CuratedModel, *, exact: bool = False, staff_pick: bool = False) -> SearchResult:
    return SearchResult(
        name=entry.model,
        kind="catalog",
        identifier=entry.model,
        exact=exact,
        staff_pick=staff_pick,
        description=entry.description,
        formats=frozenset({"gguf"}),
    )
