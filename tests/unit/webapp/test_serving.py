"""The web app served at / and /assets/* over the real app (fake engine) with a fake built folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from openlms.core.settings import Settings
from openlms.engine.fake import FakeBackend
from openlms.server.webapp.files import app_dir, asset_file
from tests.unit.server.conftest import make_app

INDEX = (
    '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head></html>'
)
SCRIPT = "console.log('openlms');\n"


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text(SCRIPT)
    (root / "assets" / "index-abc123.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("not for the browser")
    return root


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend(reply=lambda prompt: "ok")


@asynccontextmanager
async def serve(home: Path, fake: FakeBackend, root: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(home, fake, app_dir=root, allowed_hosts=[])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:1234") as http:
            yield http


async def test_index_is_the_built_page_never_cached_with_a_strict_csp(
    tmp_path: Path, fake: FakeBackend, built: Path
) -> None:
    async with serve(tmp_path, fake, built) as http:
        page = await http.get("/")
        head = await http.head("/")
    assert page.status_code == 200 and page.text == INDEX
    assert page.headers["x-openlms-app"] == "built"
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and "http" not in csp  # no CDN allowed anywhere
    assert page.headers["x-content-type-options"] == "nosniff"
    assert head.status_code == 200 and head.content == b""


async def test_assets_are_served_with_long_cache_headers(
    tmp_path: Path, fake: FakeBackend, built: Path
) -> None:
    async with serve(tmp_path, fake, built) as http:
        script = await http.get("/assets/index-abc123.js")
        style = await http.get("/assets/index-abc123.css")
    assert script.status_code == 200 and script.text == SCRIPT
    assert "javascript" in script.headers["content-type"]
    assert style.headers["content-type"].startswith("text/css")
    for response in (script, style):
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    "path", ["/assets/missing.js", "/assets/../index.html", "/assets/%2e%2e/%2e%2e/secret.txt", "/assets/"]
)
async def test_a_missing_or_escaping_asset_is_a_404_in_the_api_format(
    tmp_path: Path, fake: FakeBackend, built: Path, path: str
) -> None:
    async with serve(tmp_path, fake, built) as http:
        response = await http.get(path)
    assert response.status_code == 404, response.text
    assert "not for the browser" not in response.text
    assert "error" in response.json()


async def test_not_built_app_answers_how_to_build_it(tmp_path: Path, fake: FakeBackend) -> None:
    async with serve(tmp_path, fake, tmp_path / "nowhere") as http:
        page = await http.get("/")
        api = await http.get("/v1/models")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "not built" in page.text and "scripts/build-app.sh" in page.text
    assert page.headers["x-openlms-app"] == "not-built"
    assert api.status_code == 200  # the APIs are unaffected


async def test_same_origin_app_requests_pass_and_foreign_origins_are_refused(
    tmp_path: Path, fake: FakeBackend, built: Path
) -> None:
    own = {"Origin": "http://localhost:1234"}
    evil = {"Origin": "http://evil.example"}
    async with serve(tmp_path, fake, built) as http:
        page = await http.get("/", headers=own)
        models = await http.get("/v1/models", headers=own)
        refused_page = await http.get("/", headers=evil)
        refused_api = await http.get("/v1/models", headers=evil)
        rebinding = await http.get("/", headers={"Host": "evil.example:1234"})
    assert page.status_code == 200 and models.status_code == 200
    for refused in (refused_page, refused_api, rebinding):
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["type"] == "permission_error"


async def test_app_pages_are_not_api_endpoints(tmp_path: Path, fake: FakeBackend, built: Path) -> None:
    async with serve(tmp_path, fake, built) as http:
        schema = (await http.get("/openapi.json")).json()
    assert "/" not in schema["paths"] and not any(p.startswith("/assets") for p in schema["paths"])


def test_app_dir_defaults_to_the_package_folder(tmp_path: Path) -> None:
    assert app_dir(Settings(home=tmp_path)).parts[-3:] == ("openlms", "webapp", "static")
    assert app_dir(Settings(home=tmp_path, app_dir=tmp_path / "x")) == tmp_path / "x"


def test_asset_file_refuses_names_outside_assets(built: Path) -> None:
    assert asset_file(built, "index-abc123.js") == (built / "assets" / "index-abc123.js").resolve()
    for name in ("", "../index.html", "a/../../index.html", "..\\index.html", "/etc/passwd", "missing.js"):
        assert asset_file(built, name) is None, name
