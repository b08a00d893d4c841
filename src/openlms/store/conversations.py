"""The app's conversations: one JSON file per chat in `<home>/conversations/` (LM Studio's folder).

Layout (docs/app.md, "Conversations"):

    <home>/conversations/<folder>/<sub>/<id>.conversation.json   one chat (folders are real directories)
    <home>/conversations/<folder>/<id>.files/                    the chat's attached files, beside it
    <home>/conversations/.trash/<entry>/                         deleted chats and folders (trash module)

Ids are the server's own (`[A-Za-z0-9][A-Za-z0-9_-]*`) and folder paths are `/`-separated names without
`.`/`..`, hidden names or separators, so no request can leave the folder; `contained_path` checks the
result again (symlinks). Every write is atomic. A file that cannot be read, or that a newer openlms wrote
(`version` above `FORMAT_VERSION`), is listed under `skipped` with the reason and never rewritten:
reading it is a conflict, moving or deleting it moves the file as it is.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from openlms.core.errors import (
    ConversationConflictError,
    ConversationNotFoundError,
    InvalidRequestError,
)
from openlms.core.fsutil import atomic_write_bytes, atomic_write_text, contained_path

FORMAT_VERSION: Final = 1
SUFFIX: Final = ".conversation.json"
FILES_SUFFIX: Final = ".files"
TRASH_DIR: Final = ".trash"
MAX_DEPTH: Final = 16
MAX_NAME: Final = 100
MAX_FILE_BYTES: Final = 64 * 1024 * 1024

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_BAD_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f/\\<>:"|?*\ud800-\udfff]')
MAX_NAME_BYTES: Final = 200  # file systems allow 255 bytes a name
MAX_PATH_BYTES: Final = 1024


def conversations_dir(home: Path) -> Path:
    return home / "conversations"


def new_id() -> str:
    """A fresh id: milliseconds since the epoch and 6 random hex digits (sorts by creation)."""
    return f"{time.time_ns() // 1_000_000}-{secrets.token_hex(3)}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_id(cid: str, param: str = "id") -> str:
    if not _ID.fullmatch(cid):
        raise InvalidRequestError(
            f"'{cid[:80]}' is not a conversation id (letters, digits, '-' and '_', up to 64).", param=param
        )
    return cid


def check_name(name: str, param: str = "name") -> str:
    """One folder name: 1..100 characters, no separators or control characters, not hidden."""
    if not name or len(name) > MAX_NAME or name.strip() != name or _too_long(name, MAX_NAME_BYTES):
        raise InvalidRequestError(
            f"A name must be 1 to {MAX_NAME} characters without leading or trailing spaces.",
            param=param,
        )
    if name.startswith(".") or name.endswith(SUFFIX) or _BAD_NAME_CHARS.search(name):
        raise InvalidRequestError(
            f"Name '{name}' is not allowed: it may not start with '.', end with '{SUFFIX}' or contain "
            '/ \\ < > : " | ? * or control characters.',
            param=param,
        )
    return name


def check_folder(folder: str, param: str = "folder") -> str:
    """A folder path relative to the conversations folder ('' is the top), normalised."""
    if folder in ("", "/"):
        return ""
    parts = folder.strip("/").split("/")
    if len(parts) > MAX_DEPTH or _too_long(folder, MAX_PATH_BYTES):
        raise InvalidRequestError(
            f"Folders nest at most {MAX_DEPTH} deep, in at most {MAX_PATH_BYTES} bytes.", param=param
        )
    for part in parts:
        check_name(part, param)
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A conversation file that is listed but not opened: its path (relative) and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Listing:
    folders: list[str]
    conversations: list[dict[str, Any]]
    skipped: list[Skipped]


class UnreadableConversation(Exception):
    """Why a conversation file cannot be opened (`newer` when a newer openlms wrote it)."""

    def __init__(self, reason: str, *, newer: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.newer = newer


def parse(text: str) -> dict[str, Any]:
    """A conversation file's content, checked for what this version needs to open it."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise UnreadableConversation(f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise UnreadableConversation("not a JSON object")
    version = doc.get("version")
    if "version" not in doc and isinstance(doc.get("name"), str) and isinstance(doc.get("messages"), list):
        raise UnreadableConversation("a chat in LM Studio's own format, which openlms does not open yet")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UnreadableConversation("no valid 'version' number")
    if version > FORMAT_VERSION:
        raise UnreadableConversation(
            f"written by a newer openlms (format version {version}; this one reads up to "
            f"{FORMAT_VERSION}): update openlms to open it",
            newer=True,
        )
    if not isinstance(doc.get("title"), str) or not isinstance(doc.get("messages"), list):
        raise UnreadableConversation("'title' or 'messages' is missing or of the wrong type")
    for key, kinds, default in _OPTIONAL:
        value = doc[key] = doc[key] if key in doc else default()
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise UnreadableConversation(f"'{key}' is of the wrong type")
    return doc


# The fields a file may leave out: (name, the types it may have, what makes its value when left out).
_NONE: Final = type(None)
_OPTIONAL: Final[tuple[tuple[str, type | tuple[type, ...], Callable[[], object]], ...]] = (
    ("createdAt", int, int),
    ("updatedAt", int, int),
    ("model", (str, _NONE), _NONE),
    ("systemPrompt", str, str),
    ("settings", dict, dict),
    ("branchedFrom", (dict, _NONE), _NONE),
)


def summary(cid: str, folder: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": cid,
        "folder": folder,
        "title": doc["title"],
        "createdAt": doc.get("createdAt"),
        "updatedAt": doc.get("updatedAt"),
        "model": doc.get("model"),
        "messageCount": len(doc["messages"]),
    }


class ConversationStore:
    """The conversation files under one root; every method takes validated ids and folder paths."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- paths -------------------------------------------------------------------------------------
    def folder_path(self, folder: str, *, must_exist: bool = True, param: str = "folder") -> Path:
        folder = check_folder(folder, param)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            path = contained_path(self.root, folder) if folder else self.root.resolve()
        except ValueError:
            raise InvalidRequestError(
                f"Folder '{folder}' leaves the conversations folder.", param=param
            ) from None
        if must_exist and not path.is_dir():
            raise ConversationNotFoundError(
                f"No folder '{folder}'. List folders with GET /api/v1/app/conversations.", param=param
            )
        return path

    def relative(self, path: Path) -> str:
        rel = path.relative_to(self.root.resolve()).as_posix()
        return "" if rel == "." else rel

    def walk(self) -> Iterator[tuple[str, Path]]:
        """('folder', dir) and ('chat', file) entries, depth first, skipping hidden names, symlinks and
        chats' file folders."""
        if not self.root.is_dir():
            return
        stack = [self.root.resolve()]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda entry: entry.name, reverse=True)
            except OSError:
                continue
            names = {entry.name for entry in entries}
            for entry in entries:
                if entry.name.startswith(".") or entry.is_symlink():
                    continue
                if entry.is_file() and entry.name.endswith(SUFFIX):
                    yield "chat", Path(entry.path)
                elif entry.is_dir() and not _is_files_dir(entry.name, names):
                    yield "folder", Path(entry.path)
                    stack.append(Path(entry.path))

    def locate(self, cid: str) -> Path:
        check_id(cid)
        name = cid + SUFFIX
        for kind, path in self.walk():
            if kind == "chat" and path.name == name:
                return path
        raise ConversationNotFoundError(
            f"No conversation '{cid}'. List them with GET /api/v1/app/conversations.", param="id"
        )

    # -- reading -----------------------------------------------------------------------------------
    def listing(self) -> Listing:
        folders: list[str] = []
        chats: list[dict[str, Any]] = []
        skipped: list[Skipped] = []
        for entry in self.entries():
            if isinstance(entry, str):
                folders.append(entry)
            elif isinstance(entry, Skipped):
                skipped.append(entry)
            else:
                chats.append(summary(*entry))
        folders.sort(key=str.casefold)
        chats.sort(key=lambda chat: -(chat["updatedAt"] or 0))
        return Listing(folders, chats, skipped)

    def entries(self) -> Iterator[str | Skipped | tuple[str, str, dict[str, Any]]]:
        """Every folder (its path), chat (id, folder, document) and unreadable file, in one pass."""
        for kind, path in self.walk():
            if kind == "folder":
                yield self.relative(path)
                continue
            cid = path.name[: -len(SUFFIX)]
            try:
                yield check_id(cid), self.relative(path.parent), parse(read_text(path))
            except (UnreadableConversation, InvalidRequestError) as exc:
                reason = exc.reason if isinstance(exc, UnreadableConversation) else "not an id openlms uses"
                yield Skipped(self.relative(path), reason)

    def read(self, cid: str) -> tuple[str, dict[str, Any]]:
        """(folder, document) of one conversation; a conflict when it cannot be opened."""
        path = self.locate(cid)
        try:
            return self.relative(path.parent), parse(read_text(path))
        except UnreadableConversation as exc:
            raise ConversationConflictError(
                f"Conversation '{cid}' cannot be opened: {exc.reason}. The file is kept as it is "
                f"({self.relative(path)}).",
                param="id",
            ) from None

    # -- writing -----------------------------------------------------------------------------------
    def write(self, folder: str, cid: str, doc: dict[str, Any]) -> None:
        path = self.folder_path(folder) / (check_id(cid) + SUFFIX)
        text = json.dumps(doc, ensure_ascii=False, indent=1)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequestError(
                "The conversation holds a lone UTF-16 surrogate (\\ud800-\\udfff), which UTF-8 cannot "
                "store: send valid Unicode text."
            ) from None
        atomic_write_text(path, text)

    def move(self, cid: str, folder: str) -> None:
        source = self.locate(cid)
        target_dir = self.folder_path(folder)
        if source.parent == target_dir:
            return
        for suffix in (SUFFIX, FILES_SUFFIX):
            if (target_dir / (cid + suffix)).exists():
                raise ConversationConflictError(f"'{cid}{suffix}' already exists in '{folder}'.")
        files = source.parent / (cid + FILES_SUFFIX)
        if files.is_dir():
            os.replace(files, target_dir / files.name)
        os.replace(source, target_dir / source.name)

    def copy_files(self, source_id: str, target_id: str) -> None:
        """Copy a chat's attached files (its `<id>.files` folder) for its duplicate `target_id`."""
        source = self.locate(source_id)
        files = source.parent / (source_id + FILES_SUFFIX)
        if files.is_dir():
            shutil.copytree(files, source.parent / (target_id + FILES_SUFFIX), symlinks=True)

    def save_file(self, cid: str, name: str, data: bytes) -> int:
        """Attach a file to a chat: `<id>.files/<name>` beside it (replaced when it exists)."""
        path = self.locate(cid)
        target = path.parent / (cid + FILES_SUFFIX) / check_name(name)
        atomic_write_bytes(target, data)
        return len(data)

    def file_path(self, cid: str, name: str) -> Path:
        path = self.locate(cid).parent / (cid + FILES_SUFFIX) / check_name(name)
        if not path.is_file() or path.is_symlink():
            raise ConversationNotFoundError(f"Conversation '{cid}' has no file '{name}'.", param="name")
        return path

    # -- folders -----------------------------------------------------------------------------------
    def create_folder(self, folder: str) -> str:
        folder = check_folder(folder, "path")
        if not folder:
            raise InvalidRequestError("Name the folder to create.", param="path")
        parent, _, name = folder.rpartition("/")
        target = self.folder_path(parent, must_exist=False, param="path") / name
        if target.exists() or _is_files_dir(name, _names(target.parent)):
            raise ConversationConflictError(f"Folder '{folder}' already exists.", param="path")
        try:
            target.mkdir(parents=True)
        except (FileExistsError, NotADirectoryError):
            raise ConversationConflictError(
                f"Folder '{folder}' cannot be made: a file has that name.", param="path"
            ) from None
        return folder

    def move_folder(self, folder: str, into: str, name: str | None = None) -> str:
        """Move (and/or rename) a folder into another one; refused into itself or one of its own."""
        folder = check_folder(folder, "path")
        if not folder:
            raise InvalidRequestError("The top folder cannot be moved or renamed.", param="path")
        into = check_folder(into, "into")
        new_name = check_name(name) if name is not None else None
        source = self.folder_path(folder, param="path")
        if into == folder or into.startswith(folder + "/"):
            raise InvalidRequestError(
                f"Folder '{folder}' cannot be moved into itself or one of its own folders ('{into}').",
                param="into",
            )
        new_name = new_name or source.name
        target = self.folder_path(into, param="into") / new_name
        if target == source:
            return folder
        moved = check_folder(f"{into}/{new_name}".lstrip("/"), "into")
        if moved.count("/") + _depth_below(source) >= MAX_DEPTH:
            raise InvalidRequestError(
                f"Folders nest at most {MAX_DEPTH} deep: '{folder}' holds folders too deep to go there.",
                param="into",
            )
        if target.exists() or _is_files_dir(new_name, _names(target.parent)):
            result = self.relative(target)
            raise ConversationConflictError(f"A folder '{result}' already exists.", param="name")
        os.replace(source, target)
        return self.relative(target)


def _depth_below(folder: Path) -> int:
    """How many levels of folders `folder` holds (0: none)."""
    base = len(folder.parts)
    return max((len(Path(top).parts) - base for top, _, _ in os.walk(folder)), default=0)


def _too_long(text: str, limit: int) -> bool:
    return len(text.encode("utf-8", "surrogatepass")) > limit


def _names(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


def _is_files_dir(name: str, siblings: set[str]) -> bool:
    return name.endswith(FILES_SUFFIX) and name[: -len(FILES_SUFFIX)] + SUFFIX in siblings


def read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UnreadableConversation(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableConversation(f"cannot be read ({exc})") from None
