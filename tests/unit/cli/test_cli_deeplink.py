"""`lms app --deeplink URL` (the app's install confirmation address) and `--register-deeplink` (an xdg
desktop entry for lmstudio:// under a temporary XDG_DATA_HOME; nothing of this machine's is touched)."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import click.testing
import httpx
import pytest

from openlms.cli.app import CliApp
from openlms.cli.main import cli
from openlms.core.mcp_deeplink import make_deeplink

HOST = "http://127.0.0.1:5678"
LINK = make_deeplink("time", {"command": "uvx", "args": ["mcp-server-time"]})


def run(*args: str) -> click.testing.Result:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"X-Openlms-App": "built"}, text="<html></html>")

    app = CliApp(transport=httpx.MockTransport(answer))
    return click.testing.CliRunner().invoke(cli, ["app", *args], obj=app)


def test_a_deeplink_opens_the_install_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    monkeypatch.setattr("sys.platform", "darwin")  # a display
    result = run("--host", HOST, "--deeplink", LINK, "--json")
    assert result.exit_code == 0, result.output
    url = json.loads(result.stdout)["url"]
    assert opened == [url] and url.startswith(f"{HOST}/#/add-mcp?link=")
    fragment = urlsplit(urlsplit(url).fragment)
    assert parse_qs(fragment.query)["link"] == [LINK]


def test_a_bad_deeplink_says_what_is_wrong() -> None:
    result = run("--host", HOST, "--no-open", "--deeplink", "lmstudio://add_mcp?name=x")
    assert result.exit_code != 0
    assert "'config'" in result.output


def test_register_writes_an_xdg_desktop_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    for var, sub in (("HOME", "home"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    result = run("--register-deeplink", "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    entry = tmp_path / "data" / "applications" / "openlms-deeplink.desktop"
    assert written["desktop_file"] == str(entry)
    text = entry.read_text()
    assert "MimeType=x-scheme-handler/lmstudio;" in text
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert exec_line.endswith(" app --deeplink %u")
    if written["default"]:  # xdg-mime is installed: the default is set in the temporary config only
        assert "openlms-deeplink.desktop" in (tmp_path / "config" / "mimeapps.list").read_text()


def test_register_elsewhere_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.platform", "win32")
    result = run("--register-deeplink")
    assert result.exit_code != 0
    assert "Linux only" in result.output and "Program panel" in result.output
