"""The app's conversations API (`/api/v1/app/...`) on the real app (fake engine) with httpx: every route,
its errors in the OpenAI shape (404, 400 naming the field, 409), and local-only access."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from openlms.engine.fake import FakeBackend
from tests.unit.server.conftest import make_app

BASE = "/api/v1/app"


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    return error


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{BASE}/conversations", json=body)
    assert response.status_code == 200, response.text
    chat: dict[str, Any] = response.json()
    return chat


async def test_create_get_update_and_list(client: httpx.AsyncClient, home: Path) -> None:
    messages = [
        {"role": "user", "content": "Add 2 and 3"},
        {
            "role": "assistant",
            "content": "",
            "reasoning": "Use the tool.",
            "toolCalls": [{"id": "c1", "name": "add", "arguments": {"a": 2, "b": 3}}],
            "stats": {"tokensPerSecond": 12.5, "stopReason": "toolCalls"},
            "appData": {"kept": True},  # a field the app adds is kept
        },
        {"role": "tool", "content": "5", "toolCallId": "c1"},
    ]
    chat = await create(client, title="Sums", messages=messages, model="smollm2", settings={"temperature": 0})
    assert chat["folder"] == "" and chat["version"] == 1 and chat["messages"][1]["appData"] == {"kept": True}
    assert (home / "conversations" / f"{chat['id']}.conversation.json").is_file()
    got = (await client.get(f"{BASE}/conversations/{chat['id']}")).json()
    assert got["messages"] == chat["messages"] and got["settings"] == {"temperature": 0}
    renamed = await client.patch(
        f"{BASE}/conversations/{chat['id']}", json={"title": "Renamed", "model": None}
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
    assert renamed.json()["model"] is None and renamed.json()["messages"] == chat["messages"]
    tree = (await client.get(f"{BASE}/conversations")).json()
    assert tree["skipped"] == [] and tree["folders"] == []
    assert [(c["id"], c["title"], c["messageCount"]) for c in tree["conversations"]] == [
        (chat["id"], "Renamed", 3)
    ]


async def test_bad_input_is_a_400_naming_the_field(client: httpx.AsyncClient) -> None:
    chat = await create(client, title="x")
    cases = [
        ("post", f"{BASE}/conversations", {"folder": "../outside"}, "folder"),
        ("post", f"{BASE}/conversations", {"messages": [{"role": "robot"}]}, None),
        ("patch", f"{BASE}/conversations/{chat['id']}", {"title": ""}, None),
        ("patch", f"{BASE}/conversations/{chat['id']}", {"version": 2}, None),
        ("post", f"{BASE}/folders", {"path": "a/../../b"}, "path"),
        ("post", f"{BASE}/folders/move", {"path": "x", "name": "a/b"}, None),
    ]
    for method, url, body, param in cases:
        error = error_of(await client.request(method, url, json=body), 400)
        assert error["type"] == "invalid_request_error"
        if param:
            assert error["param"] == param
    error = error_of(await client.get(f"{BASE}/conversations/..%5Cetc"), 400)
    assert error["param"] == "id"


async def test_unknown_ids_are_404s(client: httpx.AsyncClient) -> None:
    for method, url in (
        ("get", f"{BASE}/conversations/nope-1"),
        ("delete", f"{BASE}/conversations/nope-1"),
        ("post", f"{BASE}/trash/nope-1/restore"),
        ("get", f"{BASE}/conversations/nope-1/files/a.txt"),
    ):
        error = error_of(await client.request(method, url), 404)
        assert error["code"] in ("conversation_not_found",), error
    error = error_of(await client.post(f"{BASE}/conversations/nope-1/move", json={"folder": ""}), 404)
    assert "GET /api/v1/app/conversations" in error["message"]


async def test_folders_move_rename_and_conflicts(client: httpx.AsyncClient) -> None:
    for path in ("Work", "Home"):
        assert (await client.post(f"{BASE}/folders", json={"path": path})).json() == {"path": path}
    error_of(await client.post(f"{BASE}/folders", json={"path": "Work"}), 409)
    chat = await create(client, title="In work", folder="Work")
    moved = await client.post(f"{BASE}/folders/move", json={"path": "Work", "into": "Home"})
    assert moved.json() == {"path": "Home/Work"}
    error = error_of(
        await client.post(f"{BASE}/folders/move", json={"path": "Home", "into": "Home/Work"}), 400
    )
    assert error["param"] == "into"
    renamed = await client.post(f"{BASE}/folders/move", json={"path": "Home/Work", "name": "Job"})
    assert renamed.json() == {"path": "Home/Job"}
    back = await client.post(f"{BASE}/conversations/{chat['id']}/move", json={"folder": ""})
    assert back.status_code == 200 and back.json()["folder"] == ""
    assert (await client.get(f"{BASE}/conversations")).json()["folders"] == ["Home", "Home/Job"]


async def test_duplicate_delete_undo_and_search(client: httpx.AsyncClient) -> None:
    chat = await create(client, title="Paris", messages=[{"role": "user", "content": "The Eiffel tower?"}])
    put = await client.put(f"{BASE}/conversations/{chat['id']}/files/photo.png", content=b"\x89PNG bytes")
    assert put.json() == {"name": "photo.png", "sizeBytes": 10}
    copy = (await client.post(f"{BASE}/conversations/{chat['id']}/duplicate")).json()
    assert copy["id"] != chat["id"] and copy["title"] == "Paris (copy)"
    file = await client.get(f"{BASE}/conversations/{copy['id']}/files/photo.png")
    assert file.status_code == 200 and file.content == b"\x89PNG bytes"
    hits = (await client.get(f"{BASE}/conversations/search", params={"q": "eiffel"})).json()["results"]
    assert {hit["id"] for hit in hits} == {chat["id"], copy["id"]}
    assert all(hit["match"] == "message" and "Eiffel" in hit["snippet"] for hit in hits)
    entry = (await client.delete(f"{BASE}/conversations/{chat['id']}")).json()
    assert entry["kind"] == "conversation" and entry["name"] == chat["id"]
    error_of(await client.get(f"{BASE}/conversations/{chat['id']}"), 404)
    assert [e["id"] for e in (await client.get(f"{BASE}/trash")).json()["entries"]] == [entry["id"]]
    assert (await client.post(f"{BASE}/trash/{entry['id']}/restore")).status_code == 200
    assert (await client.get(f"{BASE}/conversations/{chat['id']}")).json()["title"] == "Paris"
    folder_entry = (await client.post(f"{BASE}/folders", json={"path": "Old"})).json()
    assert folder_entry == {"path": "Old"}
    gone = (await client.delete(f"{BASE}/folders", params={"path": "Old"})).json()
    assert (await client.delete(f"{BASE}/trash/{gone['id']}")).status_code == 200
    assert (await client.get(f"{BASE}/trash")).json()["entries"] == []


async def test_a_newer_file_is_skipped_with_a_notice_and_a_409_when_opened(
    client: httpx.AsyncClient, home: Path
) -> None:
    folder = home / "conversations"
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": 2, "title": "Future", "messages": []})
    (folder / "future-1.conversation.json").write_text(text)
    tree = (await client.get(f"{BASE}/conversations")).json()
    assert tree["conversations"] == [] and tree["skipped"][0]["path"] == "future-1.conversation.json"
    assert "newer openlms" in tree["skipped"][0]["reason"]
    error = error_of(await client.patch(f"{BASE}/conversations/future-1", json={"title": "x"}), 409)
    assert "kept as it is" in error["message"]
    assert (folder / "future-1.conversation.json").read_text() == text


@pytest.mark.parametrize("peer", ["192.168.1.20"])
async def test_remote_clients_are_refused(home: Path, fake: FakeBackend, peer: str) -> None:
    app = make_app(home, fake, allowed_hosts=["*"])
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        error = error_of(await http.get(f"{BASE}/conversations"), 403)
    assert "local machine" in error["message"]


async def test_every_route_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/conversations",
        "/conversations/search",
        "/conversations/{cid}",
        "/conversations/{cid}/move",
        "/conversations/{cid}/duplicate",
        "/conversations/{cid}/files/{name}",
        "/folders",
        "/folders/move",
        "/trash",
        "/trash/{entry_id}/restore",
        "/trash/{entry_id}",
    ):
        for operation in paths[BASE + path].values():
            assert "200" in operation["responses"] and "4XX" in operation["responses"]


async def test_null_for_a_field_that_has_a_value_is_a_400(client: httpx.AsyncClient) -> None:
    chat = await create(client, title="Kept")
    for field in ("title", "systemPrompt", "settings", "messages"):
        error = error_of(await client.patch(f"{BASE}/conversations/{chat['id']}", json={field: None}), 400)
        assert field in error["message"]
    assert (await client.get(f"{BASE}/conversations/{chat['id']}")).json()["title"] == "Kept"


async def test_branch_from_a_message(client: httpx.AsyncClient) -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    chat = await create(client, title="T", messages=messages)
    branch = await client.post(f"{BASE}/conversations/{chat['id']}/branch", json={"messageIndex": 0})
    assert branch.status_code == 200 and len(branch.json()["messages"]) == 1
    assert branch.json()["branchedFrom"] == {"conversation": chat["id"], "messageIndex": 0}
    error = error_of(
        await client.post(f"{BASE}/conversations/{chat['id']}/branch", json={"messageIndex": 5}), 400
    )
    assert error["param"] == "messageIndex"


async def test_if_updated_at_refuses_a_lost_update(client: httpx.AsyncClient) -> None:
    chat = await create(client, title="First")
    url = f"{BASE}/conversations/{chat['id']}"
    first = await client.patch(url, json={"title": "Tab A", "ifUpdatedAt": chat["updatedAt"]})
    assert first.status_code == 200
    assert first.json()["updatedAt"] > chat["updatedAt"]  # every write a new value, even in one ms
    error = error_of(await client.patch(url, json={"title": "Tab B", "ifUpdatedAt": chat["updatedAt"]}), 409)
    assert error["param"] == "ifUpdatedAt" and "read it again" in error["message"]
    assert (await client.get(url)).json()["title"] == "Tab A"
