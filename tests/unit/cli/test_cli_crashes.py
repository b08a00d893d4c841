"""`lms ps` shows the model workers that crashed lately (`recent_crashes` of GET /api/v1/models)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from cli_fakes import FakeServer, Invoke

from openlms.cli.render import crash_lines
from openlms.cli.schema import CrashInfo


class CrashedServer(FakeServer):
    crashes: list[dict[str, Any]]

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = super().handle(request)
        if (request.method, request.url.path) == ("GET", "/api/v1/models"):
            return httpx.Response(200, json={**response.json(), "recent_crashes": self.crashes})
        return response


@pytest.fixture
def server() -> FakeServer:
    crashed = CrashedServer()
    crashed.crashes = [
        {
            "model": "qwen3-0.6b",
            "instance_id": "qwen3-0.6b",
            "at": time.time() - 90,
            "exit": "killed by signal 9 (SIGKILL)",
        },
        {
            "model": "old-model",
            "instance_id": "old",
            "at": time.time() - 7200,
            "exit": "exited with status 1",
        },
    ]
    return crashed


def test_ps_lists_recent_crashes(invoke: Invoke) -> None:
    result = invoke(["ps"])
    assert result.exit_code == 0, result.output
    assert "CRASHED" in result.stdout
    assert "qwen3-0.6b (qwen3-0.6b): killed by signal 9 (SIGKILL), 1m 3" in result.stdout
    assert "old" not in result.stdout  # more than an hour ago
    assert isinstance(json.loads(invoke(["ps", "--json"]).stdout), list)  # --json keeps its shape


def test_crash_lines_read_leniently() -> None:
    info = CrashInfo.from_json({"model": "m", "exit": 5})
    assert info == CrashInfo(model="m", instance_id="m", at=None, exit="crashed")
    assert crash_lines([info], now=0.0)[-1] == "m (m): crashed"
    assert crash_lines([], now=0.0) == []


def test_a_crashed_instance_loaded_again_says_so() -> None:
    crash = CrashInfo(model="m", instance_id="m", at=100.0, exit="killed by signal 9 (SIGKILL)")
    assert crash_lines([crash], 160.0, frozenset({"m"}))[-1].endswith("ago; loaded again since")
    assert not crash_lines([crash], 160.0)[-1].endswith("loaded again since")
