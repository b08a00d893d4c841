"""`create_app(settings, backend=...)`: the FastAPI application with every API mounted."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from openlms import __version__
from openlms.core.settings import Settings
from openlms.engine.manager import InstanceManager
from openlms.engine.runtime import Backend
from openlms.server import errors, guard, metrics, openapi, webapp
from openlms.server.anthropic.reshape import AnthropicErrors
from openlms.server.anthropic.routes import router as anthropic_router
from openlms.server.app_api.conversations import router as conversations_router
from openlms.server.app_api.documents import router as documents_router
from openlms.server.app_api.server_settings import router as server_settings_router
from openlms.server.logs.handler import attach_server_logs, log_endpoints
from openlms.server.logs.routes import router as logs_router
from openlms.server.openai.routes import router as openai_router
from openlms.server.responses.routes import router as responses_router
from openlms.server.rest_v0.routes import router as v0_router
from openlms.server.rest_v1.chat import router as chat_router
from openlms.server.rest_v1.discover import router as discover_router
from openlms.server.rest_v1.downloads import router as download_router
from openlms.server.rest_v1.estimate import router as estimate_router
from openlms.server.rest_v1.link import router as link_router
from openlms.server.rest_v1.mcp import router as mcp_admin_router
from openlms.server.rest_v1.mcp_app import router as mcp_app_router
from openlms.server.rest_v1.presets import router as presets_router
from openlms.server.rest_v1.prompt import router as prompt_router
from openlms.server.rest_v1.routes import router as v1_router
from openlms.server.sdk.routes import mount as mount_sdk
from openlms.server.state import AppState
from openlms.services.chat_documents import ChatDocuments
from openlms.services.conversations import ConversationService
from openlms.services.downloads import DownloadService
from openlms.services.generation import Predictor
from openlms.services.logbus import LogBus
from openlms.services.mcp.host import McpHost
from openlms.services.models import ModelService
from openlms.services.restore import ModelRestorer
from openlms.store import ModelCatalog
from openlms.store.virtual import hub_models_dir

log = logging.getLogger("openlms.server")


def default_backend(settings: Settings) -> Backend:
    """llama.cpp, each model in its own worker process (`isolate_models`, docs/workers.md) or in this one."""
    from openlms.engine.llama.runtime import LlamaBackend
    from openlms.engine.process import ProcessBackend

    kind = ProcessBackend if settings.isolate_models else LlamaBackend
    return kind(
        default_context_length=settings.default_context_length,
        n_threads=settings.n_threads,
        prompt_cache_mb=settings.prompt_cache_mb,
        max_queued=settings.max_queued_predictions,
    )


def create_app(settings: Settings, *, backend: Backend | None = None) -> FastAPI:
    backend = backend or default_backend(settings)
    manager = InstanceManager(
        backend, auto_evict=settings.auto_evict, jit_ttl_seconds=settings.jit_ttl_seconds or None
    )
    catalog = ModelCatalog(settings.resolved_models_dir, hub_models_dir(settings.home))
    models = ModelService(settings, catalog, manager)
    logbus = LogBus()
    predictor = Predictor(models, logbus)
    state = AppState(
        settings=settings,
        models=models,
        predictor=predictor,
        downloads=DownloadService(models),
        mcp=McpHost(settings, logging.getLogger("openlms.mcp")),
        conversations=ConversationService(settings.home),
        documents=ChatDocuments.for_predictor(predictor),
    )
    detach_logs = attach_server_logs(logbus)
    restorer = ModelRestorer.attach(settings, models)

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[None]:
        manager.start()
        log_endpoints(served, settings)
        restorer.start()  # the models loaded last time, in the background
        try:
            yield
        finally:
            await restorer.close()
            await state.downloads.close()  # running downloads stop; their partial data stays
            await state.mcp.aclose()  # MCP servers stop (no child process outlives the server)
            await manager.close()
            detach_logs()

    app = FastAPI(title="openlms", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.openlms = state
    app.state.logbus = logbus
    errors.install(app)
    guard.install(app, settings)
    app.add_middleware(AnthropicErrors)  # outermost: /v1/messages* errors in Anthropic's shape
    metrics.install(app, state)  # GET /metrics (docs/metrics.md), unless the `metrics` setting is off

    @app.get(
        "/lmstudio-greeting", response_model=None, responses=openapi.responses(openapi.ok(openapi.Greeting))
    )
    async def greeting() -> dict[str, Any]:
        return {"lmstudio": True}

    app.include_router(openai_router)
    app.include_router(responses_router)
    app.include_router(anthropic_router)
    app.include_router(v0_router)
    app.include_router(v1_router)
    app.include_router(chat_router)
    app.include_router(prompt_router)
    app.include_router(download_router)
    app.include_router(discover_router)
    app.include_router(estimate_router)
    app.include_router(mcp_admin_router)
    app.include_router(link_router)
    app.include_router(mcp_app_router)
    app.include_router(presets_router)
    app.include_router(logs_router)
    app.include_router(conversations_router)
    app.include_router(documents_router)
    app.include_router(server_settings_router)
    mount_sdk(app, state.predictor, state.downloads, state.documents)  # the lmstudio SDK's websockets
    webapp.install(app, settings)  # the web app at / (docs/app.md)
    openapi.install_security(app, required=settings.require_auth)
    return app
