"""Files that SDK clients upload (`prepare_file()`, `prepare_image()`) and then refer to from a chat.

Uploads belong to the client identifier that sent them and are kept on disk (`store/uploads.py`), so they
survive a restart as LM Studio's do. They are bounded per client, in clients and in total bytes; the
oldest go first (the least recently uploading client first, then that client's oldest files), counted
again from what is on disk when the service starts. The type comes from the bytes (JPEG, PNG, WebP, GIF,
PDF, text), not from the name.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Final

from openlms.core.errors import InvalidRequestError, OpenLMSError
from openlms.store.uploads import UploadRecord, UploadStore

MAX_FILE_BYTES: Final = 64 * 1024 * 1024
MAX_FILES_PER_CLIENT: Final = 64
MAX_CLIENTS: Final = 256
MAX_TOTAL_BYTES: Final = 512 * 1024 * 1024

StoredFile = UploadRecord


def sniff(data: bytes) -> tuple[str, str]:
    """(fileType, extension) from the first bytes."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image", "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image", "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image", "gif"
    if data.startswith(b"%PDF-"):
        return "application/pdf", "pdf"
    if data.startswith(b"PK\x03\x04") and b"word/" in data[:65536]:  # a .docx (a zip with word/ parts)
        return "application/word", "docx"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "unknown", "bin"
    return "text/plain", "txt"


class FileService:
    def __init__(
        self,
        store: UploadStore,
        *,
        max_total_bytes: int = MAX_TOTAL_BYTES,
        max_files_per_client: int = MAX_FILES_PER_CLIENT,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.store = store
        self.max_total_bytes = max_total_bytes
        self.max_files_per_client = max_files_per_client
        self.max_clients = max_clients
        self.total_bytes = 0
        self._clients: OrderedDict[str, OrderedDict[str, StoredFile]] = OrderedDict()
        self._last_ns = 0
        self._lock = threading.Lock()  # uploads are written from worker threads
        with self._lock:
            for record in sorted(store.scan(), key=lambda r: (r.created_ns, r.identifier)):
                self._index(record)
                self._last_ns = max(self._last_ns, record.created_ns)
            for client in list(self._clients):
                self._trim_client(client)
            self._trim()
            if self._clients:
                self._trim_own(next(reversed(self._clients)))

    @classmethod
    def in_home(cls, home: Path, *, max_total_bytes: int = MAX_TOTAL_BYTES) -> FileService:
        """The uploads of `<home>/openlms/uploads`."""
        return cls(UploadStore.in_home(home), max_total_bytes=max_total_bytes)

    def get(self, client: str, identifier: str) -> StoredFile | None:
        with self._lock:
            files = self._clients.get(client)
            return None if files is None else files.get(identifier)

    def put(self, client: str, name: str, data: bytes) -> StoredFile:
        """Keep `data` for `client` (written to disk before this returns), then apply the bounds. The
        write happens outside the lock, so readers never wait for a large upload."""
        file_type, ext = sniff(data)
        with self._lock:
            self._last_ns = created_ns = max(time.time_ns(), self._last_ns + 1)
        identifier = f"{created_ns // 1_000_000} - {secrets.token_hex(4)}.{ext}"
        stored = StoredFile(client, identifier, name, file_type, len(data), created_ns)
        try:
            self.store.write(stored, data)
        except OSError as exc:
            self.store.delete(client, identifier)
            raise OpenLMSError(f"Could not keep the upload '{name}': {exc}") from exc
        with self._lock:
            self._index(stored)
            self._trim_client(client)
            self._trim()
            self._trim_own(client)
        return stored

    def read(self, client: str, identifier: str) -> bytes | None:
        """The bytes of an upload of `client`; None when it is unknown or gone from the disk."""
        if self.get(client, identifier) is None:
            return None
        data = self.store.read(client, identifier)
        if data is None:
            self._forget(client, identifier)
        return data

    def document(self, client: str, name: str, identifier: str) -> bytes:
        """The bytes of a file `client` uploaded to use as a chat's document (images are refused: no
        model openlms runs has vision); an unknown identifier is an error that says what to do."""
        stored = self.get(client, identifier)
        if stored is not None and stored.file_type == "image":
            raise InvalidRequestError(
                f"The image '{name}' cannot be used as a document: this model has no vision support."
            )
        data = None if stored is None else self.read(client, identifier)
        if data is None:
            raise InvalidRequestError(
                f"The file '{name}' was not uploaded by this client; upload it with prepare_file() first."
            )
        return data

    # -- bounds (called with the lock held) ---------------------------------------------------------------

    def _index(self, record: StoredFile) -> None:
        self._clients.setdefault(record.client, OrderedDict())[record.identifier] = record
        self._clients.move_to_end(record.client)
        self.total_bytes += record.size_bytes

    def _trim_client(self, client: str) -> None:
        while len(self._clients[client]) > self.max_files_per_client:
            self._drop_oldest_file(client)

    def _trim(self) -> None:
        """Whole clients go, least recently uploading first, while there are too many or too many bytes
        (the most recent client is kept: its own oldest files go after this)."""
        while len(self._clients) > self.max_clients or (
            self.total_bytes > self.max_total_bytes and len(self._clients) > 1
        ):
            client, files = next(iter(self._clients.items()))
            for identifier in list(files):
                self._drop(client, identifier)

    def _trim_own(self, client: str) -> None:
        """The most recent client's oldest files go while there are too many bytes (its newest stays)."""
        while self.total_bytes > self.max_total_bytes and len(self._clients.get(client, ())) > 1:
            self._drop_oldest_file(client)

    def _drop_oldest_file(self, client: str) -> None:
        self._drop(client, next(iter(self._clients[client])))

    def _drop(self, client: str, identifier: str) -> None:
        self._remove_from_index(client, identifier)
        self.store.delete(client, identifier)

    def _forget(self, client: str, identifier: str) -> None:
        with self._lock:
            self._remove_from_index(client, identifier)

    def _remove_from_index(self, client: str, identifier: str) -> None:
        files = self._clients.get(client)
        if files is None or identifier not in files:
            return
        self.total_bytes -= files.pop(identifier).size_bytes
        if not files:
            del self._clients[client]
