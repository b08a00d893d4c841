"""`lms app`: starts the server when it is not running, prints the app's URL (JSON too), never opens a
browser without a display; the URL serves the app (or the page saying how to build it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import openlms
from tests.support.server import LMS, free_port

pytestmark = pytest.mark.e2e

BUILT = (Path(openlms.__file__).parent / "webapp" / "static" / "index.html").is_file()


@pytest.fixture(scope="module")
def home_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], int]]:
    """A home whose settings name a free port, with no server running yet (and no display)."""
    home = tmp_path_factory.mktemp("app") / "home"
    (home / "openlms").mkdir(parents=True)
    port = free_port()
    (home / "openlms" / "settings.json").write_text(json.dumps({"port": port, "sdk_port": 0}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLMS_")}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env["OPENLMS_HOME"] = str(home)
    yield env, port
    lms(env, "server", "stop")


def lms(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LMS), *args], env=env, capture_output=True, text=True, timeout=90)


def test_lms_app_starts_the_server_and_prints_the_url_as_json(home_env: tuple[dict[str, str], int]) -> None:
    env, port = home_env
    first = lms(env, "app", "--no-open", "--json")
    assert first.returncode == 0, first.stderr
    info = json.loads(first.stdout)
    assert info == {"url": f"http://127.0.0.1:{port}/", "built": BUILT, "opened": False}
    assert "Waking up" in first.stderr  # it had to start the server
    page = httpx.get(info["url"], timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    if BUILT:
        scripts = re.findall(r'src="(/assets/[^"]+\.js)"', page.text)
        assert scripts, page.text
        script = httpx.get(info["url"].rstrip("/") + scripts[0], timeout=10)
        assert script.status_code == 200 and "immutable" in script.headers["cache-control"]
    else:
        assert "scripts/build-app.sh" in page.text

    again = lms(env, "app", "--no-open", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["url"] == info["url"] and "Waking up" not in again.stderr


def test_lms_app_without_a_display_prints_the_url_and_opens_nothing(
    home_env: tuple[dict[str, str], int],
) -> None:
    env, port = home_env
    result = lms(env, "app")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"http://127.0.0.1:{port}/")
    assert "Open that address in your browser" in result.stderr
