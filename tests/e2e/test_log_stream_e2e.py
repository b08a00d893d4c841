"""`lms log stream --source server` against the real server: start-up lines, live request lines, Ctrl+C.

Model input/output events need a prediction on a real model; their end-to-end check belongs with the
prediction service that publishes them.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.server import LMS, Server, free_port, start_server

pytestmark = pytest.mark.e2e

HEADER = "Streaming logs from LM Studio"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: no models needed to see server logs."""
    tmp = tmp_path_factory.mktemp("logs")
    (tmp / "models").mkdir()
    srv = start_server(tmp, tmp / "models", free_port())
    yield srv
    srv.lms("server", "stop", check=False)


class Lines:
    """The lines of a pipe, read by a thread so the test can wait with a timeout."""

    def __init__(self, pipe: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def until(self, predicate: Any, timeout: float = 30.0) -> list[str]:
        """Lines read until one satisfies `predicate` (included); fails on timeout or end of output."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out; lines so far: {seen}") from None
            if line is None:
                raise AssertionError(f"output ended; lines so far: {seen}")
            seen.append(line)
            if predicate(line):
                return seen


def test_server_logs_show_start_up_and_live_requests(server: Server) -> None:
    process = subprocess.Popen(
        [LMS, "log", "stream", "--source", "server", "--json"],
        env=server.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl+C must reach it even when the tests run as a background job (which ignores SIGINT)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        Lines(process.stderr).until(lambda line: line == HEADER)  # subscribed: what follows is seen
        out = Lines(process.stdout)
        backlog = [json.loads(line) for line in out.until(lambda line: "/v1/chat/completions" in line)]
        assert any(e["message"] == "Supported endpoints:" for e in backlog)
        assert any(f"http://127.0.0.1:{server.port}" in e["message"] for e in backlog)

        probe = uuid.uuid4().hex
        with server.http() as http:  # the stream keeps going while other clients use the server
            assert http.get("/api/v1/models", params={"probe": probe}).status_code == 200
            assert http.get(f"/no/such/{probe}").status_code == 404
        [*_, found] = out.until(lambda line: probe in line and " 200" in line)
        event = json.loads(found)
        assert event["level"] == "INFO" and event["logger"] == "uvicorn.access"
        assert f'"GET /api/v1/models?probe={probe} HTTP/1.1" 200' in event["message"]
        assert isinstance(event["timestamp"], int)
        out.until(lambda line: f"/no/such/{probe}" in line and " 404" in line)

        process.send_signal(signal.SIGINT)  # Ctrl+C: a quiet exit
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_no_server_means_an_error_not_a_start(tmp_path: Path, server: Server) -> None:
    env = {**server.env, "OPENLMS_HOME": str(tmp_path / "empty-home")}
    result = subprocess.run(
        [LMS, "log", "stream"], env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 1
    assert result.stderr == "Error: The openlms server is not running. Start it with `lms server start`.\n"
    assert not (tmp_path / "empty-home" / "openlms" / "server.json").exists()
