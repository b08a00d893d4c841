"""`GET /` (the app's index.html, or how to build it) and `GET /assets/*` (hashed, cached for a year).

Plain Starlette routes, left out of /openapi.json: these are pages, not API endpoints. The guard covers
them like every route (Host allowlist, browser Origin, tokens, limits).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from openlms.core.settings import Settings
from openlms.server.webapp.files import (
    APP_STATE_HEADER,
    ASSET_HEADERS,
    BUILD_COMMAND,
    INDEX_HEADERS,
    app_dir,
    asset_file,
    not_built_page,
)


def install(app: FastAPI, settings: Settings) -> None:
    root = app_dir(settings)

    async def index(_: Request) -> Response:
        page = root / "index.html"
        if page.is_file():
            headers = {**INDEX_HEADERS, APP_STATE_HEADER: "built"}
            return FileResponse(page, media_type="text/html", headers=headers)
        return HTMLResponse(not_built_page(root), headers={**INDEX_HEADERS, APP_STATE_HEADER: "not-built"})

    async def asset(request: Request) -> Response:
        name = str(request.path_params["name"])
        found = asset_file(root, name)
        if found is None:
            raise HTTPException(
                404,
                f"The app has no file assets/{name}. Reload the page; if it persists, rebuild the "
                f"app ({BUILD_COMMAND}).",
            )
        return FileResponse(found, headers=ASSET_HEADERS)

    app.router.add_route("/", index, methods=["GET", "HEAD"], include_in_schema=False)
    app.router.add_route("/assets/{name:path}", asset, methods=["GET", "HEAD"], include_in_schema=False)
