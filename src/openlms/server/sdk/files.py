"""The `files` namespace: `uploadFileBase64` (what `prepare_image()` and `prepare_file()` call).

The SDK uploads on `/files` and refers to the file from `/llm`; this module only speaks the protocol
(base64, the size limit, the file parts of a chat). Keeping the uploads (on disk, per client identifier,
bounded) and reading them into a chat is the files service's work (`services/files.py`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.server.sdk.transport import Client
from openlms.services.files import MAX_FILE_BYTES, FileService


class FileStore:
    def __init__(self, files: FileService) -> None:
        """`files`: the service that keeps the uploads (the app's keeps them in the home)."""
        self.files = files

    def collect_for(
        self, client: Client, into: list[tuple[str, bytes]]
    ) -> Callable[[Mapping[str, Any]], str | None]:
        """How a predict request of `client` takes its uploaded files: each one's (name, bytes) is added
        to `into` (the documents of the chat, which `ChatDocuments` puts into its last user message);
        nothing goes into the message holding the file part itself."""

        def collect(part: Mapping[str, Any]) -> str | None:
            name, identifier = str(part.get("name") or "file"), str(part.get("identifier"))
            into.append((name, self.files.document(client.identifier, name, identifier)))
            return None

        return collect

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
        stored = await asyncio.to_thread(self.files.put, client.identifier, name, data)
        return {"identifier": stored.identifier, "fileType": stored.file_type, "sizeBytes": len(data)}
