"""`lms` and API tokens: the token it sends, `--require-auth`, and the warning for an exposed server."""

from __future__ import annotations

import json
from pathlib import Path

import click.testing
import httpx
import pytest
from cli_fakes import Invoke, free_port, write_server_file

from openlms.cli.app import CliApp
from openlms.cli.client import ApiClient
from openlms.cli.errors import CliError
from openlms.cli.main import cli
from openlms.core.tokens import local_secret_file


def run(app: CliApp, args: list[str]) -> click.testing.Result:
    return click.testing.CliRunner().invoke(cli, args, obj=app)


def seen_authorization(base_url: str) -> str | None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"models": []})

    with ApiClient(base_url, transport=httpx.MockTransport(handler)) as client:
        client.list_models()
    return seen[0]


def test_the_local_secret_goes_to_a_local_server_only(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LM_API_TOKEN", "LMSTUDIO_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert seen_authorization("http://127.0.0.1:1234") is None
    local_secret_file(home).parent.mkdir(parents=True)
    local_secret_file(home).write_text("s3cret\n")
    assert seen_authorization("http://127.0.0.1:1234") == "Bearer s3cret"
    assert seen_authorization("http://localhost:1234") == "Bearer s3cret"
    assert seen_authorization("http://[::1]:1234") == "Bearer s3cret"
    assert seen_authorization("http://gpu-box.lan:1234") is None
    monkeypatch.setenv("LM_API_TOKEN", "sk-lm-AAAAAAAA:" + "b" * 20)
    assert seen_authorization("http://gpu-box.lan:1234") == "Bearer sk-lm-AAAAAAAA:" + "b" * 20
    assert seen_authorization("http://127.0.0.1:1234") == "Bearer s3cret"


def test_a_401_says_how_to_pass_a_token() -> None:
    body = {"error": {"message": "This server requires an API token.", "code": "invalid_api_key"}}
    transport = httpx.MockTransport(lambda request: httpx.Response(401, json=body))
    with (
        ApiClient("http://gpu-box.lan:1234", transport=transport) as client,
        pytest.raises(CliError) as caught,
    ):
        client.list_models()
    assert "requires an API token" in str(caught.value) and "LM_API_TOKEN" in str(caught.value)


def test_status_warns_about_a_network_server_without_auth(invoke: Invoke, home: Path) -> None:
    write_server_file(home, host="0.0.0.0")
    result = invoke(["server", "status"])
    assert result.stdout == "The server is running on port 1234.\n"
    assert (
        result.stderr.startswith("WARNING: the server listens on 0.0.0.0")
        and "--require-auth" in result.stderr
    )
    assert invoke(["server", "status", "--json"]).stderr == ""  # JSON output stays clean
    settings = home / "openlms" / "settings.json"
    settings.write_text(json.dumps({"require_auth": True}))
    assert invoke(["server", "status"]).stderr == ""


def test_status_does_not_warn_for_loopback(invoke: Invoke, home: Path) -> None:
    write_server_file(home, host="127.0.0.1")
    assert invoke(["server", "status"]).stderr == ""


def test_start_passes_require_auth_and_warns_for_the_network(real_app: CliApp, home: Path) -> None:
    port = free_port()
    result = run(real_app, ["server", "start", "--port", str(port), "--require-auth"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "none exists yet: create one with `lms token create" in result.stdout
    log = (home / "server-logs").glob("*.log")
    assert any(f"--port {port} --require-auth" in path.read_text() for path in log)
    assert run(real_app, ["server", "stop"]).exit_code == 0
    exposed = run(
        real_app, ["server", "start", "--port", str(free_port()), "--bind", "0.0.0.0", "--no-require-auth"]
    )
    assert exposed.exit_code == 0, exposed.output
    assert "WARNING: the server listens on 0.0.0.0" in exposed.stderr
    assert run(real_app, ["server", "stop"]).exit_code == 0


def test_start_passes_restore_models(real_app: CliApp, home: Path) -> None:
    port = free_port()
    result = run(real_app, ["server", "start", "--port", str(port), "--restore-models"])
    assert result.exit_code == 0, result.output
    log = (home / "server-logs").glob("*.log")
    assert any(f"--port {port} --restore-models" in path.read_text() for path in log)
    assert run(real_app, ["server", "stop"]).exit_code == 0
