"""The Hub's vocabulary: files, search hits, download options, listings, what a user typed, progress."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HubFile:
    """One file of a repository: its path in the repo, its size and its LFS sha256 (None if not LFS)."""

    path: str
    size: int
    sha256: str | None


@dataclass(frozen=True, slots=True)
class SearchHit:
    repo_id: str
    downloads: int
    likes: int
    formats: frozenset[str]
    gated: bool


@dataclass(frozen=True, slots=True)
class DownloadOption:
    """One quantization of a repo = one model: all split parts in order, then the mmproj if any."""

    repo_id: str
    revision: str
    name: str
    quantization: str | None
    files: tuple[HubFile, ...]

    @property
    def size_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def identifier(self) -> str:
        return f"{self.repo_id}/{self.name}"


@dataclass(frozen=True, slots=True)
class RepoListing:
    repo_id: str
    revision: str
    gated: bool
    formats: frozenset[str]
    options: tuple[DownloadOption, ...]


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What a user typed: a repo (maybe with a file or quantization) or a search term."""

    text: str
    repo_id: str | None
    term: str | None
    quantization: str | None
    file: str | None


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    downloaded_bytes: int
    total_bytes: int
    bytes_per_second: float
    finalizing: bool = False


class DownloadCancelled(Exception):
    """The caller asked the download to stop (pause, Ctrl+C); partial data is kept for a resume."""
