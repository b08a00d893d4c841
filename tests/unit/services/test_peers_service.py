"""`services/peers.py`: a peer's state from a real HTTP server on loopback (started here), and link.json
changes through the service."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from openlms.core.errors import LinkConfigError, PeerNotFoundError
from openlms.core.settings import Settings
from openlms.services.peers import LinkService
from openlms.store.peers import make_peer

V1_MODELS = {
    "models": [
        {"key": "a", "loaded_instances": [{"id": "a"}, {"id": "a:2"}]},
        {"key": "b", "loaded_instances": []},
        {"key": "c", "loaded_instances": [{"id": "c", "status": "loading", "progress": 0.5}]},
    ]
}


@dataclass
class Peer:
    """What the stand-in peer answers, and the requests it saw."""

    status: int = 200
    body: bytes = json.dumps(V1_MODELS).encode()
    delay_s: float = 0.0
    seen: list[tuple[str, str | None]] = field(default_factory=list)


@pytest.fixture
def peer() -> Iterator[tuple[Peer, str]]:
    script = Peer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            script.seen.append((self.path, self.headers.get("Authorization")))
            time.sleep(script.delay_s)
            self.send_response(script.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(script.body)))
            self.end_headers()
            self.wfile.write(script.body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield script, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def service(tmp_path: Path, timeout_s: float = 3.0) -> LinkService:
    return LinkService(Settings(home=tmp_path / "home"), timeout_s=timeout_s)


async def test_online_openlms_peer_with_token(peer: tuple[Peer, str], tmp_path: Path) -> None:
    script, url = peer
    status = await service(tmp_path).check(make_peer("desk", url, token="s3cret-value"))
    assert status.state == "online" and status.reason is None
    assert status.loaded_models == ("a", "a:2")  # a model still loading is not listed
    assert status.latency_ms is not None and status.latency_ms >= 0
    assert script.seen == [("/api/v1/models", "Bearer s3cret-value")]
    assert "s3cret" not in json.dumps(status.to_json()) and status.to_json()["has_token"] is True


async def test_openai_engine_lists_its_models(peer: tuple[Peer, str], tmp_path: Path) -> None:
    script, url = peer
    script.body = json.dumps({"object": "list", "data": [{"id": "llama-3-70b"}]}).encode()
    status = await service(tmp_path).check(make_peer("vllm", url, engine="openai"))
    assert (status.state, status.loaded_models) == ("online", ("llama-3-70b",))
    assert script.seen == [("/v1/models", None)]


@pytest.mark.parametrize(
    ("token", "advice"), [(None, "requires a token: give one"), ("bad", "refused the token")]
)
async def test_unauthorized(peer: tuple[Peer, str], tmp_path: Path, token: str | None, advice: str) -> None:
    script, url = peer
    script.status, script.body = 401, b'{"error": {"message": "Unauthorized"}}'
    status = await service(tmp_path).check(make_peer("desk", url, token=token))
    assert status.state == "unauthorized"
    assert status.reason is not None and f"peer 'desk' ({url}) answered HTTP 401" in status.reason
    assert advice in status.reason and "--token" in status.reason


async def test_forbidden_passes_the_peers_message_on(peer: tuple[Peer, str], tmp_path: Path) -> None:
    script, url = peer
    script.status, script.body = 403, b'{"error": {"message": "Host not allowed: add it to allowed_hosts"}}'
    status = await service(tmp_path).check(make_peer("desk", url, token="t"))
    assert status.state == "unauthorized"
    assert (
        status.reason
        == f"peer 'desk' ({url}) refused the request (HTTP 403: Host not allowed: add it to allowed_hosts)"
    )


async def test_other_answers_are_errors_with_the_peers_message(
    peer: tuple[Peer, str], tmp_path: Path
) -> None:
    script, url = peer
    script.status, script.body = 500, b'{"error": {"message": "engine on fire"}}'
    status = await service(tmp_path).check(make_peer("desk", url))
    assert (
        status.state == "error" and status.reason == f"peer 'desk' ({url}) answered HTTP 500: engine on fire"
    )
    script.status, script.body = 200, b"<html>hello</html>"
    status = await service(tmp_path).check(make_peer("desk", url))
    assert status.state == "error" and "did not answer as an openlms server" in (status.reason or "")


async def test_slow_peer_is_offline_after_the_timeout(peer: tuple[Peer, str], tmp_path: Path) -> None:
    script, url = peer
    script.delay_s = 2.0
    status = await service(tmp_path, timeout_s=0.2).check(make_peer("desk", url))
    assert status.state == "offline"
    assert status.reason == f"peer 'desk' ({url}) did not answer within 0.2 s"


async def test_closed_port_is_offline(tmp_path: Path) -> None:
    status = await service(tmp_path).check(make_peer("gone", "http://127.0.0.1:1"))
    assert status.state == "offline"
    assert (status.reason or "").startswith("Cannot reach peer 'gone' (http://127.0.0.1:1): ")


async def test_config_changes_and_status(peer: tuple[Peer, str], tmp_path: Path) -> None:
    _, url = peer
    links = service(tmp_path)
    _, created = await links.put_peer("desk", url, "openlms", None)
    assert created
    _, created = await links.put_peer("desk", url + "/", "openlms", "t")
    assert not created
    await links.update(enabled=True, device_name="laptop", preferred_device="desk")
    status = await links.status()
    assert status["device_name"] == "laptop" and status["enabled"] is True
    assert status["preferred_device"] == "desk" and status["routing"] is False
    [desk] = status["peers"]
    assert desk["name"] == "desk" and desk["state"] == "online" and desk["has_token"] is True
    with pytest.raises(PeerNotFoundError):
        await links.update(preferred_device="nowhere")
    with pytest.raises(LinkConfigError, match="Invalid device name"):
        await links.update(device_name="my laptop")
    with pytest.raises(LinkConfigError, match="'desk' is a peer's name"):
        await links.update(device_name="desk")
    with pytest.raises(LinkConfigError, match="'laptop' is this device's name"):
        await links.put_peer("laptop", url, "openlms", None)
    await links.remove_peer("desk")
    after = await links.status()
    assert after["peers"] == [] and after["preferred_device"] is None
    with pytest.raises(PeerNotFoundError):
        await links.remove_peer("desk")
