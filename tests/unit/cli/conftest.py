"""Fixtures for the `lms` tests: an isolated home, a fake server, and a runner."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click.testing
import pytest
from cli_fakes import FAKE_SERVER_SCRIPT, FakeServer, Invoke, write_server_file

from openlms.cli.app import CliApp
from openlms.cli.discovery import pid_alive, read_server_file
from openlms.cli.main import cli


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own OPENLMS_HOME and no other OPENLMS_* variables."""
    for name in list(os.environ):
        if name.startswith("OPENLMS_"):
            monkeypatch.delenv(name)
    path = tmp_path / "home"
    monkeypatch.setenv("OPENLMS_HOME", str(path))
    return path


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def running(home: Path) -> Path:
    """A live `server.json` (this test process's pid) on port 1234."""
    return write_server_file(home)


@pytest.fixture
def invoke(server: FakeServer) -> Invoke:
    """Run `lms <args>` against the fake server; `tty=True` pretends stdin is a terminal."""

    def run(
        args: Sequence[str], *, tty: bool = False, input: str | None = None, **app: Any
    ) -> click.testing.Result:
        obj = CliApp(transport=server.transport, stdin_is_tty=lambda: tty, **app)
        return click.testing.CliRunner().invoke(cli, list(args), obj=obj, input=input)

    return run


@pytest.fixture
def real_app(home: Path) -> Iterator[CliApp]:
    """A `CliApp` that spawns tests/unit/cli/fake_openlms_server.py instead of the real server."""
    yield CliApp(server_command=(sys.executable, str(FAKE_SERVER_SCRIPT)), start_timeout_s=15.0)
    record = read_server_file(home)
    if record is not None and pid_alive(record.pid):
        os.kill(record.pid, signal.SIGKILL)
