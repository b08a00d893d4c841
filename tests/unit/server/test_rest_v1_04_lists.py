"""LM Studio 0.4's `GET /api/v1/models/download/status` (every job, by status) and the model list's
loading entries, on the real app against FakeHub."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from openlms.engine.fake import FakeBackend
from tests.unit.server.conftest import make_app
from tests.unit.server.test_download_routes import REPO, WAIT_S, ggufs, http, hub, wait_job  # noqa: F401

STATUS = "/api/v1/models/download/status"


async def test_status_board_lists_jobs_by_status(http: httpx.AsyncClient) -> None:  # noqa: F811
    assert (await http.get(STATUS)).json() == {"downloading": [], "completed": [], "failed": [], "paused": []}
    job = (await http.post("/api/v1/models/download", json={"model": REPO, "quantization": "q4_k_m"})).json()
    done = await wait_job(http, job["job_id"], ("completed", "failed"))
    assert done["status"] == "completed", done
    board = (await http.get(STATUS)).json()
    assert [j["job_id"] for j in board["completed"]] == [job["job_id"]]
    assert board["downloading"] == board["failed"] == board["paused"] == []
    entry = board["completed"][0]
    assert entry["status"] == "completed" and entry["downloaded_bytes"] == entry["total_size_bytes"] > 0
    assert entry["started_at"] and entry["completed_at"]
    again = (
        await http.post("/api/v1/models/download", json={"model": REPO, "quantization": "q4_k_m"})
    ).json()
    assert again["status"] == "already_downloaded"
    assert {j["status"] for j in (await http.get(STATUS)).json()["completed"]} <= {
        "completed",
        "already_downloaded",
    }


async def test_a_loading_instance_is_listed_with_a_config(home: Path) -> None:
    """0.4 clients read `loaded_instances[].config`; an instance still loading has one too (empty)."""
    app = make_app(home, FakeBackend(load_delay=0.5))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client,
    ):
        load = asyncio.create_task(client.post("/api/v1/models/load", json={"model": "tiny-chat"}))
        deadline = time.monotonic() + WAIT_S
        seen: list[dict[str, Any]] = []
        while not seen and not load.done() and time.monotonic() < deadline:
            models = (await client.get("/api/v1/models")).json()["models"]
            seen = [i for m in models for i in m["loaded_instances"] if i.get("status") == "loading"]
            await asyncio.sleep(0.02)
        loaded = (await load).json()
    assert seen and seen[0]["config"] == {} and seen[0]["id"] == loaded["instance_id"]
