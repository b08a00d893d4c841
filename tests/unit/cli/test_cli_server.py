"""`lms server status/start/stop`, with tests/unit/cli/fake_openlms_server.py standing in for the server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import click.testing
import pytest
from cli_fakes import Invoke, free_port, write_server_file

from openlms.cli.app import CliApp
from openlms.cli.discovery import pid_alive, read_server_file
from openlms.cli.main import cli
from openlms.cli.serverctl import StartOptions


def run(app: CliApp, args: list[str]) -> click.testing.Result:
    return click.testing.CliRunner().invoke(cli, args, obj=app)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# -- status ------------------------------------------------------------------------------------------


def test_status_json_shapes(invoke: Invoke, home: Path) -> None:
    assert invoke(["server", "status", "--json"]).stdout == '{"running":false}\n'
    write_server_file(home, port=4321)
    assert invoke(["server", "status", "--json"]).stdout == '{"running":true,"port":4321}\n'
    assert invoke(["server", "status", "--json", "--quiet"]).stdout == '{"running":true,"port":4321}\n'


def test_status_text_and_logging_flags(invoke: Invoke, running: Path) -> None:
    assert invoke(["server", "status"]).stdout == "The server is running on port 1234.\n"
    assert invoke(["server", "status", "--quiet"]).stdout == ""
    assert invoke(["server", "status", "--log-level", "error"]).stdout == ""
    verbose = invoke(["server", "status", "--verbose"]).stdout
    assert verbose.startswith("The server is running on port 1234.\n") and f"  PID: {os.getpid()}" in verbose
    assert "  Log: " in invoke(["server", "status", "--log-level", "debug"]).stdout


@pytest.mark.parametrize(
    "flags",
    [["--verbose", "--quiet"], ["--quiet", "--log-level", "info"], ["--verbose", "--log-level", "debug"]],
)
def test_status_accepts_one_logging_flag_only(invoke: Invoke, flags: list[str]) -> None:
    result = invoke(["server", "status", *flags])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: You can only use one logging control flag at a time (--verbose, --quiet, or --log-level).\n"
    )


def test_status_removes_a_stale_server_file(invoke: Invoke, home: Path) -> None:
    path = write_server_file(home, pid=dead_pid())
    assert invoke(["server", "status"]).stdout == "The server is not running.\n"
    assert not path.exists()
    assert invoke(["status"]).stdout.startswith("Server:  OFF")


# -- stop --------------------------------------------------------------------------------------------


def test_stop_when_not_running(invoke: Invoke, home: Path) -> None:
    result = invoke(["server", "stop"])
    assert (result.exit_code, result.stdout) == (0, "The server is not running.\n")
    path = write_server_file(home, pid=dead_pid())
    assert invoke(["server", "stop"]).stdout == "The server is not running.\n"
    assert not path.exists()


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_stop_never_signals_a_recycled_pid(invoke: Invoke, home: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path = write_server_file(home, pid=other.pid)
        assert invoke(["server", "stop"]).stdout == "The server is not running.\n"
        assert not path.exists()
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


# -- start -------------------------------------------------------------------------------------------


def test_server_flags() -> None:
    options = StartOptions(host="0.0.0.0", cors=False, jit=True, auto_evict=False, jit_ttl=60)
    assert options.server_flags(3000) == [
        "--port",
        "3000",
        "--host",
        "0.0.0.0",
        "--no-cors",
        "--jit",
        "--no-auto-evict",
        "--jit-ttl",
        "60",
    ]
    assert StartOptions().server_flags(1234) == ["--port", "1234"]


def test_start_when_already_running(invoke: Invoke, running: Path) -> None:
    result = invoke(["server", "start"])
    assert (result.exit_code, result.stdout) == (0, "The server is already running on port 1234.\n")
    result = invoke(["server", "start", "--port", "3000"])
    assert "Stop it first (`lms server stop`) to start it on port 3000." in result.stderr


def test_start_status_ls_stop(real_app: CliApp, home: Path) -> None:
    port = free_port()
    result = run(real_app, ["server", "start", "--port", str(port), "--no-cors", "--jit-ttl", "60"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Starting server...\nSuccess! Server is now running on port {port}\n"
    log = (home / "server-logs" / "openlms-server.stdout.log").read_text()
    assert f"fake server argv: --port {port} --no-cors --jit-ttl 60" in log
    assert run(real_app, ["server", "status", "--json"]).stdout == f'{{"running":true,"port":{port}}}\n'
    assert run(real_app, ["ls"]).stdout == "You have not downloaded any models yet.\n"
    record = read_server_file(home)
    assert record is not None
    result = run(real_app, ["server", "stop"])
    assert (result.exit_code, result.stdout) == (0, f"Stopped the server on port {port}.\n")
    assert not pid_alive(record.pid)
    assert read_server_file(home) is None


def test_stop_kills_a_server_that_ignores_sigterm(
    real_app: CliApp, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SERVER_IGNORE_TERM", "1")
    assert run(real_app, ["server", "start", "--port", str(free_port())]).exit_code == 0
    real_app.stop_timeout_s = 0.5
    result = run(real_app, ["server", "stop"])
    assert result.exit_code == 0
    assert "Warning: the server did not stop within 0.5 s; killing it" in result.stderr
    assert read_server_file(home) is None


def test_start_on_a_port_in_use(real_app: CliApp) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        result = run(real_app, ["server", "start", "--port", str(port)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: port {port} is already in use (another server runs there?).\n"


def test_start_when_the_server_crashes(real_app: CliApp, home: Path) -> None:
    real_app.server_command = (sys.executable, "-c", "raise SystemExit('boom: no such module')")
    result = run(real_app, ["server", "start", "--port", str(free_port())])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: The server exited with code 1 before it was ready: boom: no such module"
    )
    assert result.stderr.count("\n") == 1


def test_start_gives_up_after_the_timeout(real_app: CliApp) -> None:
    real_app.server_command = (sys.executable, "-c", "import time; time.sleep(30)")
    real_app.start_timeout_s = 0.3
    result = run(real_app, ["server", "start", "--port", str(free_port())])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: The server did not answer within 0.3 s and was stopped.")


def test_commands_wake_the_server_up(real_app: CliApp, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("OPENLMS_PORT", str(port))
    result = run(real_app, ["ps"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "Waking up openlms service...\n"
    assert result.stdout == "No models are currently loaded.\n"
    assert run(real_app, ["server", "status"]).stdout == f"The server is running on port {port}.\n"
    # `lms status` and `lms server status` only report: no server is started for them.
    run(real_app, ["server", "stop"])
    assert run(real_app, ["status"]).stdout.startswith("Server:  OFF")
    assert run(real_app, ["server", "status"]).stdout == "The server is not running.\n"
