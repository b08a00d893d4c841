"""`lms app` against a mock server: the URL, `built`, the browser opened only with a display."""

from __future__ import annotations

import json
import webbrowser

import click.testing
import httpx
import pytest

from openlms.cli.app import CliApp
from openlms.cli.main import cli

HOST = "http://127.0.0.1:5678"


def run(state: str | None, *args: str, status: int = 200) -> click.testing.Result:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/"
        headers = {"X-Openlms-App": state} if state else {}
        return httpx.Response(status, headers=headers, text="<html></html>")

    app = CliApp(transport=httpx.MockTransport(answer))
    return click.testing.CliRunner().invoke(cli, ["app", "--host", HOST, *args], obj=app)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    urls: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: urls.append(url) or True)
    return urls


def test_json_reports_the_url_and_whether_the_app_is_built(opened: list[str]) -> None:
    built = run("built", "--no-open", "--json")
    missing = run("not-built", "--no-open", "--json")
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout) == {"url": f"{HOST}/", "built": True, "opened": False}
    assert json.loads(missing.stdout)["built"] is False
    assert opened == []


def test_a_display_opens_the_browser(monkeypatch: pytest.MonkeyPatch, opened: list[str]) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    result = run("built")
    assert result.exit_code == 0, result.output
    assert opened == [f"{HOST}/"]
    assert result.stdout.strip() == f"The openlms app: {HOST}/"


def test_no_display_prints_the_url_and_says_so(monkeypatch: pytest.MonkeyPatch, opened: list[str]) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = run("not-built")
    assert result.exit_code == 0, result.output
    assert opened == []
    assert f"{HOST}/" in result.stdout
    assert "scripts/build-app.sh" in result.stderr and "Open that address" in result.stderr


def test_a_server_without_the_app_is_one_clear_error(opened: list[str]) -> None:
    result = run(None, "--no-open", status=404)
    assert result.exit_code == 1
    assert "does not serve the app at /" in result.stderr
    assert opened == []
