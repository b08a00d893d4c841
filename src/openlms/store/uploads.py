"""Files uploaded by SDK clients (`prepare_file()`, `prepare_image()`), kept on disk so that they outlive
a restart, as LM Studio's do.

Layout, in openlms's own folder of the home:

    <home>/openlms/uploads/<client>/<identifier>        the bytes
    <home>/openlms/uploads/<client>/<identifier>.json   {"client", "name", "fileType", "sizeBytes",
                                                         "createdNs"}

`<client>` is a hash of the SDK's client identifier (any string: it never becomes a path); `<identifier>`
is the server's own (`<ms> - <8 hex>.<ext>`) and anything else is refused, so neither can leave the
folder. Both files are written atomically, the bytes first: the metadata file is what makes an entry
exist. `scan()` skips (and removes) what it cannot trust: a metadata file that is not valid, or whose
client or size does not match, and, after an hour, bytes without metadata and temporary files left by a
crash. Which entries to keep (the bounds, oldest first) is the files service's policy, not this module's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from openlms.core.fsutil import atomic_write_bytes, atomic_write_text, contained_path
from openlms.store._files import STALE_SECONDS  # leftovers younger than this may be a write in progress

log = logging.getLogger("openlms.store")

UPLOADS_DIR: Final = Path("openlms") / "uploads"
META_SUFFIX: Final = ".json"
_IDENTIFIER = re.compile(r"[0-9]{1,20} - [0-9a-f]{8}\.[a-z0-9]{1,5}")
_CLIENT_DIR = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """One uploaded file's metadata (its bytes are read with `UploadStore.read`)."""

    client: str
    identifier: str
    name: str
    file_type: str
    size_bytes: int
    created_ns: int


def valid_identifier(identifier: str) -> bool:
    """Whether `identifier` has the shape the server gives uploads (and so is a safe file name)."""
    return _IDENTIFIER.fullmatch(identifier) is not None and not identifier.endswith(META_SUFFIX)


def client_dir_name(client: str) -> str:
    return hashlib.sha256(client.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]


class UploadStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def in_home(cls, home: Path) -> UploadStore:
        return cls(home / UPLOADS_DIR)

    def write(self, record: UploadRecord, data: bytes) -> None:
        if len(data) != record.size_bytes:
            raise ValueError(f"{record.identifier}: {len(data)} bytes, metadata says {record.size_bytes}")
        data_path = self._path(record.client, record.identifier)
        atomic_write_bytes(data_path, data)
        meta = {
            "client": record.client,
            "name": record.name,
            "fileType": record.file_type,
            "sizeBytes": record.size_bytes,
            "createdNs": record.created_ns,
        }
        atomic_write_text(data_path.with_name(data_path.name + META_SUFFIX), json.dumps(meta))

    def read(self, client: str, identifier: str) -> bytes | None:
        """The bytes of an upload; None when there is no such upload or it cannot be read."""
        if not valid_identifier(identifier):
            return None
        try:
            return self._path(client, identifier).read_bytes()
        except (OSError, ValueError):
            return None

    def delete(self, client: str, identifier: str) -> None:
        """Best effort: the metadata goes first, so a half-done delete leaves only unlisted bytes."""
        if not valid_identifier(identifier):
            return
        try:
            path = self._path(client, identifier)
            path.with_name(path.name + META_SUFFIX).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            _remove_if_empty(path.parent)
        except (OSError, ValueError) as exc:
            log.warning("Could not delete the upload %s: %s", identifier, exc)

    def scan(self) -> list[UploadRecord]:
        """Every readable upload on disk, in no particular order; never raises."""
        try:
            folders = [p for p in self.root.iterdir() if _CLIENT_DIR.fullmatch(p.name) and p.is_dir()]
        except OSError:
            return []
        records: list[UploadRecord] = []
        for folder in folders:
            records.extend(self._scan_client(folder))
        return records

    def _scan_client(self, folder: Path) -> list[UploadRecord]:
        try:
            paths = [p for p in folder.iterdir() if not p.is_symlink() and p.is_file()]
        except OSError:
            return []
        names = {p.name for p in paths}
        records: list[UploadRecord] = []
        for path in paths:
            if path.name.endswith(META_SUFFIX):
                record = _read_record(path)
                if record is None:
                    log.warning("Skipping the unreadable upload %s", path)
                    _unlink(path, path.with_name(path.name.removesuffix(META_SUFFIX)))
                else:
                    records.append(record)
            elif path.name + META_SUFFIX not in names and _is_stale(path):
                _unlink(path)  # bytes without metadata, or a temporary file: a crash's leftovers
        _remove_if_empty(folder)
        return records

    def _path(self, client: str, identifier: str) -> Path:
        if not valid_identifier(identifier):
            raise ValueError(f"'{identifier}' is not an upload identifier")
        return contained_path(self.root, f"{client_dir_name(client)}/{identifier}")


def _read_record(meta_path: Path) -> UploadRecord | None:
    identifier = meta_path.name.removesuffix(META_SUFFIX)
    data_path = meta_path.with_name(identifier)
    try:
        meta: Any = json.loads(meta_path.read_text("utf-8"))
        size = data_path.stat().st_size if data_path.is_file() and not data_path.is_symlink() else -1
    except (OSError, ValueError):
        return None
    if not (isinstance(meta, dict) and valid_identifier(identifier)):
        return None
    client, name, file_type = meta.get("client"), meta.get("name"), meta.get("fileType")
    size_bytes, created_ns = meta.get("sizeBytes"), meta.get("createdNs")
    if not (
        isinstance(client, str)
        and isinstance(name, str)
        and isinstance(file_type, str)
        and type(size_bytes) is int
        and type(created_ns) is int
        and client_dir_name(client) == meta_path.parent.name
        and size_bytes == size
    ):
        return None
    return UploadRecord(client, identifier, name, file_type, size_bytes, created_ns)


def _is_stale(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > STALE_SECONDS
    except OSError:
        return False


def _unlink(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("Could not remove %s: %s", path, exc)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (or already gone)
        folder.rmdir()
