"""GET /api/v1/models lists the instance manager's recent worker crashes (what `lms ps` shows)."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from openlms.core.types import CrashRecord
from openlms.engine.fake import FakeBackend
from tests.unit.server.conftest import make_app


def test_recent_crashes_in_the_model_listing(home: Path, fake: FakeBackend) -> None:
    with TestClient(make_app(home, fake)) as client:
        assert client.get("/api/v1/models").json()["recent_crashes"] == []
        manager = client.app.state.openlms.models.manager  # type: ignore[attr-defined]
        manager.recent_crashes.appendleft(
            CrashRecord("tiny-chat", "tiny-chat:2", 1.5e9, "exited with status 134")
        )
        body = client.get("/api/v1/models").json()
    assert body["recent_crashes"] == [
        {"model": "tiny-chat", "instance_id": "tiny-chat:2", "at": 1.5e9, "exit": "exited with status 134"}
    ]
    assert body["models"]  # the listing itself is unchanged
