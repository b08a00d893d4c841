"""A real app (routes, services, manager, catalog) over a fake engine and tiny GGUF files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from openlms.core.settings import Settings
from openlms.engine.fake import FakeBackend
from openlms.server.app import create_app
from tests.support.tiny_gguf import write_tiny_bert_gguf, write_tiny_llama_gguf


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gguf")
    return {
        "llm": write_tiny_llama_gguf(root / "tiny-chat-F32.gguf", name="Tiny Chat"),
        "embedding": write_tiny_bert_gguf(root / "tiny-embed-F32.gguf"),
    }


@pytest.fixture
def home(tmp_path: Path, model_files: dict[str, Path]) -> Path:
    models = tmp_path / "models"
    for folder, path in (
        ("acme/tiny-chat-GGUF", model_files["llm"]),
        ("acme/tiny-embed-GGUF", model_files["embedding"]),
    ):
        (models / folder).mkdir(parents=True)
        (models / folder / path.name).symlink_to(path)
    return tmp_path


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend(reply=lambda prompt: "Paris is the capital of France.")


# The names these tests address the app by (httpx's base_url, starlette's TestClient), allowed like a
# user's own names; tests/unit/server/test_guard.py checks the Host allowlist itself.
TEST_HOSTS = ["openlms.test", "testserver"]


def make_app(home: Path, backend: FakeBackend, **overrides: object) -> FastAPI:
    overrides.setdefault("allowed_hosts", TEST_HOSTS)
    return create_app(Settings(home=home, **overrides), backend=backend)  # type: ignore[arg-type]


@pytest.fixture
async def client(home: Path, fake: FakeBackend) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(home, fake)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http
