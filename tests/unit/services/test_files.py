"""The files service over its disk store: bounds, oldest-first eviction, restarts, hostile names, corrupt
entries."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from openlms.core.errors import InvalidRequestError
from openlms.services.files import FileService
from openlms.store.uploads import STALE_SECONDS, UPLOADS_DIR, UploadStore, client_dir_name
from tests.support.documents import long_docx

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / UPLOADS_DIR


def service(root: Path, **limits: int) -> FileService:
    return FileService(UploadStore(root), **limits)


def files_on_disk(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_uploads_live_in_the_home_with_metadata(tmp_path: Path) -> None:
    files = FileService.in_home(tmp_path)
    stored = files.put("client-1", "notes.txt", b"hello")
    assert (stored.file_type, stored.size_bytes) == ("text/plain", 5) and stored.identifier.endswith(".txt")
    folder = tmp_path / "openlms" / "uploads" / client_dir_name("client-1")
    assert (folder / stored.identifier).read_bytes() == b"hello"
    meta = json.loads((folder / f"{stored.identifier}.json").read_text())
    assert meta["name"] == "notes.txt" and meta["fileType"] == "text/plain" and meta["sizeBytes"] == 5
    assert files.get("client-1", stored.identifier) == stored
    assert files.get("client-2", stored.identifier) is None  # uploads belong to their client
    assert files.read("client-1", stored.identifier) == b"hello"


@pytest.mark.parametrize(
    ("data", "file_type"),
    [
        (PNG, "image"),
        (b"\xff\xd8\xff\xe0", "image"),
        (b"%PDF-1.7", "application/pdf"),
        (b"\xff\xfe", "unknown"),
    ],
)
def test_the_type_comes_from_the_bytes(root: Path, data: bytes, file_type: str) -> None:
    assert service(root).put("c", "whatever.txt", data).file_type == file_type


def test_uploads_are_bounded_in_total_bytes(root: Path) -> None:
    files = service(root, max_total_bytes=100)
    first = files.put("a", "1.txt", b"x" * 60)
    files.put("b", "2.txt", b"y" * 60)  # over budget: client a's files go first
    assert files.get("a", first.identifier) is None and files.total_bytes == 60
    kept = files.put("b", "3.txt", b"z" * 30)
    assert files.get("b", kept.identifier) is not None and files.total_bytes == 90
    newest = files.put("b", "4.txt", b"w" * 30)  # then the client's own oldest
    assert [p.name for p in files_on_disk(root) if not p.name.endswith(".json")] == sorted(
        [kept.identifier, newest.identifier]
    )
    assert files.total_bytes == 60


def test_files_per_client_and_clients_are_bounded_oldest_first(root: Path) -> None:
    files = service(root, max_files_per_client=2, max_clients=2)
    one, two, three = (files.put("a", f"{n}.txt", b"x") for n in range(3))
    assert files.get("a", one.identifier) is None
    assert files.get("a", two.identifier) and files.get("a", three.identifier)
    b = files.put("b", "b.txt", b"b")
    files.put("a", "again.txt", b"a")  # a uploaded last: b is now the least recent client
    files.put("c", "c.txt", b"c")
    assert files.get("b", b.identifier) is None and files.get("a", three.identifier)
    assert len(files_on_disk(root)) == 2 * 3  # a's two files and c's one, each with its metadata


def test_uploads_survive_a_restart_with_their_order(root: Path) -> None:
    files = service(root, max_total_bytes=100)
    old = files.put("a", "old.txt", b"o" * 40)
    text = files.put("b", "notes.txt", b"alpha beta")
    image = files.put("b", "dot.png", PNG)
    restarted = service(root, max_total_bytes=100)
    assert restarted.total_bytes == files.total_bytes == 40 + 10 + len(PNG)
    assert restarted.get("b", image.identifier) == image
    assert restarted.document("b", "notes.txt", text.identifier) == b"alpha beta"
    restarted.put("c", "big.txt", b"n" * 40)  # over budget: a uploaded least recently, so a goes
    assert restarted.get("a", old.identifier) is None and restarted.get("b", text.identifier)
    assert service(root, max_total_bytes=100).get("a", old.identifier) is None  # gone from disk too


def test_a_restart_with_smaller_bounds_drops_the_oldest(root: Path) -> None:
    files = service(root)
    identifiers = [files.put("a", f"{n}.txt", b"x" * 10).identifier for n in range(4)]
    smaller = service(root, max_total_bytes=25)
    assert [smaller.get("a", i) is not None for i in identifiers] == [False, False, True, True]
    assert smaller.total_bytes == 20 and len(files_on_disk(root)) == 4


@pytest.mark.parametrize("client", ["../../escape", "/etc", "a/../../b", "..", "", "x\0y", "\ud800"])
def test_client_identifiers_never_become_paths(tmp_path: Path, client: str) -> None:
    root = tmp_path / "home" / UPLOADS_DIR
    files = service(root)
    stored = files.put(client, "notes.txt", b"hi")
    assert {p.parent for p in files_on_disk(tmp_path)} == {root / client_dir_name(client)}
    assert service(root).get(client, stored.identifier) == stored


@pytest.mark.parametrize(
    "identifier", ["../outside.txt", "/etc/passwd", "..", "", "1 - 00000000.txt/../../../outside.txt"]
)
def test_file_identifiers_cannot_escape(tmp_path: Path, identifier: str) -> None:
    root = tmp_path / UPLOADS_DIR
    (tmp_path / "outside.txt").write_text("secret")
    files = service(root)
    files.put("c", "notes.txt", b"hi")
    assert files.get("c", identifier) is None and files.read("c", identifier) is None
    assert UploadStore(root).read("c", identifier) is None
    with pytest.raises(InvalidRequestError, match="prepare_file"):
        files.document("c", "x.txt", identifier)
    UploadStore(root).delete("c", identifier)
    assert (tmp_path / "outside.txt").exists()


def test_a_planted_symlink_is_not_an_upload(tmp_path: Path, root: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    folder = root / client_dir_name("c")
    folder.mkdir(parents=True)
    name = "1700000000000 - 0123abcd.txt"
    (folder / name).symlink_to(tmp_path / "secret.txt")
    meta = {"client": "c", "name": "s.txt", "fileType": "text/plain", "sizeBytes": 6, "createdNs": 1}
    (folder / f"{name}.json").write_text(json.dumps(meta))
    assert service(root).get("c", name) is None


def test_a_corrupt_entry_is_skipped_and_removed(root: Path) -> None:
    files = service(root)
    good = files.put("a", "good.txt", b"good")
    broken = files.put("a", "broken.txt", b"broken")
    resized = files.put("a", "resized.txt", b"resized")
    moved = files.put("b", "moved.txt", b"moved")
    folder = root / client_dir_name("a")
    (folder / f"{broken.identifier}.json").write_text("{not json")
    (folder / resized.identifier).write_bytes(b"other size")
    other = root / client_dir_name("b") / f"{moved.identifier}.json"
    os.replace(other, folder / other.name)  # metadata of b's file under a's folder
    restarted = service(root)
    assert restarted.get("a", good.identifier) == good
    assert all(restarted.get(c, f.identifier) is None for c in "ab" for f in (broken, resized, moved))
    assert restarted.total_bytes == len(b"good")
    assert not (folder / broken.identifier).exists() and not (folder / resized.identifier).exists()


def test_unreadable_roots_and_leftovers_never_crash(tmp_path: Path, root: Path) -> None:
    root.parent.mkdir(parents=True)
    root.write_text("a file where the folder should be")
    assert service(root).total_bytes == 0
    root.unlink()
    files = service(root)
    stored = files.put("c", "notes.txt", b"hi")
    folder = root / client_dir_name("c")
    (root / "stray.txt").write_text("not ours")
    stale, fresh = folder / "1 - 00000000.txt", folder / ".x.tmp"
    stale.write_text("no metadata")
    fresh.write_text("a write in progress")
    old = time.time() - STALE_SECONDS - 10
    os.utime(stale, (old, old))
    assert service(root).get("c", stored.identifier) == stored
    assert not stale.exists() and fresh.exists() and (root / "stray.txt").exists()
    (folder / stored.identifier).unlink()  # gone behind the service's back
    with pytest.raises(InvalidRequestError, match="prepare_file"):
        files.document("c", "notes.txt", stored.identifier)
    assert files.total_bytes == 0


def test_a_chat_document_is_any_upload_but_an_image(root: Path) -> None:
    files = service(root)
    text = files.put("c", "notes.txt", "héllo".encode())
    pdf = files.put("c", "report.pdf", b"%PDF-1.7 ...")
    image = files.put("c", "dot.png", PNG)
    assert files.document("c", "notes.txt", text.identifier) == "héllo".encode()
    assert (pdf.file_type, files.document("c", "report.pdf", pdf.identifier)) == (
        "application/pdf",
        b"%PDF-1.7 ...",
    )
    assert files.put("c", "report.docx", long_docx()).file_type == "application/word"
    with pytest.raises(InvalidRequestError, match=r"image 'dot.png' cannot be used as a document"):
        files.document("c", "dot.png", image.identifier)
    with pytest.raises(InvalidRequestError, match="was not uploaded by this client"):
        files.document("other", "notes.txt", text.identifier)
