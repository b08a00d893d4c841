"""The OpenAPI document at /openapi.json covers every HTTP route, with its answers and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from openlms.core.settings import Settings
from openlms.engine.fake import FakeBackend
from openlms.server.app import create_app

ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture
async def document(tmp_path: Path) -> tuple[dict[str, Any], list[APIRoute], httpx.Response]:
    app = create_app(Settings(home=tmp_path), backend=FakeBackend(reply=lambda prompt: "ok"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:1234") as http:
            reply = await http.get("/openapi.json")
            docs = await http.get("/docs")
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    return reply.json(), routes, docs


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m.upper(), p): op for p, ops in spec["paths"].items() for m, op in ops.items()}


async def test_served_and_docs_uis_stay_off(
    document: tuple[dict[str, Any], list[APIRoute], httpx.Response],
) -> None:
    spec, _, docs = document
    assert spec["openapi"].startswith("3.")
    assert docs.status_code == 404


async def test_every_route_is_documented(
    document: tuple[dict[str, Any], list[APIRoute], httpx.Response],
) -> None:
    spec, routes, _ = document
    operations = _operations(spec)
    expected = {(m, r.path_format) for r in routes for m in r.methods if m != "HEAD"}
    assert expected <= set(operations)
    for prefix in ("/v1/", "/api/v0/", "/api/v1/"):
        assert any(path.startswith(prefix) for _, path in operations)


async def test_errors_are_openai_error_objects(
    document: tuple[dict[str, Any], list[APIRoute], httpx.Response],
) -> None:
    spec, _, _ = document
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert error["required"] == ["error"]
    for (method, path), op in _operations(spec).items():
        if path == "/lmstudio-greeting":
            continue
        responses = op["responses"]
        assert "422" not in responses, f"{method} {path}: validation errors leave as 400"
        for status in ("400", "401", "403", "413", "4XX"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, f"{method} {path} {status}"


async def test_successes_have_a_schema(
    document: tuple[dict[str, Any], list[APIRoute], httpx.Response],
) -> None:
    spec, _, _ = document
    for (method, path), op in _operations(spec).items():
        content = op["responses"]["200"]["content"]
        if path == "/api/v1/logs/stream":
            assert set(content) == {"text/event-stream"}
            continue
        if path == "/metrics":  # Prometheus text format
            assert content == {"text/plain": {"schema": {"type": "string"}}}
            continue
        if path.endswith("/files/{name}") and method == "GET":  # a chat's attached file: its bytes
            assert set(content) == {"application/octet-stream"}
            continue
        ref = content["application/json"]["schema"].get("$ref", "")
        assert ref.startswith("#/components/schemas/"), f"{method} {path}"
        assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"]


async def test_streams_and_request_bodies(
    document: tuple[dict[str, Any], list[APIRoute], httpx.Response],
) -> None:
    spec, _, _ = document
    operations = _operations(spec)
    for path in (
        "/v1/chat/completions",
        "/v1/completions",
        "/api/v0/chat/completions",
        "/api/v1/models/load",
    ):
        assert "text/event-stream" in operations[("POST", path)]["responses"]["200"]["content"]
    body = operations[("PUT", "/api/v1/models/config")]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert body["additionalProperties"] is False
    assert "contextLength" in body["properties"]["load"]["properties"]
    assert "promptTemplate" in body["properties"]["prediction"]["properties"]
    chat = operations[("POST", "/v1/chat/completions")]["requestBody"]["content"]["application/json"]
    assert chat["schema"] == {"$ref": "#/components/schemas/ChatCompletionRequest"}


async def test_token_schemes_are_documented_and_required_with_auth(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, require_auth=True), backend=FakeBackend(reply=lambda p: "ok"))
    spec = app.openapi()
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "x-api-key"
    assert spec["security"] == [{"bearer": []}, {"apiKey": []}]
    assert spec["paths"]["/lmstudio-greeting"]["get"]["security"] == []  # the SDK's probe stays open
    open_app = create_app(Settings(home=tmp_path), backend=FakeBackend(reply=lambda p: "ok"))
    assert "security" not in open_app.openapi()
