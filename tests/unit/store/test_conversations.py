"""The app's conversation files (store/conversations.py, store/conversation_trash.py through
services/conversations.py): layout, atomic writes, paths that would leave the folder, files from a newer
or broken version kept and listed as skipped, move / duplicate (attached files too) / delete and undo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from openlms.core.errors import (
    ConversationConflictError,
    ConversationNotFoundError,
    InvalidRequestError,
)
from openlms.services.conversations import ConversationService
from openlms.store.conversations import SUFFIX


@pytest.fixture
def service(tmp_path: Path) -> ConversationService:
    return ConversationService(tmp_path)


def root(service: ConversationService) -> Path:
    return service.store.root


def hello(content: str = "What is the capital of France?") -> dict[str, object]:
    return {"title": "Capitals", "messages": [{"role": "user", "content": content}]}


def test_a_chat_is_one_json_file_in_home_conversations(tmp_path: Path, service: ConversationService) -> None:
    chat = service.create(hello() | {"model": "smollm2", "settings": {"temperature": 0.2}})
    path = tmp_path / "conversations" / f"{chat.id}{SUFFIX}"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["version"] == 1 and doc["title"] == "Capitals" and doc["model"] == "smollm2"
    assert doc["settings"] == {"temperature": 0.2} and doc["messages"][0]["role"] == "user"
    assert doc["createdAt"] == doc["updatedAt"] and isinstance(doc["createdAt"], int)
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_a_failed_write_keeps_the_old_file(
    service: ConversationService, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = service.create(hello())
    path = root(service) / f"{chat.id}{SUFFIX}"
    before = path.read_bytes()

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        service.update(chat.id, {"title": "Renamed"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]  # the temporary file is gone


def test_update_replaces_only_the_fields_given(service: ConversationService) -> None:
    chat = service.create(hello() | {"systemPrompt": "Be brief."})
    updated = service.update(chat.id, {"title": "Renamed", "version": 99, "createdAt": 1})
    assert updated.document["title"] == "Renamed" and updated.document["systemPrompt"] == "Be brief."
    assert updated.document["version"] == 1 and updated.document["createdAt"] == chat.document["createdAt"]
    assert service.get(chat.id).document["title"] == "Renamed"


@pytest.mark.parametrize(
    "folder", ["..", "../x", "a/../../x", "/etc/..", ".trash", "a/.hidden", "a\\b", "a\x00"]
)
def test_folder_paths_that_leave_the_folder_are_refused(service: ConversationService, folder: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        service.create(hello(), folder)
    assert info.value.param == "folder"


@pytest.mark.parametrize("cid", ["../x", "a/b", "", ".trash", "x" * 65, "a b"])
def test_ids_that_are_not_ours_are_refused(service: ConversationService, cid: str) -> None:
    with pytest.raises(InvalidRequestError):
        service.get(cid)


def test_a_symlink_out_of_the_folder_is_not_followed(tmp_path: Path, service: ConversationService) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root(service).mkdir(parents=True, exist_ok=True)
    (root(service) / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidRequestError):
        service.create(hello(), "link")
    assert list(outside.iterdir()) == [] and "link" not in service.listing().folders


def test_newer_and_broken_files_are_listed_as_skipped_and_kept(service: ConversationService) -> None:
    service.create(hello())
    newer = root(service) / f"from-the-future{SUFFIX}"
    broken = root(service) / f"half{SUFFIX}"
    newer_text = json.dumps({"version": 7, "title": "Future", "messages": [], "shape": "new"})
    newer.write_text(newer_text)
    broken.write_text('{"version": 1, "title": "Ha')
    listing = service.listing()
    assert len(listing.conversations) == 1
    reasons = {item.path: item.reason for item in listing.skipped}
    assert "newer openlms" in reasons[newer.name] and "JSON" in reasons[broken.name]
    with pytest.raises(ConversationConflictError, match="newer openlms"):
        service.get("from-the-future")
    with pytest.raises(ConversationConflictError):
        service.update("from-the-future", {"title": "Overwritten"})
    with pytest.raises(ConversationConflictError):
        service.duplicate("half")
    assert newer.read_text() == newer_text  # never rewritten
    entry = service.delete("from-the-future")  # a delete moves it whole, and the undo brings it back
    assert not newer.exists()
    service.restore(entry["id"])
    assert newer.read_text() == newer_text


def test_folders_nest_and_chats_move_between_them(service: ConversationService) -> None:
    assert service.create_folder("Work/Drafts") == "Work/Drafts"
    chat = service.create(hello(), "Work")
    moved = service.move(chat.id, "Work/Drafts")
    assert moved.folder == "Work/Drafts" and moved.document["title"] == "Capitals"
    listing = service.listing()
    assert listing.folders == ["Work", "Work/Drafts"]
    assert [(c["id"], c["folder"]) for c in listing.conversations] == [(chat.id, "Work/Drafts")]
    with pytest.raises(ConversationNotFoundError):
        service.move(chat.id, "Nowhere")
    with pytest.raises(ConversationConflictError):
        service.create_folder("Work")


def test_a_folder_moves_into_another_but_never_into_itself(service: ConversationService) -> None:
    service.create_folder("A/B")
    service.create_folder("C")
    chat = service.create(hello(), "A/B")
    for into in ("A", "A/B"):
        with pytest.raises(InvalidRequestError, match="into itself"):
            service.move_folder("A", into, None)
    assert service.move_folder("A", "C", None) == "C/A"
    assert service.get(chat.id).folder == "C/A/B"
    assert service.move_folder("C/A", None, "Renamed") == "C/Renamed"
    service.create_folder("C/Other")
    with pytest.raises(ConversationConflictError):
        service.move_folder("C/Other", None, "Renamed")
    assert service.listing().folders == ["C", "C/Other", "C/Renamed", "C/Renamed/B"]


def test_duplicate_copies_the_messages_and_the_attached_files(service: ConversationService) -> None:
    service.create_folder("Work")
    chat = service.create(hello(), "Work")
    service.save_file(chat.id, "notes.txt", b"attached bytes")
    copy = service.duplicate(chat.id)
    assert copy.id != chat.id and copy.folder == "Work" and copy.document["title"] == "Capitals (copy)"
    assert copy.document["messages"] == chat.document["messages"]
    assert service.file_path(copy.id, "notes.txt").read_bytes() == b"attached bytes"
    service.save_file(copy.id, "notes.txt", b"changed")
    assert service.file_path(chat.id, "notes.txt").read_bytes() == b"attached bytes"  # a real copy
    assert service.listing().folders == ["Work"]  # the chats' file folders are not folders


def test_attached_file_names_cannot_leave_the_chat(service: ConversationService) -> None:
    chat = service.create(hello())
    for name in ("../x", ".hidden", "a/b", ""):
        with pytest.raises(InvalidRequestError):
            service.save_file(chat.id, name, b"x")
    with pytest.raises(ConversationNotFoundError):
        service.file_path(chat.id, "missing.txt")


def test_delete_moves_to_the_trash_and_restore_undoes_it(service: ConversationService) -> None:
    service.create_folder("Work")
    chat = service.create(hello(), "Work")
    service.save_file(chat.id, "a.txt", b"a")
    entry = service.delete(chat.id)
    assert entry["kind"] == "conversation" and entry["folder"] == "Work" and entry["title"] == "Capitals"
    assert service.listing().conversations == []
    with pytest.raises(ConversationNotFoundError):
        service.get(chat.id)
    assert [e["id"] for e in service.trash_entries()] == [entry["id"]]
    service.delete_folder("Work")  # the folder it was in is gone too: restore makes it again
    service.restore(entry["id"])
    assert service.get(chat.id).folder == "Work"
    assert service.file_path(chat.id, "a.txt").read_bytes() == b"a"
    assert len(service.trash_entries()) == 1  # the folder's entry


def test_a_deleted_folder_comes_back_with_its_chats(service: ConversationService) -> None:
    chat = service.create(hello(), "")
    service.create_folder("Old/Inner")
    inner = service.create(hello("inner"), "Old/Inner")
    entry = service.delete_folder("Old")
    assert entry["kind"] == "folder" and entry["name"] == "Old"
    assert [c["id"] for c in service.listing().conversations] == [chat.id]
    service.create_folder("Old")
    with pytest.raises(ConversationConflictError, match="exists again"):
        service.restore(entry["id"])
    service.delete_folder("Old")
    restored = service.restore(entry["id"])
    assert restored["name"] == "Old" and service.get(inner.id).folder == "Old/Inner"
    purged = [e for e in service.trash_entries() if e["kind"] == "folder"]
    service.purge(purged[0]["id"])
    with pytest.raises(ConversationNotFoundError):
        service.restore(purged[0]["id"])


def test_search_finds_titles_and_message_text(service: ConversationService) -> None:
    by_title = service.create({"title": "Trip to Lisbon", "messages": []})
    by_text = service.create(hello("Tell me about LISBON trams, please"))
    service.create(hello("Something else"))
    results = {hit["id"]: hit for hit in service.search("lisbon")}
    assert set(results) == {by_title.id, by_text.id}
    assert results[by_title.id]["match"] == "title"
    assert results[by_text.id]["messageIndex"] == 0 and "LISBON" in results[by_text.id]["snippet"]
    assert service.search("nothing like this") == []
    with pytest.raises(InvalidRequestError):
        service.search("   ")


def test_a_lone_surrogate_is_refused_before_anything_is_written(service: ConversationService) -> None:
    with pytest.raises(InvalidRequestError, match="surrogate"):
        service.create(hello("bad \ud800 text"))
    assert service.listing().conversations == []


def test_folder_edge_cases_are_clear_errors_never_crashes(service: ConversationService) -> None:
    service.create_folder("A")
    assert service.move_folder("A", "", None) == "A"  # moved to where it is: nothing to do
    chat = service.create(hello(), "A")
    with pytest.raises(InvalidRequestError, match="end with"):
        service.create_folder(f"A/{chat.id}{SUFFIX}/B")  # never a folder under a chat's file
    deep = "/".join(f"d{level}" for level in range(15))  # 15 levels: one more fits, two do not
    service.create_folder(deep)
    service.create_folder("Two/Levels")
    with pytest.raises(InvalidRequestError, match="too deep") as info:
        service.move_folder("Two", deep, None)
    assert info.value.param == "into"
    assert service.move_folder("A", deep, None) == f"{deep}/A"
    assert service.get(chat.id).folder == f"{deep}/A"


def test_search_reads_each_file_once(service: ConversationService, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(20):
        service.create(hello(f"message {index}"))
    reads: list[Path] = []
    original = Path.read_text

    def counted(path: Path, *args: object, **kwargs: object) -> str:
        reads.append(path)
        return original(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counted)
    assert len(service.search("message 1")) == 11  # "message 1" and "message 10".."message 19"
    assert len(reads) == 20


def test_a_branch_keeps_the_messages_up_to_the_one_chosen(service: ConversationService) -> None:
    messages = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}]
    chat = service.create({"title": "Talk", "messages": [*messages, {"role": "user", "content": "three"}]})
    service.save_file(chat.id, "a.txt", b"a")
    branch = service.branch(chat.id, 1)
    assert branch.document["messages"] == messages and branch.document["title"] == "Talk (branch)"
    assert branch.document["branchedFrom"] == {"conversation": chat.id, "messageIndex": 1}
    assert service.file_path(branch.id, "a.txt").read_bytes() == b"a"
    assert len(service.get(chat.id).document["messages"]) == 3  # the original is unchanged
    with pytest.raises(InvalidRequestError) as info:
        service.branch(chat.id, 3)
    assert info.value.param == "messageIndex"


def test_an_lm_studio_chat_is_skipped_with_a_reason_that_says_so(service: ConversationService) -> None:
    root(service).mkdir(parents=True)
    lm_studio = {"name": "Old chat", "messages": [{"versions": [], "currentlySelected": 0}], "pinned": False}
    (root(service) / f"1700000000000{SUFFIX}").write_text(json.dumps(lm_studio))
    (skipped,) = service.listing().skipped
    assert "LM Studio's own format" in skipped.reason


def test_hand_edited_fields_of_the_wrong_type_make_the_file_skipped(service: ConversationService) -> None:
    root(service).mkdir(parents=True)
    minimal = {"version": 1, "title": "Short", "messages": []}
    (root(service) / f"minimal{SUFFIX}").write_text(json.dumps(minimal))
    (root(service) / f"odd{SUFFIX}").write_text(json.dumps(minimal | {"updatedAt": "yesterday"}))
    listing = service.listing()
    assert [(s.path, s.reason) for s in listing.skipped] == [
        (f"odd{SUFFIX}", "'updatedAt' is of the wrong type")
    ]
    doc = service.get("minimal").document  # the fields it left out have their defaults
    assert (doc["systemPrompt"], doc["settings"], doc["model"], doc["updatedAt"]) == ("", {}, None, 0)
