"""The SDK's file parts as documents of the chat, over the fake engine: a file that cannot be read fails the
prediction with the reason (the SDK raises it), before anything reaches the model; a file in an earlier
message is a document of the chat too. (Retrieval with the real models: tests/e2e/test_documents_e2e.py.)"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from openlms.engine.fake import FakeBackend
from tests.support.documents import long_docx
from tests.unit.server.conftest import make_app
from tests.unit.server.test_sdk_protocol import CHAT, Socket, connect, load, query


@pytest.fixture
def sockets(home: Path, fake: FakeBackend) -> Iterator[tuple[Socket, Socket]]:
    with TestClient(make_app(home, fake)) as client:
        for files in connect(client, "files"):
            for llm in connect(client, "llm"):
                yield files, llm


def upload(files: Socket, name: str, data: bytes) -> dict[str, Any]:
    content = base64.b64encode(data).decode()
    uploaded: dict[str, Any] = files.call("uploadFileBase64", {"name": name, "contentBase64": content})[
        "result"
    ]
    return {"type": "file", "name": name, **uploaded}


def ask(llm: Socket, *messages: dict[str, Any]) -> dict[str, Any]:
    load(llm)
    parameter = {
        "modelSpecifier": query(CHAT),
        "predictionConfigStack": {"layers": []},
        "history": {"messages": list(messages)},
    }
    return llm.channel("predict", parameter)[-1]


def user(text: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}, *parts]}


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("report.docx", b"PK\x03\x04 not a zip", "'report.docx' could not be read"),
        ("scan.pdf", b"%PDF-1.7\n\x00\x01", "'scan.pdf' could not be read"),
        ("sheet.xlsx", b"PK\x03\x04", "Supported types: .pdf, .docx, .txt, .md"),
    ],
)
def test_an_unreadable_file_is_the_predictions_error(
    sockets: tuple[Socket, Socket], fake: FakeBackend, name: str, data: bytes, reason: str
) -> None:
    files, llm = sockets
    frame = ask(llm, user("Summarise", upload(files, name, data)))
    assert frame["type"] == "channelError" and reason in frame["error"]["title"]
    assert fake.requests == []  # nothing reached the model


def test_a_docx_in_an_earlier_message_is_a_document_of_the_chat(
    sockets: tuple[Socket, Socket], fake: FakeBackend
) -> None:
    files, llm = sockets
    part = upload(files, "report.docx", long_docx())
    assert part["fileType"] == "application/word"
    plain = ask(llm, user("Hello"), {"role": "assistant", "content": "Hi."}, user("What is the code?"))
    assert plain["type"] == "channelClose"
    without = len(fake.requests[-1].prompt)
    with_file = ask(
        llm, user("Hello", part), {"role": "assistant", "content": "Hi."}, user("What is the code?")
    )
    assert with_file["type"] == "channelClose"
    assert len(fake.requests[-1].prompt) > without + 500  # the document's words (in full) reached the model
