"""`GET /` (the app's index.html, or how to build it) and `GET /assets/*` (hashed, cached for a year).

Left out of /openapi.json: these are pages, not API endpoints. The guard covers them like every route:
a page from a foreign origin cannot make the browser fetch them with an Origin header it allows.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException

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

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False, response_model=None)
    async def index() -> Response:
        page = root / "index.html"
        if page.is_file():
            headers = {**INDEX_HEADERS, APP_STATE_HEADER: "built"}
            return FileResponse(page, media_type="text/html", headers=headers)
        return HTMLResponse(not_built_page(root), headers={**INDEX_HEADERS, APP_STATE_HEADER: "not-built"})

    @app.api_route(
        "/assets/{name:path}", methods=["GET", "HEAD"], include_in_schema=False, response_model=None
    )
    async def asset(name: str) -> Response:
        found = asset_file(root, name)
        if found is None:
            raise HTTPException(
                404,
                f"The app has no file assets/{name}. Reload the page; if it persists, rebuild the "
                f"app ({BUILD_COMMAND}).",
            )
        return FileResponse(found, headers=ASSET_HEADERS)
