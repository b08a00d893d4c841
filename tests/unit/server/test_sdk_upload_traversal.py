"""SDK uploads and the files a chat names, over the real websocket protocol (issue 10 §3, path traversal):
an upload's name never becomes a path (the server picks the identifier), and a file part whose identifier
is a path (`..`, absolute, encoded) or another client's upload is refused with a channelError; nothing
outside the uploads folder reaches the prompt."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from openlms.engine.fake import FakeBackend
from tests.unit.server.conftest import make_app
from tests.unit.server.test_sdk_protocol import AUTH, CHAT, Socket, connect, load, query

SECRET = "the secret outside the uploads folder"
IDENTIFIER = re.compile(r"[0-9]+ - [0-9a-f]{8}\.[a-z0-9]+")


@pytest.fixture
def app_client(home: Path, fake: FakeBackend) -> Iterator[TestClient]:
    with TestClient(make_app(home, fake)) as client:
        yield client


@pytest.fixture
def secret(home: Path) -> Path:
    path = home.parent / f"{home.name}-secret.txt"
    path.write_text(SECRET)
    return path


def upload(client: TestClient, name: str, data: bytes, auth: dict[str, Any] = AUTH) -> dict[str, Any]:
    content = base64.b64encode(data).decode()
    for files in connect(client, "files", auth):
        reply = files.call("uploadFileBase64", {"name": name, "contentBase64": content})
    assert reply["type"] == "rpcResult", reply
    return dict(reply["result"])


def file_part(identifier: str, name: str = "notes.txt") -> dict[str, Any]:
    return {"type": "file", "name": name, "identifier": identifier, "sizeBytes": 1, "fileType": "text/plain"}


def predict_with(sock: Socket, part: dict[str, Any]) -> dict[str, Any]:
    load(sock)
    history = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Read it"}, part]}]}
    parameter = {"modelSpecifier": query(CHAT), "predictionConfigStack": {"layers": []}, "history": history}
    return sock.channel("predict", parameter)[-1]


@pytest.mark.parametrize(
    "name",
    [
        "../../../../planted.txt",
        "/tmp/planted.txt",
        "..\\..\\planted.txt",
        "%2e%2e%2fplanted.txt",
        "a/b/c.txt",
    ],
)
def test_an_upload_name_never_becomes_a_path(app_client: TestClient, home: Path, name: str) -> None:
    result = upload(app_client, name, b"planted text")
    assert IDENTIFIER.fullmatch(result["identifier"]), result
    uploads = (home / "openlms" / "uploads").resolve()
    stored = [p for p in uploads.rglob("*") if p.is_file() and not p.name.endswith(".json")]
    assert [p.name for p in stored] == [result["identifier"]]
    assert not any(p.name == "planted.txt" for p in home.parent.rglob("planted.txt"))
    assert not Path("/tmp/planted.txt").exists()


def test_file_parts_naming_paths_or_other_clients_uploads_are_refused(
    app_client: TestClient, fake: FakeBackend, home: Path, secret: Path
) -> None:
    theirs = upload(app_client, "theirs.txt", SECRET.encode(), AUTH | {"clientIdentifier": "client-2"})
    mine = upload(app_client, "mine.txt", b"my own notes")
    hostile = [
        str(secret),
        f"../../../{secret.name}",
        f"../../../../../../../..{secret}",
        f"{mine['identifier']}/../../../../{secret.name}",
        f"..%2F..%2F..%2F{secret.name}",
        f"{mine['identifier']}.json",
        theirs["identifier"],  # a real upload, of another client
    ]
    for sock in connect(app_client, "llm"):
        for identifier in hostile:
            frame = predict_with(sock, file_part(identifier))
            assert frame["type"] == "channelError", (identifier, frame)
            assert SECRET not in str(frame)
            templated = apply_template(sock, file_part(identifier))
            assert templated["type"] == "rpcError" or SECRET not in str(templated), (identifier, templated)
        assert predict_with(sock, file_part(mine["identifier"]))["type"] == "channelClose"
    assert len(fake.requests) == 1  # only the legitimate prediction reached the model


def apply_template(sock: Socket, part: dict[str, Any]) -> dict[str, Any]:
    """applyPromptTemplate with the file part (templates skip files: it must not fail open either)."""
    history = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Read it"}, part]}]}
    parameter = {
        "specifier": query(CHAT),
        "history": history,
        "predictionConfigStack": {"layers": []},
        "opts": {},
    }
    return sock.call("applyPromptTemplate", parameter)
