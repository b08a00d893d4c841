"""One file into its `.part`: Range resumes validated by a json sidecar, retries with backoff, sha256."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx2
from huggingface_hub import get_session, hf_hub_url, hf_raise_for_status
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils._headers import build_hf_headers

from openlms.core.errors import (
    DownloadError,
    DownloadVerificationError,
    InsufficientDiskError,
    OpenLMSError,
)
from openlms.store.hub.client import HubClient
from openlms.store.hub.errors import backoff_delay, hub_error, is_transient, status_of
from openlms.store.hub.progress import Meter
from openlms.store.hub.types import DownloadCancelled, DownloadOption, HubFile

CHUNK_BYTES: Final = 1 << 20
_MAX_RESTARTS: Final = 3


@dataclass
class Sidecar:
    """What a `.part` is a part of: a resume is valid only for the same sha256, size and etag."""

    sha256: str | None
    size: int
    etag: str | None = None
    verified: bool = False

    @staticmethod
    def path_for(part: Path) -> Path:
        return part.with_name(part.name + ".json")

    def save(self, part: Path) -> None:
        tmp = Sidecar.path_for(part).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, Sidecar.path_for(part))


class _RemoteChanged(Exception):
    """The remote file is not the one the partial data came from."""


def load_state(part: Path, f: HubFile) -> Sidecar:
    """The part's sidecar when it matches `f`; otherwise the stale part is deleted and a fresh one begun."""
    try:
        raw: dict[str, Any] = json.loads(Sidecar.path_for(part).read_text())
        state = Sidecar(raw.get("sha256"), int(raw["size"]), raw.get("etag"), bool(raw.get("verified")))
    except (OSError, ValueError, KeyError, TypeError):
        state = None
    if state is None or state.sha256 != f.sha256 or state.size != f.size:
        discard(part)
        state = Sidecar(f.sha256, f.size)
        state.save(part)
    return state


def discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    Sidecar.path_for(part).unlink(missing_ok=True)


@dataclass
class FileJob:
    """One file of an option being fetched into `part`."""

    client: HubClient
    option: DownloadOption
    file: HubFile
    part: Path
    meter: Meter
    cancel: threading.Event
    _hasher: hashlib._Hash = field(default_factory=hashlib.sha256, init=False)

    def run(self) -> None:
        """Fetch (or finish) the part and verify it; raises domain errors or DownloadCancelled."""
        state = load_state(self.part, self.file)
        have = self.part.stat().st_size if self.part.exists() else 0
        if state.verified and have == self.file.size:
            self.meter.add(have, transferred=False)
            return
        if _size(self.part) > self.file.size:
            self.part.unlink()
        self.meter.add(_size(self.part), transferred=False)
        self.meter.flush()
        self._hasher = _hash_existing(self.part)
        self._fetch(state)
        self._verify()
        state.verified = True
        state.save(self.part)

    def _fetch(self, state: Sidecar) -> None:
        attempt = restarts = 0
        while (have := _size(self.part)) < self.file.size:
            self._check_cancel()
            try:
                self._get(state, have)
            except _RemoteChanged:
                restarts += 1
                self._restart(have, restarts)
            except (OpenLMSError, DownloadCancelled):
                raise
            except Exception as exc:
                progressed = _size(self.part) > have
                attempt = 0 if progressed else attempt + 1
                if not is_transient(exc) or attempt > self.client.retries:
                    raise self._error(exc) from exc
                if self.cancel.wait(backoff_delay(max(attempt - 1, 0), self.client.backoff_s, exc)):
                    self._check_cancel()

    def _restart(self, had: int, restarts: int) -> None:
        """The part was discarded: count its bytes out, hash from zero; give up on a file that keeps
        changing."""
        self.meter.rewind(had)
        self._hasher = hashlib.sha256()
        if restarts > _MAX_RESTARTS:
            raise DownloadError(
                f"{self.file.path} in {self.option.repo_id} keeps changing while it downloads (another ETag "
                "on every request); try again later."
            )

    def _get(self, state: Sidecar, have: int) -> None:
        url = hf_hub_url(
            self.option.repo_id, self.file.path, revision=self.option.revision, endpoint=self.client.endpoint
        )
        headers = build_hf_headers(token=self.client.token, library_name="openlms")
        if have:
            headers["Range"] = f"bytes={have}-"
        timeout = httpx2.Timeout(30.0, read=self.client.read_timeout_s)
        with get_session().stream("GET", url, headers=headers, timeout=timeout) as resp:
            if resp.status_code == 416:
                discard(self.part)
                state.save(self.part)
                raise _RemoteChanged
            if resp.status_code >= 400:
                resp.read()
                hf_raise_for_status(resp)
            self._check_etag(state, _etag(resp), have)
            restart = have > 0 and resp.status_code != 206
            if restart:
                self.meter.rewind(have)
                self._hasher = hashlib.sha256()
            self._write(resp, "wb" if restart else "ab")

    def _check_etag(self, state: Sidecar, etag: str | None, have: int) -> None:
        if etag is None or state.etag == etag:
            return
        if state.etag is not None and have:
            discard(self.part)
            Sidecar(self.file.sha256, self.file.size, etag).save(self.part)
            state.etag = etag
            raise _RemoteChanged
        state.etag = etag
        state.save(self.part)

    def _write(self, resp: httpx2.Response, mode: str) -> None:
        with self.part.open(mode) as out:
            for chunk in resp.iter_bytes():
                out.write(chunk)
                self._hasher.update(chunk)
                self.meter.add(len(chunk))
                if self.cancel.is_set():
                    out.flush()
                    self._check_cancel()
        if _size(self.part) < self.file.size:
            raise ConnectionError("the connection closed before the whole file came")

    def _verify(self) -> None:
        size = _size(self.part)
        got = self._hasher.hexdigest()
        if size != self.file.size or (self.file.sha256 and got != self.file.sha256):
            discard(self.part)
            raise DownloadVerificationError(
                f"The download of {self.file.path} from {self.option.repo_id} is corrupt: sha256 {got} "
                f"({size} bytes), the Hub lists {self.file.sha256} ({self.file.size} bytes). The partial "
                "file was deleted and nothing was installed; run the download again. If it fails again, the "
                "server (HF_ENDPOINT, a proxy or mirror) serves different bytes than it lists."
            )

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise DownloadCancelled(f"Download of {self.option.identifier} paused; run it again to resume.")

    def _error(self, exc: BaseException) -> OpenLMSError:
        if isinstance(exc, OSError) and not isinstance(exc, ConnectionError | HfHubHTTPError):
            return _disk_error(exc, self.part)
        if status_of(exc) == 404:
            return DownloadError(
                f"{self.file.path} is not in {self.option.repo_id} at revision {self.option.revision} (any "
                "more): list the repo's files again and pick another download."
            )
        if is_transient(exc):
            return DownloadError(
                f"Downloading {self.file.path} from {self.option.repo_id} failed after "
                f"{self.client.retries} retries ({type(exc).__name__}: {exc}). What was downloaded is "
                "kept: run the download again to resume it."
            )
        return hub_error(exc, endpoint=self.client.endpoint, repo_id=self.option.repo_id)


def _disk_error(exc: OSError, part: Path) -> OpenLMSError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientDiskError(
            f"The disk filled up while writing {part.name} ({exc.strerror}). What was downloaded is kept in "
            f"{part.parent}: free some space and run the download again to resume it."
        )
    return DownloadError(f"Could not write {part}: {exc}. Check the models folder's permissions and disk.")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _hash_existing(part: Path) -> hashlib._Hash:
    """sha256 over the part's bytes so far."""
    hasher = hashlib.sha256()
    if not part.exists():
        return hasher
    with part.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher


def _etag(resp: httpx2.Response) -> str | None:
    """The Hub's X-Linked-Etag (LFS sha256) or ETag, from the redirect chain first (the CDN's differs)."""
    for r in (*resp.history, resp):
        value = r.headers.get("X-Linked-Etag") or r.headers.get("ETag")
        if value:
            return value.removeprefix("W/").strip('"')
    return None
