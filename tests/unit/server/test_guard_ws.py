"""The SDK's websockets behind the Host/Origin guard and the connection limit (starlette's TestClient)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from openlms.engine.fake import FakeBackend
from tests.unit.server.conftest import make_app

NAMESPACES = ["llm", "system", "files", "embedding", "repository"]
AUTH = {"authVersion": 1, "clientIdentifier": "guard-test", "clientPasskey": "made-up"}


@pytest.fixture
def app_client(home: Path, fake: FakeBackend) -> Iterator[TestClient]:
    with TestClient(make_app(home, fake, allowed_hosts=["testserver"], max_ws_clients=2)) as client:
        yield client


def denied(client: TestClient, url: str, **headers: str) -> WebSocketDenialResponse:
    with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect(url, headers=headers):
        pass
    return refused.value


def authenticates(client: TestClient, url: str, **headers: str) -> bool:
    with client.websocket_connect(url, headers=headers) as ws:
        ws.send_json(AUTH)
        reply: dict[str, Any] = ws.receive_json()
    return reply == {"success": True}


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_a_cross_origin_websocket_is_refused(app_client: TestClient, namespace: str) -> None:
    refused = denied(app_client, f"/{namespace}", origin="http://evil.example")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "origin_not_allowed"
    assert authenticates(app_client, f"/{namespace}")  # no Origin: a script or the SDK


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_a_rebinding_host_websocket_is_refused(app_client: TestClient, namespace: str) -> None:
    refused = denied(app_client, f"ws://evil.example:41343/{namespace}")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "host_not_allowed"


def test_the_servers_own_page_may_open_a_websocket(app_client: TestClient) -> None:
    assert authenticates(app_client, "ws://localhost:1234/system", origin="http://localhost:1234")
    assert (
        denied(app_client, "ws://localhost:1234/system", origin="http://localhost:41343").status_code == 403
    )


def test_websockets_beyond_the_limit_are_refused_until_one_closes(app_client: TestClient) -> None:
    with app_client.websocket_connect("/system"), app_client.websocket_connect("/llm"):
        refused = denied(app_client, "/files")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_clients"
    assert authenticates(app_client, "/files")  # the count went back down
