"""schemathesis over the real server's OpenAPI document (/v1, /api/v0, /api/v1), on the real default models.

The short version runs in CI (`OPENLMS_FUZZ_REQUESTS`, 300 by default); `bench/fuzz.py --requests 5000`
is the long one, with the same generator, taming and checks (see its docstring). Every generated request,
valid or not, is answered without a 5xx, within the per-request timeout, as the document says (status,
content type, body schema; invalid data refused), and the server still answers a normal chat afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.fuzz import PRELOADED, Fuzzer
from tests.support.server import Server, default_models_dir, free_port, start_server

REQUESTS = int(os.environ.get("OPENLMS_FUZZ_REQUESTS", "300"))

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("fuzz"), default_models_dir(), free_port())
    try:
        for key in PRELOADED:
            srv.lms("load", key, "--yes")
        yield srv
    finally:
        srv.lms("server", "stop", check=False)


@pytest.mark.timeout(max(600, REQUESTS))
def test_generated_requests_are_answered_as_documented(server: Server, tmp_path: Path) -> None:
    report = Fuzzer(server.url, tmp_path / "scratch", timeout=60).run(REQUESTS)
    assert report.requests >= REQUESTS
    assert report.server_errors == []
    assert report.hangs == []
    assert report.connection_errors == []
    assert report.server_died is None
    assert report.broken == []
    assert report.accepted_invalid == []
    assert report.chat_after
    paths = [label.split(" ", 1)[1] for label in report.by_operation]
    for prefix in ("/v1/", "/api/v0/", "/api/v1/"):
        assert any(path.startswith(prefix) for path in paths), prefix
    assert report.statuses[200] > 0  # valid requests reached the models
