"""A stub Hub (listings and search hits in memory) and a scripted download that writes a real tiny GGUF
in steps, for DownloadService and route tests that do not need FakeHub's HTTP."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from openlms.core.errors import HubError, ModelNotFoundError
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


def stub_hub() -> StubHub:
    """acme/Tiny-GGUF (Q2_K, Q4_K_M, Q8_0), the curated SmolLM2 entry's first source (Q8_0), an MLX-only
    repo, and two search hits."""
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
