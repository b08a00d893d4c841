"""`lms mcp ls|add|rm` against the real app (fake engine) in this process: the file it writes, what it
prints, deeplink confirmation, and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import click.testing
import httpx
import pytest
from starlette.testclient import TestClient

from openlms.cli.app import CliApp
from openlms.cli.main import cli
from openlms.core.mcp_deeplink import make_deeplink
from openlms.core.settings import Settings
from openlms.engine.fake import FakeBackend
from openlms.server.app import create_app

TIME = {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]}
Lms = Callable[..., click.testing.Result]
HF = {"url": "https://huggingface.co/mcp", "headers": {"Authorization": "Bearer <YOUR_HF_TOKEN>"}}


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

    def run(*args: str, tty: bool = False, input: str | None = None) -> click.testing.Result:
        obj = CliApp(transport=httpx.MockTransport(forward), stdin_is_tty=lambda: tty)
        return click.testing.CliRunner().invoke(cli, ["mcp", *args], obj=obj, input=input)

    yield run


def servers(home: Path) -> dict[str, object]:
    document: dict[str, dict[str, object]] = json.loads((home / "mcp.json").read_text())
    return document["mcpServers"]


def test_add_ls_rm(lms: Lms, home: Path) -> None:
    added = lms("add", "time", "--config", json.dumps(TIME))
    assert added.exit_code == 0, added.output
    assert f"Added MCP server 'time' (stdio) in {home / 'mcp.json'}" in added.stdout
    assert servers(home) == {"time": TIME}
    replaced = lms("add", "--config", json.dumps({"mcpServers": {"time": HF}}))
    assert "Replaced MCP server 'time' (http)" in replaced.stdout and servers(home) == {"time": HF}

    listed = lms("ls", "--no-tools")
    assert listed.exit_code == 0, listed.output
    header, row, note = listed.stdout.splitlines()
    assert "mcp_allow_json_servers" in note  # off by default: say so
    assert header.split() == ["NAME", "TYPE", "STATUS", "TOOLS"]
    assert row.split() == ["time", "http", "stopped", "-"]
    as_json = json.loads(lms("ls", "--json", "--no-tools").stdout)
    assert as_json[0]["name"] == "time" and as_json[0]["url"] == "https://huggingface.co/mcp"

    removed = lms("rm", "time")
    assert removed.exit_code == 0 and "Removed MCP server 'time'" in removed.stdout
    assert servers(home) == {}
    assert "No MCP servers in" in lms("ls").stdout


def test_rm_of_an_unknown_name_is_one_error_line(lms: Lms, home: Path) -> None:
    lms("add", "time", "--config", json.dumps(TIME))
    result = lms("rm", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No MCP server named 'nope'") and "time" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_malformed_file_is_reported_with_its_line(lms: Lms, home: Path) -> None:
    (home / "mcp.json").write_text('{\n  "mcpServers": {\n    "time": {"command": "x",}\n  }\n}\n')
    for args in (("ls",), ("rm", "time"), ("add", "b", "--config", json.dumps(TIME))):
        result = lms(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "line 3" in result.stderr and "mcp.json" in result.stderr and "Traceback" not in result.output


def test_deeplink_shows_the_entry_and_the_warning_then_asks(lms: Lms, home: Path) -> None:
    link = make_deeplink("hf-mcp-server", HF)
    refused = lms("add", "--deeplink", link)  # not a TTY, no --yes
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    assert "hf-mcp-server" in refused.stdout and "huggingface.co/mcp" in refused.stdout
    assert "never install MCP servers from untrusted sources" in refused.stdout
    assert not (home / "mcp.json").exists()

    declined = lms("add", "--deeplink", link, tty=True, input="n\n")
    assert declined.exit_code == 1 and not (home / "mcp.json").exists()
    accepted = lms("add", "--deeplink", link, tty=True, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert servers(home) == {"hf-mcp-server": HF}

    program = make_deeplink("time", TIME)
    shown = lms("add", "--deeplink", program, "--yes")
    assert shown.exit_code == 0 and "mcp-server-time --local-timezone UTC" in shown.stdout
    assert servers(home) == {"hf-mcp-server": HF, "time": TIME}
    again = lms("add", "--deeplink", program, "--yes")
    assert "replaces the server 'time'" in again.stdout and "Replaced" in again.stdout


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("add", "x"), 2, "--config JSON or --deeplink"),
        (("add", "x", "--config", "{nope"), 2, "not valid JSON"),
        (("add", "--config", json.dumps(TIME)), 2, "name"),
        (("add", "x", "--config", "[1]"), 2, "JSON object"),
        (("add", "a/b", "--config", json.dumps(TIME)), 2, "not usable"),
        (("add", "..", "--config", json.dumps(TIME)), 2, "not usable"),
        (("rm", "a/b"), 2, "not usable"),
        (("add", "--deeplink", make_deeplink("../x", TIME), "--yes"), 2, "not usable"),
        (("add", "x", "--config", json.dumps({"args": []})), 1, 'needs "command"'),
        (("add", "--deeplink", "lmstudio://add_mcp?name=x&config=%%%"), 1, "base64"),
        (("add", "--deeplink", "https://example.com/"), 1, "Not an MCP install link"),
    ],
)
def test_bad_input_is_one_clear_line(
    lms: Lms, home: Path, args: tuple[str, ...], code: int, says: str
) -> None:
    result = lms(*args)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("Error: ") and says in result.stderr
    assert not (home / "mcp.json").exists()
