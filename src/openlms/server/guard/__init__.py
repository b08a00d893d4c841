"""Who may call the server and how much one request may ask: Host, Origin, API tokens, request limits.

Pure ASGI middlewares (never `BaseHTTPMiddleware`, which buffers streams), applied to HTTP and websockets
alike. `install(app, settings)` adds them in order: outermost first, Host > Origin > CORS > token > API
switch (`switch.py`) > limits, so that a browser app allowed by CORS can read a 401, 413, 429 or 503 (they
carry its CORS headers).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from openlms.core.settings import Settings
from openlms.server.guard import auth, limits, network, switch
from openlms.server.guard.policy import cors_origins
from openlms.server.openai.convert import TRUNCATION_HEADER


def install(app: FastAPI, settings: Settings) -> None:
    # Starlette runs the middleware added last first.
    limits.install(app, settings)
    switch.install(app, settings)  # the API switch (api_enabled), after the token check
    auth.install(app, settings)
    install_cors(app, settings)
    network.install_origin_and_host(app, settings)


def install_cors(app: FastAPI, settings: Settings) -> None:
    allowed_origins = cors_origins(settings)
    if allowed_origins:  # `cors`: any origin; else the allowed_origins (the guard refuses the others)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=allowed_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[TRUNCATION_HEADER],  # a web client can see that its prompt was cut
        )
