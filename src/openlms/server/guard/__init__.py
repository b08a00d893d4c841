"""Who may call the server and how much one request may ask: Host, Origin, API tokens, request limits.

Pure ASGI middlewares (never `BaseHTTPMiddleware`, which buffers streams), applied to HTTP and websockets
alike. `install(app, settings)` adds them in order: outermost first, Host > Origin > token > limits.
"""

from __future__ import annotations

from fastapi import FastAPI

from openlms.core.settings import Settings
from openlms.server.guard import auth, network


def install(app: FastAPI, settings: Settings) -> None:
    # Starlette runs the middleware added last first.
    network.install_limits(app, settings)
    auth.install(app, settings)
    network.install_origin_and_host(app, settings)
