"""`HubClient`: search and repo listings over `huggingface_hub.HfApi`, with retries and domain errors."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Collection, Iterable
from functools import partial
from typing import Final, TypeVar
from urllib.parse import urlsplit

from huggingface_hub import HfApi
from huggingface_hub.hf_api import ModelInfo

from openlms.core.errors import HubError
from openlms.store.hub.errors import hub_error, with_retries
from openlms.store.hub.quants import build_options
from openlms.store.hub.types import HubFile, RepoListing, SearchHit

T = TypeVar("T")

DEFAULT_ENDPOINT: Final = "https://huggingface.co"
KNOWN_FORMATS: Final = ("gguf", "mlx", "safetensors")
_PROXY_VARIABLES: Final = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
_PROBE_TIMEOUT_S: Final = 5.0
_UNREACHABLE_ERRNOS: Final = frozenset({errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH})
_SEARCH_EXPAND: Final = ["downloads", "likes", "tags", "gated", "library_name"]


class HubClient:
    """The Hub at `endpoint` (None: HF_ENDPOINT, else huggingface.co) with `token` (None: HF_TOKEN or
    huggingface_hub's saved token). Transient failures are retried `retries` times with exponential
    backoff from `backoff_s` (Retry-After honoured). A download whose connection sends nothing for
    `read_timeout_s` reconnects (and so notices a pause within that time)."""

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        *,
        retries: int = 5,
        backoff_s: float = 1.0,
        read_timeout_s: float = 10.0,
    ) -> None:
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.token = token
        self.retries = retries
        self.backoff_s = backoff_s
        self.read_timeout_s = read_timeout_s
        self._api = HfApi(endpoint=self.endpoint, token=token)

    def search(self, term: str, *, limit: int = 10, formats: Collection[str] = ("gguf",)) -> list[SearchHit]:
        """Repos whose id contains `term` with one of `formats`, most downloaded first."""
        hits: dict[str, SearchHit] = {}
        for fmt in formats:
            # list_models pages through huggingface_hub's own http_backoff (429/5xx/network retried)
            for info in self._call(partial(self._list, term, limit, fmt), retries=0):
                hits.setdefault(info.id, _hit(info))
        ranked = sorted(hits.values(), key=lambda h: (-h.downloads, h.repo_id))
        return ranked[:limit]

    def listing(self, repo_id: str, revision: str | None = None) -> RepoListing:
        """The repo's files with sizes and LFS sha256, as GGUF download options (smallest first)."""
        info = self._call(
            lambda: self._api.model_info(repo_id, revision=revision, files_metadata=True), repo_id=repo_id
        )
        commit = info.sha or revision or "main"
        files = [_hub_file(s.rfilename, s.size, s.lfs) for s in info.siblings or ()]
        return RepoListing(
            repo_id=info.id or repo_id,
            revision=commit,
            gated=bool(info.gated),
            formats=_formats(info),
            options=build_options(info.id or repo_id, commit, files),
        )

    def _list(self, term: str, limit: int, fmt: str) -> list[ModelInfo]:
        models = self._api.list_models(
            search=term or None,
            filter=fmt,
            limit=limit,
            sort="downloads",
            expand=_SEARCH_EXPAND,  # type: ignore[arg-type]
        )
        return list(models)

    def _call(self, fn: Callable[[], T], *, repo_id: str | None = None, retries: int | None = None) -> T:
        self._check_resolvable()
        return with_retries(
            fn,
            retries=self.retries if retries is None else retries,
            base_s=self.backoff_s,
            on_error=lambda exc: hub_error(exc, endpoint=self.endpoint, repo_id=repo_id),
        )

    def _check_resolvable(self) -> None:
        """A host name that does not resolve (offline, a typo in HF_ENDPOINT) fails at once: retrying it
        with backoff, as huggingface_hub does for any connection error, only makes an offline user wait."""
        if any(os.environ.get(name) for name in _PROXY_VARIABLES):
            return  # the proxy resolves names: this machine may not
        host = urlsplit(self.endpoint).hostname
        if not host:
            raise HubError(
                f"The hub address '{self.endpoint}' has no host name: fix HF_ENDPOINT (`hub_endpoint`)."
            )
        parts = urlsplit(self.endpoint)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.getaddrinfo(host, port)
        except socket.gaierror as exc:
            raise self._unreachable(f"its name does not resolve ({exc.strerror})") from exc
        try:  # a refused connection (a mirror that is down, a wrong port) is not worth retrying either
            socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S).close()
        except OSError as exc:
            if isinstance(exc, TimeoutError) or exc.errno not in _UNREACHABLE_ERRNOS:
                return  # slow or unusual: let the client's own timeouts and retries judge it
            raise self._unreachable(f"the connection was refused or has no route ({exc.strerror})") from exc

    def _unreachable(self, why: str) -> HubError:
        return HubError(
            f"Could not reach the model hub at {self.endpoint}: {why}. Check the network connection and "
            "any proxy (HTTPS_PROXY), or set HF_ENDPOINT (the `hub_endpoint` setting) to a reachable "
            "mirror. Models already downloaded keep working offline."
        )


def _hit(info: ModelInfo) -> SearchHit:
    return SearchHit(
        repo_id=info.id,
        downloads=info.downloads or 0,
        likes=info.likes or 0,
        formats=_formats(info),
        gated=bool(info.gated),
    )


def _formats(info: ModelInfo) -> frozenset[str]:
    marks: Iterable[str] = [*(info.tags or ()), info.library_name or ""]
    lowered = {m.lower() for m in marks}
    found = {fmt for fmt in KNOWN_FORMATS if fmt in lowered}
    if any(s.rfilename.lower().endswith(".gguf") for s in info.siblings or ()):
        found.add("gguf")
    return frozenset(found)


def _hub_file(path: str, size: int | None, lfs: object) -> HubFile:
    sha = getattr(lfs, "sha256", None) if lfs is not None else None
    if sha is None and isinstance(lfs, dict):
        sha = lfs.get("sha256")
    lfs_size = getattr(lfs, "size", None) if lfs is not None else None
    return HubFile(path=path, size=int(size or lfs_size or 0), sha256=sha)
