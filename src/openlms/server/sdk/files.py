"""The `files` namespace: `uploadFileBase64` (what `prepare_image()` and `prepare_file()` call).

Uploads are kept in memory per client identifier (the SDK uploads on `/files` and refers to the file from
`/llm`), bounded per client and in total bytes; the oldest go first. The type comes from the bytes
(JPEG, PNG, WebP, GIF, PDF, text), not from the name.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.server.sdk.transport import Client

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FILES_PER_CLIENT = 64
MAX_CLIENTS = 256
MAX_TOTAL_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredFile:
    identifier: str
    name: str
    file_type: str
    data: bytes


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
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "unknown", "bin"
    return "text/plain", "txt"


class FileStore:
    def __init__(self, max_total_bytes: int = MAX_TOTAL_BYTES) -> None:
        self._clients: OrderedDict[str, OrderedDict[str, StoredFile]] = OrderedDict()
        self.max_total_bytes = max_total_bytes
        self.total_bytes = 0

    def get(self, client: Client, identifier: str) -> StoredFile | None:
        return self._clients.get(client.identifier, OrderedDict()).get(identifier)

    def put(self, client: Client, name: str, data: bytes) -> StoredFile:
        file_type, ext = sniff(data)
        identifier = f"{int(time.time() * 1000)} - {secrets.token_hex(4)}.{ext}"
        stored = StoredFile(identifier, name, file_type, data)
        files = self._clients.setdefault(client.identifier, OrderedDict())
        self._clients.move_to_end(client.identifier)
        files[identifier] = stored
        self.total_bytes += len(data)
        while len(files) > MAX_FILES_PER_CLIENT:
            self.total_bytes -= len(files.popitem(last=False)[1].data)
        while len(self._clients) > MAX_CLIENTS or (
            self.total_bytes > self.max_total_bytes and len(self._clients) > 1
        ):
            _, dropped = self._clients.popitem(last=False)
            self.total_bytes -= sum(len(f.data) for f in dropped.values())
        while self.total_bytes > self.max_total_bytes and len(files) > 1:
            self.total_bytes -= len(files.popitem(last=False)[1].data)
        return stored

    def attach_for(self, client: Client) -> Callable[[Mapping[str, Any]], str | None]:
        """How a predict request of `client` includes its uploaded text files: the file's text under its
        name. Other documents (PDF, Word) and unknown identifiers are errors that say what to do."""

        def attach(part: Mapping[str, Any]) -> str | None:
            name = part.get("name", "file")
            stored = self.get(client, str(part.get("identifier")))
            if stored is None:
                raise InvalidRequestError(
                    f"The file '{name}' was not uploaded by this client; upload it with prepare_file() first."
                )
            if stored.file_type != "text/plain":
                raise InvalidRequestError(
                    f"The file '{name}' ({stored.file_type}) cannot be read into a chat; openlms reads text "
                    "files only. Convert it to text first."
                )
            return f"\n\n[{name}]\n{stored.data.decode('utf-8', errors='replace')}\n"

        return attach

    async def upload_base64(self, client: Client, parameter: Any) -> dict[str, Any]:
        obj = parameter if isinstance(parameter, Mapping) else {}
        name, content = obj.get("name"), obj.get("contentBase64")
        if not isinstance(name, str) or not isinstance(content, str):
            raise InvalidRequestError("uploadFileBase64 needs 'name' and 'contentBase64' strings.")
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError(f"The content of '{name}' is not valid base64.") from None
        if len(data) > MAX_FILE_BYTES:
            raise InvalidRequestError(f"'{name}' is larger than {MAX_FILE_BYTES // 2**20} MiB.")
        stored = self.put(client, name, data)
        return {"identifier": stored.identifier, "fileType": stored.file_type, "sizeBytes": len(data)}
