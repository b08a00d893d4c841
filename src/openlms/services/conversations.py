"""The app's conversations (docs/app.md, "Conversations"): create, read, update, move, duplicate, delete
to the trash and back, search, and folders, over `store/conversations.py`.

The methods are blocking file work (the routes run them in a worker thread); one lock per service keeps
two requests from interleaving a read-modify-write of the same tree.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from openlms.core.errors import ConversationConflictError, InvalidRequestError
from openlms.store.conversation_trash import ConversationTrash
from openlms.store.conversations import (
    FORMAT_VERSION,
    ConversationStore,
    Listing,
    check_folder,
    conversations_dir,
    new_id,
    now_ms,
    summary,
)

DEFAULT_TITLE: Final = "New Chat"
MAX_RESULTS: Final = 100
SNIPPET: Final = 60
# The fields a client may set (the document's other fields are the server's: version, timestamps).
FIELDS: Final = ("title", "model", "systemPrompt", "settings", "messages", "branchedFrom")


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    folder: str
    document: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "folder": self.folder} | self.document


class ConversationService:
    def __init__(self, home: Path) -> None:
        self.store = ConversationStore(conversations_dir(home))
        self.trash = ConversationTrash(self.store)
        self._lock = threading.Lock()

    def listing(self) -> Listing:
        with self._lock:
            return self.store.listing()

    def get(self, cid: str) -> Conversation:
        with self._lock:
            folder, doc = self.store.read(cid)
            return Conversation(cid, folder, doc)

    def create(self, fields: dict[str, Any], folder: str = "") -> Conversation:
        folder = check_folder(folder)
        stamp = now_ms()
        doc: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "title": DEFAULT_TITLE,
            "createdAt": stamp,
            "updatedAt": stamp,
            "model": None,
            "systemPrompt": "",
            "settings": {},
            "messages": [],
            "branchedFrom": None,
        } | _settable(fields)
        cid = new_id()
        with self._lock:
            self.store.write(folder, cid, doc)
        return Conversation(cid, folder, doc)

    def update(self, cid: str, fields: dict[str, Any], if_updated_at: int | None = None) -> Conversation:
        """Replace the fields given (a rename is `{"title": ...}`); the others stay as they are. With
        `if_updated_at`, only if the chat was not changed since (else a conflict: another tab wrote it)."""
        with self._lock:
            folder, doc = self.store.read(cid)
            if if_updated_at is not None and doc.get("updatedAt") != if_updated_at:
                raise ConversationConflictError(
                    f"Conversation '{cid}' was changed since it was read (updatedAt {doc.get('updatedAt')}, "
                    f"not {if_updated_at}): read it again, then save.",
                    param="ifUpdatedAt",
                )
            stamp = max(now_ms(), _int(doc.get("updatedAt")) + 1)  # always a new value (ifUpdatedAt)
            doc = doc | _settable(fields) | {"updatedAt": stamp}
            self.store.write(folder, cid, doc)
            return Conversation(cid, folder, doc)

    def move(self, cid: str, folder: str) -> Conversation:
        folder = check_folder(folder)
        with self._lock:
            self.store.move(cid, folder)
            current, doc = self.store.read(cid)
            return Conversation(cid, current, doc)

    def duplicate(self, cid: str, title: str | None = None) -> Conversation:
        """A copy beside the original (its attached files too), titled `<title> (copy)` unless named."""
        with self._lock:
            folder, doc = self.store.read(cid)
            copy_id = new_id()
            stamp = now_ms()
            copy = doc | {
                "title": title if title is not None else f"{doc['title']} (copy)",
                "createdAt": stamp,
                "updatedAt": stamp,
            }
            self.store.copy_files(cid, copy_id)
            self.store.write(folder, copy_id, copy)
            return Conversation(copy_id, folder, copy)

    def branch(self, cid: str, message_index: int) -> Conversation:
        """A new chat beside `cid` with its messages up to `message_index` (included), its settings, and
        `branchedFrom` pointing back; attached files are copied as by a duplicate."""
        with self._lock:
            folder, doc = self.store.read(cid)
            if not 0 <= message_index < len(doc["messages"]):
                raise InvalidRequestError(
                    f"Conversation '{cid}' has {len(doc['messages'])} messages: messageIndex must be "
                    f"0 to {len(doc['messages']) - 1}.",
                    param="messageIndex",
                )
            copy_id = new_id()
            stamp = now_ms()
            copy = doc | {
                "title": f"{doc['title']} (branch)",
                "createdAt": stamp,
                "updatedAt": stamp,
                "messages": doc["messages"][: message_index + 1],
                "branchedFrom": {"conversation": cid, "messageIndex": message_index},
            }
            self.store.copy_files(cid, copy_id)
            self.store.write(folder, copy_id, copy)
            return Conversation(copy_id, folder, copy)

    def delete(self, cid: str) -> dict[str, Any]:
        """Move a chat to the trash (kept as it is, even when it could not be opened)."""
        with self._lock:
            title: str | None
            try:
                title = self.store.read(cid)[1]["title"]
            except ConversationConflictError:
                title = None
            return self.trash.put_conversation(cid, title)

    def save_file(self, cid: str, name: str, data: bytes) -> int:
        with self._lock:
            return self.store.save_file(cid, name, data)

    def file_path(self, cid: str, name: str) -> Path:
        with self._lock:
            return self.store.file_path(cid, name)

    def create_folder(self, path: str) -> str:
        with self._lock:
            return self.store.create_folder(path)

    def move_folder(self, path: str, into: str | None, name: str | None) -> str:
        """Move a folder into `into` (None: where it is) and/or give it a new `name`."""
        path = check_folder(path, "path")
        parent = path.rpartition("/")[0]
        with self._lock:
            return self.store.move_folder(path, parent if into is None else into, name)

    def delete_folder(self, path: str) -> dict[str, Any]:
        with self._lock:
            return self.trash.put_folder(path)

    def trash_entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return self.trash.entries()

    def restore(self, entry_id: str) -> dict[str, Any]:
        with self._lock:
            return self.trash.restore(entry_id)

    def purge(self, entry_id: str) -> dict[str, Any]:
        with self._lock:
            return self.trash.purge(entry_id)

    def search(self, query: str) -> list[dict[str, Any]]:
        """Chats whose title or message text contains `query` (case-insensitive), newest first, each with
        where it matched and a snippet of the first matching message."""
        needle = query.strip().casefold()
        if not needle:
            raise InvalidRequestError("Give a search text (q=...).", param="q")
        with self._lock:
            found = self.store.entries()
            hits = [_match(entry, needle) for entry in found if isinstance(entry, tuple)]
        results = sorted((hit for hit in hits if hit is not None), key=lambda hit: -(hit["updatedAt"] or 0))
        return results[:MAX_RESULTS]


def _match(entry: tuple[str, str, dict[str, Any]], needle: str) -> dict[str, Any] | None:
    chat = summary(*entry)
    if needle in chat["title"].casefold():
        return chat | {"match": "title", "messageIndex": None, "snippet": chat["title"]}
    for index, message in enumerate(entry[2]["messages"]):
        text = _message_text(message)
        at = text.casefold().find(needle)
        if at >= 0:
            return chat | {"match": "message", "messageIndex": index, "snippet": _snippet(text, at)}
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _settable(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if key in FIELDS}


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    parts = [message.get("content"), message.get("reasoning")]
    return "\n".join(part for part in parts if isinstance(part, str))


def _snippet(text: str, at: int) -> str:
    start = max(0, at - SNIPPET)
    end = min(len(text), at + SNIPPET)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
