"""Deleted chats and folders, kept in `<home>/conversations/.trash/` so that the app can undo a delete.

One entry per delete: `.trash/<entry id>/entry.json` (`{"kind": "conversation"|"folder", "folder": the
folder it was in, "name": the chat id or folder name, "title", "deletedAt"}`) and, beside it, what was
moved there as it was (the chat's file and its `<id>.files` folder, or the whole folder). Restoring moves
it back (the folder it was in is made again if it is gone); purging removes the entry for good.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Final

from openlms.core.errors import ConversationConflictError, ConversationNotFoundError
from openlms.core.fsutil import atomic_write_text
from openlms.store.conversations import (
    FILES_SUFFIX,
    TRASH_DIR,
    ConversationStore,
    check_folder,
    check_id,
    new_id,
    now_ms,
)

ENTRY: Final = "entry.json"


class ConversationTrash:
    def __init__(self, store: ConversationStore) -> None:
        self.store = store

    @property
    def root(self) -> Path:
        return self.store.root.resolve() / TRASH_DIR

    def put_conversation(self, cid: str, title: str | None) -> dict[str, Any]:
        path = self.store.locate(cid)
        moved = [path, path.parent / (cid + FILES_SUFFIX)]
        return self._put("conversation", path.parent, cid, title, moved)

    def put_folder(self, folder: str) -> dict[str, Any]:
        folder = check_folder(folder, "path")
        if not folder:
            raise ConversationConflictError("The top folder cannot be deleted.", param="path")
        path = self.store.folder_path(folder, param="path")
        return self._put("folder", path.parent, path.name, path.name, [path])

    def _put(
        self, kind: str, parent: Path, name: str, title: str | None, moved: list[Path]
    ) -> dict[str, Any]:
        entry_id = new_id()
        folder = self.root / entry_id
        folder.mkdir(parents=True)
        meta = {
            "id": entry_id,
            "kind": kind,
            "folder": self.store.relative(parent),
            "name": name,
            "title": title,
            "deletedAt": now_ms(),
        }
        atomic_write_text(folder / ENTRY, json.dumps(meta, ensure_ascii=False))
        for path in moved:
            if path.exists():
                os.replace(path, folder / path.name)
        return meta

    def entries(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        if not self.root.is_dir():
            return found
        for folder in self.root.iterdir():
            meta = _meta(folder)
            if meta is not None:
                found.append(meta)
        found.sort(key=lambda meta: -int(meta["deletedAt"]))
        return found

    def restore(self, entry_id: str) -> dict[str, Any]:
        """Move an entry back where it was; a conflict when something now has its name there."""
        folder, meta = self._entry(entry_id)
        parent = self.store.folder_path(check_folder(str(meta["folder"])), must_exist=False)
        items = [path for path in folder.iterdir() if path.name != ENTRY]
        for item in items:
            if (parent / item.name).exists():
                raise ConversationConflictError(
                    f"'{item.name}' exists again in '{meta['folder']}': rename or move it, then restore.",
                    param="id",
                )
        parent.mkdir(parents=True, exist_ok=True)
        for item in items:
            os.replace(item, parent / item.name)
        shutil.rmtree(folder)
        return meta

    def purge(self, entry_id: str) -> dict[str, Any]:
        folder, meta = self._entry(entry_id)
        shutil.rmtree(folder)
        return meta

    def _entry(self, entry_id: str) -> tuple[Path, dict[str, Any]]:
        folder = self.root / check_id(entry_id)
        meta = _meta(folder)
        if meta is None:
            raise ConversationNotFoundError(
                f"No trash entry '{entry_id}'. List them with GET /api/v1/app/trash.", param="id"
            )
        return folder, meta


def _meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / ENTRY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("kind") not in ("conversation", "folder"):
        return None
    if not isinstance(meta.get("folder"), str) or not isinstance(meta.get("name"), str):
        return None
    if meta.get("id") != folder.name or type(meta.get("deletedAt")) is not int:
        return None
    if not isinstance(meta.get("title"), (str, type(None))):
        return None
    return meta
