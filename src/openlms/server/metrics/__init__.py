"""`GET /metrics`: Prometheus text format (docs/metrics.md), one `CollectorRegistry` per app.

`install(app, state)` is the wiring: the request-counting middleware, the scrape-time gauges of the loaded
models and the worker crash counters, the Predictor's observer for finished predictions, and the route.
With `metrics` off in the settings, nothing is installed and `/metrics` is a 404 like any unknown path.
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from openlms.server import openapi
from openlms.server.metrics.collector import LoadedCollector, WorkerCollector
from openlms.server.metrics.middleware import MetricsMiddleware
from openlms.server.metrics.registry import Metrics
from openlms.server.state import AppState


def install(app: FastAPI, state: AppState) -> Metrics | None:
    if not state.settings.metrics:
        return None
    metrics = Metrics(CollectorRegistry(auto_describe=False))
    metrics.registry.register(LoadedCollector(state.models.loaded))
    manager = state.models.manager  # its crash counters (read, never changed, here)
    metrics.registry.register(WorkerCollector(lambda: manager.crash_counts, lambda: manager.restart_counts))
    state.predictor.observers.append(metrics.observe)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get(
        "/metrics",
        response_class=Response,
        responses=openapi.text_only("Prometheus text exposition format (docs/metrics.md)."),
    )
    async def scrape() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
