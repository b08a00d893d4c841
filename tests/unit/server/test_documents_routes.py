"""`POST /api/v1/app/documents/prepare` over the fake engine: a chat's attached text file goes in full into
its last user message, with the budget that decided it; a missing file, an unsupported one, a chat with no
user message and a remote client are clear errors. (Retrieval with the real embedding model: e2e.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from openlms.engine.fake import FakeBackend
from tests.unit.server.conftest import make_app

APP = "/api/v1/app"
CHAT = "tiny-chat"


async def chat_with(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    cid = str((await client.post(f"{APP}/conversations", json={"title": "docs"})).json()["id"])
    put = await client.put(f"{APP}/conversations/{cid}/files/{name}", content=data)
    assert put.status_code == 200, put.text
    return cid


def body(cid: str, files: list[str], **more: Any) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "What does the note say?"},
    ]
    return {"model": CHAT, "conversation": cid, "files": files, "messages": messages, **more}


async def test_a_short_text_file_goes_in_full_into_the_last_user_message(client: httpx.AsyncClient) -> None:
    cid = await chat_with(client, "note.md", b"# Note\nThe gate code is 5521.\n")
    response = await client.post(f"{APP}/documents/prepare", json=body(cid, ["note.md"], maxTokens=100))
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["mode"] == "full"
    assert "The gate code is 5521." in out["content"] and out["content"].endswith("What does the note say?")
    assert [(c["file"], c["page"]) for c in out["citations"]] == [("note.md", None)]
    budget = out["budget"]
    assert budget["context"] == 2048 and budget["answer"] == 100  # the chat's max_tokens kept for the answer
    assert 0 < budget["documents"] < budget["context"] - budget["chat"] - budget["answer"]


async def test_files_that_cannot_be_used_are_clear_errors(client: httpx.AsyncClient) -> None:
    cid = await chat_with(client, "sheet.xlsx", b"PK\x03\x04")
    missing = await client.post(f"{APP}/documents/prepare", json=body(cid, ["nope.pdf"]))
    assert missing.status_code == 404 and "nope.pdf" in missing.json()["error"]["message"]
    unsupported = await client.post(f"{APP}/documents/prepare", json=body(cid, ["sheet.xlsx"]))
    assert unsupported.status_code == 400 and ".docx" in unsupported.json()["error"]["message"]
    await client.put(f"{APP}/conversations/{cid}/files/scan.pdf", content=b"%PDF-1.4 not really")
    corrupt = await client.post(f"{APP}/documents/prepare", json=body(cid, ["scan.pdf"]))
    assert corrupt.status_code == 422 and "'scan.pdf' could not be read" in corrupt.json()["error"]["message"]


async def test_documents_need_a_user_message(client: httpx.AsyncClient) -> None:
    cid = await chat_with(client, "note.txt", b"text")
    only_system = {**body(cid, ["note.txt"]), "messages": [{"role": "system", "content": "x"}]}
    response = await client.post(f"{APP}/documents/prepare", json=only_system)
    assert response.status_code == 400 and "user message" in response.json()["error"]["message"]


async def test_remote_clients_are_refused(home: Path, fake: FakeBackend) -> None:
    app = make_app(home, fake, allowed_hosts=["*"])
    transport = httpx.ASGITransport(app=app, client=("192.168.1.20", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        response = await http.post(f"{APP}/documents/prepare", json=body("x", ["a.txt"]))
    assert response.status_code == 403 and "local machine" in response.json()["error"]["message"]


async def test_a_long_file_without_the_embedding_model_says_how_to_get_it(client: httpx.AsyncClient) -> None:
    loaded = await client.post("/api/v1/models/load", json={"model": CHAT, "context_length": 512})
    assert loaded.status_code == 200, loaded.text
    cid = await chat_with(client, "long.txt", b"word " * 2000)
    response = await client.post(f"{APP}/documents/prepare", json=body(cid, ["long.txt"]))
    assert response.status_code == 404, response.text  # retrieval needs the (absent) embedding model
    message = response.json()["error"]["message"]
    assert "lms get text-embedding-all-minilm-l6-v2" in message and "longer context" in message


async def test_a_duplicated_chat_keeps_its_documents(client: httpx.AsyncClient) -> None:
    cid = await chat_with(client, "note.txt", b"The gate code is 5521.")
    copy = (await client.post(f"{APP}/conversations/{cid}/duplicate", json={})).json()["id"]
    response = await client.post(f"{APP}/documents/prepare", json=body(copy, ["note.txt"]))
    assert response.status_code == 200 and "5521" in response.json()["content"]
