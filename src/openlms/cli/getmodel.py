"""What `lms get` reads from the server's `repository` namespace, and the pure choices it makes.

The server answers `searchModels` with results and `getModelDownloadOptions` with one option per
quantization (research/sdk-protocol.md); this module turns them into typed values, splits what the
user typed (`name@q4_k_m`, `user/repo`, Hugging Face URLs) and picks the option to download.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_HUB_HOSTS = ("huggingface.co", "www.huggingface.co", "hf.co")
_FILE_MARKERS = ("blob", "resolve")
_SPLIT_PART = re.compile(r"-\d{5}-of-\d{5}(?=\.gguf$)", re.IGNORECASE)
FITS = {
    "fullGPUOffload": "fits",
    "partialGPUOffload": "fits",
    "fitWithoutGPU": "fits",
    "willNotFit": "may not fit",
}


@dataclass(frozen=True, slots=True)
class Wanted:
    """What the user typed, split: the text to search or the repo, and a quantization or file if given."""

    text: str
    repo_id: str | None  # "user/repo" when a repo or a Hugging Face URL was given
    quantization: str | None  # upper case
    file: str | None  # a file named by a /blob/ or /resolve/ URL


@dataclass(frozen=True, slots=True)
class SearchResult:
    name: str
    identifier: Mapping[str, Any]  # {"type": "catalog"|"hf", "identifier": ...}, sent back as it came
    exact: bool
    staff_pick: bool
    downloads: int | None
    likes: int | None

    @property
    def source(self) -> str:
        return "Hugging Face" if self.identifier.get("type") == "hf" else "openlms catalog"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchResult | None:
        identifier = data.get("identifier")
        if not isinstance(identifier, Mapping) or not isinstance(identifier.get("identifier"), str):
            return None
        name = data.get("name")
        return cls(
            name=name if isinstance(name, str) and name else str(identifier["identifier"]),
            identifier=dict(identifier),
            exact=data.get("exact") is True,
            staff_pick=data.get("staffPick") is True,
            downloads=_int(data.get("downloads")),
            likes=_int(data.get("likes")),
        )


@dataclass(frozen=True, slots=True)
class DownloadChoice:
    name: str
    size_bytes: int
    fit: str | None  # fullGPUOffload | partialGPUOffload | fitWithoutGPU | willNotFit
    download_identifier: str
    quantization: str | None
    recommended: bool

    @property
    def fit_mark(self) -> str:
        return FITS.get(self.fit or "", "")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DownloadChoice | None:
        identifier = data.get("downloadIdentifier")
        if not isinstance(identifier, str) or not identifier:
            return None
        name, quant, fit = data.get("name"), data.get("quantization"), data.get("fitEstimation")
        return cls(
            name=name if isinstance(name, str) and name else identifier.rsplit("/", 1)[-1],
            size_bytes=_int(data.get("sizeBytes")) or 0,
            fit=fit if isinstance(fit, str) else None,
            download_identifier=identifier,
            quantization=quant if isinstance(quant, str) and quant else None,
            recommended=data.get("recommended") is True,
        )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_results(result: Any) -> list[SearchResult]:
    items = result.get("results") if isinstance(result, Mapping) else None
    parsed = (
        [SearchResult.from_json(i) for i in items if isinstance(i, Mapping)]
        if isinstance(items, list)
        else []
    )
    return [r for r in parsed if r is not None]


def parse_choices(result: Any) -> list[DownloadChoice]:
    items = result.get("results") if isinstance(result, Mapping) else None
    parsed = (
        [DownloadChoice.from_json(i) for i in items if isinstance(i, Mapping)]
        if isinstance(items, list)
        else []
    )
    return [c for c in parsed if c is not None]


# -- what the user typed -----------------------------------------------------------------------------


def parse_wanted(text: str) -> Wanted:
    """`llama-3.1-8b@q4_k_m`, `user/repo`, `user/repo@Q8_0`, `hf.co/user/repo:Q4_K_M`,
    `https://huggingface.co/user/repo[/blob/main/file.gguf]`."""
    text = text.strip()
    base, quant = _split_quant(text)
    path = _hub_path(base)
    if path is None:
        return Wanted(base, None, quant, None)
    parts = [p for p in path.split("/") if p]
    repo_id = "/".join(parts[:2]) if len(parts) >= 2 else None
    file = None
    if len(parts) >= 5 and parts[2] in _FILE_MARKERS:
        file = parts[-1]
    return Wanted(base, repo_id, quant, file)


def _split_quant(text: str) -> tuple[str, str | None]:
    """The quantization after the last `@` (or `:` in the last path segment), upper-cased."""
    head, sep, tail = text.rpartition("@")
    if sep and head and tail and "/" not in tail:
        return head, tail.upper()
    last = text.rsplit("/", 1)[-1]
    segment, sep, tail = last.rpartition(":")
    if "/" in text and sep and segment and tail:
        return text[: -len(tail) - 1], tail.upper()
    return text, None


def _hub_path(text: str) -> str | None:
    """The path of a Hugging Face URL (`user/repo/...`; any http(s) host, so a mirror's URLs work too),
    `text` itself for a bare `user/repo`, else None."""
    lowered = text.lower()
    for scheme in ("https://", "http://"):
        if lowered.startswith(scheme):
            return text[len(scheme) :].partition("/")[2]
    for host in _HUB_HOSTS:
        if lowered.startswith(host + "/"):
            return text[len(host) + 1 :]
    if text.count("/") == 1 and all(text.split("/")) and " " not in text:
        return text
    return None


# -- choosing ----------------------------------------------------------------------------------------


def exact_result(results: Sequence[SearchResult]) -> SearchResult | None:
    return next((r for r in results if r.exact), None)


def match_choice(choices: Sequence[DownloadChoice], wanted: Wanted) -> DownloadChoice | None:
    """The option for the quantization or file the user named (case-insensitive); None if absent."""
    if wanted.file is not None:
        stem = _SPLIT_PART.sub("", wanted.file).casefold()
        for choice in choices:
            base = choice.name.rsplit("/", 1)[-1]
            if base.casefold() == wanted.file.casefold() or _SPLIT_PART.sub("", base).casefold() == stem:
                return choice
    if wanted.quantization is not None:
        quant = wanted.quantization.casefold()
        for choice in choices:
            if (choice.quantization or "").casefold() == quant:
                return choice
    return None


def recommended(choices: Sequence[DownloadChoice]) -> DownloadChoice:
    return next((c for c in choices if c.recommended), choices[0])


def available_quants(choices: Sequence[DownloadChoice]) -> str:
    return ", ".join(c.quantization or c.name for c in choices)
