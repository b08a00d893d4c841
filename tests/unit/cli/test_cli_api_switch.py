"""`lms server status` shows the API switch (`api_enabled`), `lms server start` on a running server whose API
is switched off switches it on, and every `lms` request says it is `lms` (`X-OpenLMS-Client`), against a
fake server (httpx.MockTransport) answering the settings API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_fakes import FakeServer, Invoke

SETTINGS = "/api/v1/app/server/settings"


class SwitchServer(FakeServer):
    """The fake server plus the settings API's api_enabled."""

    def __init__(self, api_enabled: bool | None) -> None:
        super().__init__()
        self.api_enabled = api_enabled
        self.headers: list[httpx.Headers] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        if request.url.path != SETTINGS or self.api_enabled is None:
            return super().handle(request)
        if request.method == "PATCH":
            self.requests.append(("PATCH", SETTINGS, json.loads(request.content)))
            self.api_enabled = bool(json.loads(request.content)["api_enabled"])
        settings: dict[str, Any] = {"port": 1234, "api_enabled": self.api_enabled}
        return httpx.Response(200, json={"settings": settings})


@pytest.fixture
def server(request: pytest.FixtureRequest) -> SwitchServer:
    return SwitchServer(getattr(request, "param", False))


def patches(server: FakeServer) -> list[Any]:
    return [body for method, path, body in server.requests if method == "PATCH" and path == SETTINGS]


@pytest.mark.parametrize("server", [False], indirect=True)
def test_status_says_the_api_is_switched_off(invoke: Invoke, running: Path) -> None:
    text = invoke(["server", "status"]).stdout
    assert text.startswith("The server is running on port 1234.\n")
    assert "switched off" in text and "lms server start" in text
    assert json.loads(invoke(["server", "status", "--json"]).stdout) == {
        "running": True,
        "port": 1234,
        "api_enabled": False,
    }


@pytest.mark.parametrize("server", [True], indirect=True)
def test_status_of_a_server_serving_its_api(invoke: Invoke, running: Path) -> None:
    assert invoke(["server", "status"]).stdout == "The server is running on port 1234.\n"
    assert (
        invoke(["server", "status", "--json"]).stdout == '{"running":true,"port":1234,"api_enabled":true}\n'
    )


@pytest.mark.parametrize("server", [None], indirect=True)
def test_status_of_a_server_without_the_switch_leaves_it_out(invoke: Invoke, running: Path) -> None:
    assert invoke(["server", "status", "--json"]).stdout == '{"running":true,"port":1234}\n'


@pytest.mark.parametrize("server", [False], indirect=True)
def test_start_on_a_running_server_switches_its_api_on(
    invoke: Invoke, running: Path, server: SwitchServer
) -> None:
    result = invoke(["server", "start"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("The server is already running on port 1234.\n")
    assert "switched it on" in result.stdout
    assert patches(server) == [{"api_enabled": True}] and server.api_enabled is True
    again = invoke(["server", "start"])  # already on: nothing to do, nothing said
    assert again.stdout == "The server is already running on port 1234.\n" and len(patches(server)) == 1


@pytest.mark.parametrize("server", [True], indirect=True)
def test_every_lms_request_says_it_is_lms(invoke: Invoke, running: Path, server: SwitchServer) -> None:
    assert invoke(["ls"]).exit_code == 0
    assert server.headers and all(h.get("x-openlms-client") == "lms" for h in server.headers)


@pytest.mark.parametrize("server", [False], indirect=True)
def test_lms_status_says_the_api_is_off(invoke: Invoke, running: Path) -> None:
    lines = invoke(["status"]).stdout.splitlines()
    assert lines[0] == "Server:  ON  (port: 1234)"
    assert lines[1].startswith("API:     OFF") and "lms server start" in lines[1]


@pytest.mark.parametrize("server", [True], indirect=True)
def test_lms_status_of_a_server_serving_its_api_says_nothing_more(invoke: Invoke, running: Path) -> None:
    lines = invoke(["status"]).stdout.splitlines()
    assert lines[0] == "Server:  ON  (port: 1234)" and not any(line.startswith("API:") for line in lines)
