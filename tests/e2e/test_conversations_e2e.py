"""The app's conversations API on the real server (`lms server start`), with httpx: chats and folders
written as files in the home's `conversations/`, a file from a newer openlms listed as skipped and kept,
delete and undo, and everything still there after the server restarts. No model is needed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.server import Server, free_port, start_server

pytestmark = pytest.mark.e2e

BASE = "/api/v1/app"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("conversations")
    (tmp / "models").mkdir()
    srv = start_server(tmp, tmp / "models", free_port())
    yield srv
    srv.lms("server", "stop", check=False)


def test_conversations_live_in_the_home_and_survive_a_restart(server: Server) -> None:
    folder = server.home / "conversations"
    folder.mkdir(parents=True, exist_ok=True)
    future = folder / "from-a-newer-openlms.conversation.json"
    future_text = json.dumps({"version": 99, "title": "Later", "messages": []})
    future.write_text(future_text)
    with server.http() as http:
        assert http.post(f"{BASE}/folders", json={"path": "Trips/Europe"}).status_code == 200
        chat = http.post(
            f"{BASE}/conversations",
            json={
                "folder": "Trips",
                "title": "Lisbon",
                "model": "smollm2-135m-instruct",
                "systemPrompt": "You are a travel guide.",
                "messages": [
                    {"role": "user", "content": "What should I see in Lisbon?"},
                    {"role": "assistant", "content": "The trams.", "stats": {"stopReason": "eosFound"}},
                ],
            },
        ).json()
        on_disk = json.loads((folder / "Trips" / f"{chat['id']}.conversation.json").read_text())
        assert on_disk["title"] == "Lisbon" and on_disk["messages"][1]["content"] == "The trams."
        moved = http.post(f"{BASE}/conversations/{chat['id']}/move", json={"folder": "Trips/Europe"})
        assert moved.json()["folder"] == "Trips/Europe"
        copy = http.post(f"{BASE}/conversations/{chat['id']}/duplicate").json()
        hits = http.get(f"{BASE}/conversations/search", params={"q": "TRAMS"}).json()["results"]
        assert {hit["id"] for hit in hits} == {chat["id"], copy["id"]}
        trashed = http.delete(f"{BASE}/conversations/{copy['id']}").json()
        assert http.get(f"{BASE}/conversations/{copy['id']}").status_code == 404
        assert http.post(f"{BASE}/trash/{trashed['id']}/restore").status_code == 200
        bad = http.post(
            f"{BASE}/conversations", content=b'{"settings": {"note": "bad \\ud800"}}', headers=JSON
        )
        assert bad.status_code == 400 and "surrogate" in bad.json()["error"]["message"]
        before = http.get(f"{BASE}/conversations").json()
    assert before["folders"] == ["Trips", "Trips/Europe"]
    assert {c["id"] for c in before["conversations"]} == {chat["id"], copy["id"]}
    assert [s["path"] for s in before["skipped"]] == [future.name] and "newer" in before["skipped"][0][
        "reason"
    ]

    server.lms("server", "stop")
    server.lms("server", "start", "--port", str(server.port), timeout=60)
    with server.http() as http:
        after = http.get(f"{BASE}/conversations").json()
        reopened = http.get(f"{BASE}/conversations/{chat['id']}").json()
        conflict = http.patch(f"{BASE}/conversations/from-a-newer-openlms", json={"title": "x"})
    assert after == before
    assert reopened["systemPrompt"] == "You are a travel guide." and len(reopened["messages"]) == 2
    assert conflict.status_code == 409 and "newer openlms" in conflict.json()["error"]["message"]
    assert future.read_text() == future_text  # never rewritten
