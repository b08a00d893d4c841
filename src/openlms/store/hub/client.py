"""`HubClient`: search and repo listings over `huggingface_hub.HfApi`, with retries and domain errors."""

from __future__ import annotations

import os
from collections.abc import Collection

from openlms.store.hub.types import RepoListing, SearchHit

DEFAULT_ENDPOINT = "https://huggingface.co"


class HubClient:
    """The Hub at `endpoint` (None: HF_ENDPOINT, else huggingface.co) with `token` (None: HF_TOKEN or
    huggingface_hub's saved token)."""

    def __init__(self, endpoint: str | None = None, token: str | None = None, *, retries: int = 5) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.token = token
        self.retries = retries

    def search(self, term: str, *, limit: int = 10, formats: Collection[str] = ("gguf",)) -> list[SearchHit]:
        raise NotImplementedError

    def listing(self, repo_id: str, revision: str | None = None) -> RepoListing:
        raise NotImplementedError
