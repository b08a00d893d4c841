"""`lms link` against the real app (fake engine) in this process: link.json written, the status table and
JSON (a peer on a closed port: offline, with the reason), refusals as one error line."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import click.testing
import httpx
import pytest
from starlette.testclient import TestClient

from openlms.cli.app import CliApp
from openlms.cli.main import cli
from openlms.core.settings import Settings
from openlms.engine.fake import FakeBackend
from openlms.server.app import create_app

Lms = Callable[..., click.testing.Result]


@pytest.fixture
def app_client(home: Path, running: Path) -> Iterator[TestClient]:
    app = create_app(Settings(home=home), backend=FakeBackend())
    with TestClient(app, base_url="http://127.0.0.1:1234", client=("127.0.0.1", 50000)) as client:
        yield client


@pytest.fixture
def lms(app_client: TestClient) -> Iterator[Lms]:
    def forward(request: httpx.Request) -> httpx.Response:
        reply = app_client.request(
            request.method, request.url.raw_path.decode(), content=request.content, headers=request.headers
        )
        return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)

    def run(*args: str) -> click.testing.Result:
        obj = CliApp(transport=httpx.MockTransport(forward), stdin_is_tty=lambda: False)
        return click.testing.CliRunner().invoke(cli, ["link", *args], obj=obj)

    yield run


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def link_file(home: Path) -> dict[str, object]:
    document: dict[str, object] = json.loads((home / "openlms" / "link.json").read_text())
    return document


def test_add_status_rm(lms: Lms, home: Path) -> None:
    empty = lms("status")
    assert empty.exit_code == 0, empty.output
    assert f"This device: {socket.gethostname()} (LM Link disabled)" in empty.stdout
    assert "No peers. Add one with `lms link add" in empty.stdout

    url = f"http://127.0.0.1:{closed_port()}"
    added = lms("add", "desktop", url + "/", "--token", "s3cret-value")
    assert added.exit_code == 0, added.output
    assert f"Added peer 'desktop' (openlms) at {url}." in added.stdout
    assert link_file(home)["peers"] == [
        {"name": "desktop", "url": url, "engine": "openlms", "token": "s3cret-value"}
    ]
    replaced = lms("add", "desktop", url, "--engine", "openai")
    assert f"Replaced peer 'desktop' (openai) at {url}." in replaced.stdout

    table = lms("status")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("DEVICE")))
    assert lines[header].split() == ["DEVICE", "ENGINE", "STATE", "LATENCY", "MODELS"]
    assert lines[header + 1].split() == ["desktop", "openai", "offline", "-", "-"]
    assert lines[header + 2].strip().startswith(f"Cannot reach peer 'desktop' ({url})")
    assert "not routed to peers yet" in table.stdout

    as_json = json.loads(lms("status", "--json").stdout)
    [peer] = as_json["peers"]
    assert peer["state"] == "offline" and peer["has_token"] is False and "token" not in peer

    removed = lms("rm", "desktop")
    assert removed.exit_code == 0 and "Removed peer 'desktop'." in removed.stdout
    assert link_file(home)["peers"] == []


def test_device_settings(lms: Lms, home: Path) -> None:
    assert "LM Link is enabled." in lms("enable").stdout
    assert "This device is now named 'laptop'." in lms("set-device-name", "laptop").stdout
    assert "now 'laptop'" in lms("set-preferred-device", "laptop").stdout
    status = json.loads(lms("status", "--json").stdout)
    assert (status["device_name"], status["enabled"], status["preferred_device"]) == (
        "laptop",
        True,
        "laptop",
    )
    assert "No preferred device." in lms("set-preferred-device", "--clear").stdout
    assert "LM Link is disabled." in lms("disable").stdout
    assert link_file(home) | {"peers": []} == {
        "enabled": False,
        "device_name": "laptop",
        "preferred_device": None,
        "peers": [],
    }


def test_refusals_are_one_line(lms: Lms, home: Path) -> None:
    missing = lms("rm", "nope")
    assert missing.exit_code == 1
    assert "No LM Link peer named 'nope'" in missing.output and "Traceback" not in missing.output
    creds = lms("add", "desk", "http://me:pw@desk:1234")
    assert creds.exit_code == 1 and "--token" in creds.output
    unknown = lms("set-preferred-device", "elsewhere")
    assert unknown.exit_code == 1 and "No device named 'elsewhere'" in unknown.output
    bad_name = lms("add", "a/b", "http://desk")
    assert bad_name.exit_code == 2 and "Invalid name 'a/b'" in bad_name.output
    assert lms("set-preferred-device").exit_code == 2
    assert not (home / "openlms" / "link.json").exists()
