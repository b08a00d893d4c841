"""The `files` namespace: `uploadFileBase64` (what `prepare_image()` and `prepare_file()` call).

The SDK uploads on `/files` and refers to the file from `/llm`; this module only speaks the protocol
(base64, the size limit, the file parts of a chat). Keeping the uploads (on disk, per client identifier,
bounded) and reading them into a chat is the files service's work (`services/files.py`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.server.sdk.transport import Client
from openlms.services.files import MAX_FILE_BYTES, MAX_TOTAL_BYTES, FileService, StoredFile


class FileStore:
    def __init__(self, files: FileService | None = None, *, max_total_bytes: int = MAX_TOTAL_BYTES) -> None:
        """`files`: the service (the app's keeps uploads in the home). Without one (tests), uploads go to a
        private temporary folder that lives as long as this object, bounded by `max_total_bytes`."""
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if files is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="openlms-uploads-")
            files = FileService.in_home(Path(self._scratch.name), max_total_bytes=max_total_bytes)
        self.files = files

    @property
    def total_bytes(self) -> int:
        return self.files.total_bytes

    def get(self, client: Client, identifier: str) -> StoredFile | None:
        return self.files.get(client.identifier, identifier)

    def put(self, client: Client, name: str, data: bytes) -> StoredFile:
        return self.files.put(client.identifier, name, data)

    def attach_for(self, client: Client) -> Callable[[Mapping[str, Any]], str | None]:
        """How a predict request of `client` includes its uploaded files (see `FileService.attach`)."""

        def attach(part: Mapping[str, Any]) -> str | None:
            name, identifier = part.get("name", "file"), part.get("identifier")
            return self.files.attach(client.identifier, str(name), str(identifier))

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
        stored = await asyncio.to_thread(self.put, client, name, data)
        return {"identifier": stored.identifier, "fileType": stored.file_type, "sizeBytes": len(data)}
