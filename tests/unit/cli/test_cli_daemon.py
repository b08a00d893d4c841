"""`lms daemon`, start on login, automatic starts after a crash, and the server's log files."""

from __future__ import annotations

import json
import logging
import os
import plistlib
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click.testing
import pytest
from cli_fakes import Invoke, free_port, write_server_file

from openlms.cli import autostart
from openlms.cli.app import CliApp
from openlms.cli.discovery import read_server_file
from openlms.cli.main import cli
from openlms.cli.serverctl import StartOptions
from openlms.core.settings import Settings
from openlms.server import daemon as server_daemon


def run(app: CliApp, args: list[str]) -> click.testing.Result:
    return click.testing.CliRunner().invoke(cli, args, obj=app)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def save_settings(home: Path, **values: object) -> None:
    (home / "openlms").mkdir(parents=True, exist_ok=True)
    (home / "openlms" / "settings.json").write_text(json.dumps(values))


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# -- up / down / status ------------------------------------------------------------------------------


def test_status_json_is_lm_studios_shape(invoke: Invoke, home: Path) -> None:
    assert invoke(["daemon", "status", "--json"]).stdout == '{"status":"not-running"}\n'
    path = write_server_file(home, port=4321)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "version": "1.2.3"}))
    shown = json.loads(invoke(["daemon", "status", "--json"]).stdout)
    assert shown == {"status": "running", "pid": os.getpid(), "isDaemon": True, "version": "1.2.3"}
    assert invoke(["daemon", "status"]).stdout.startswith(
        f"The openlms daemon is running (pid {os.getpid()}, port 4321)."
    )


def test_status_removes_a_stale_record(invoke: Invoke, home: Path) -> None:
    path = write_server_file(home, pid=dead_pid())
    assert invoke(["daemon", "status", "--json"]).stdout == '{"status":"not-running"}\n'
    assert not path.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_pid_reused_after_a_crash_is_not_the_server(invoke: Invoke, home: Path) -> None:
    """A record left by a crash whose pid now belongs to a newer process (e.g. a restarted container)."""
    path = write_server_file(home)
    record = json.loads(path.read_text())
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path.write_text(json.dumps({**record, "pid": other.pid, "started_at": "2025-01-01T00:00:00+00:00"}))
        assert invoke(["server", "status", "--json"]).stdout == '{"running":false}\n'
        assert not path.exists()
        assert other.poll() is None  # never signalled
        path.write_text(json.dumps({**record, "pid": other.pid}))  # written after it started: its record
        assert invoke(["daemon", "status", "--json"]).stdout.startswith('{"status":"running"')
    finally:
        other.kill()
        other.wait()


def test_up_status_down(real_app: CliApp, home: Path) -> None:
    port = free_port()
    save_settings(home, port=port, sdk_port=0)
    result = run(real_app, ["daemon", "up", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["status"] == "running" and shown["isDaemon"] is True and shown["version"] == "9.9.9"
    record = read_server_file(home)
    assert record is not None and (record.pid, record.port) == (shown["pid"], port)
    again = run(real_app, ["daemon", "up"])
    assert again.stdout == f"The openlms daemon is running (pid {record.pid}, port {port}).\n"
    result = run(real_app, ["daemon", "down"])
    assert result.stdout == f"Stopped the openlms daemon (pid {record.pid}).\n"
    assert run(real_app, ["daemon", "status", "--json"]).stdout == '{"status":"not-running"}\n'
    assert run(real_app, ["daemon", "down", "--json"]).stdout == '{"status":"not-running"}\n'


def test_up_passes_the_restore_flag(real_app: CliApp, home: Path) -> None:
    save_settings(home, port=free_port(), sdk_port=0)
    assert run(real_app, ["daemon", "up", "--restore-models"]).exit_code == 0
    assert "--restore-models" in (home / "server-logs" / "openlms-server.stdout.log").read_text()
    run(real_app, ["daemon", "down"])


def test_server_flags_for_restore_and_automatic_starts() -> None:
    options = StartOptions(restore_models=True, sdk_port_optional=True)
    assert options.server_flags(1) == ["--port", "1", "--restore-models", "--sdk-port-optional"]
    assert StartOptions(restore_models=False).server_flags(1) == ["--port", "1", "--no-restore-models"]


def test_the_mcp_consent_flags_reach_the_server_and_are_kept(tmp_path: Path) -> None:
    flags = StartOptions(allow_mcp_json=True, allow_remote_mcp=False).server_flags(1)
    assert flags == ["--port", "1", "--allow-mcp-json", "--no-allow-remote-mcp"]
    args = server_daemon.parse_args(flags)
    assert (args.mcp_allow_json_servers, args.mcp_allow_remote_servers) == (True, False)
    assert {"mcp_allow_json_servers", "mcp_allow_remote_servers"} <= set(Settings.PERSISTED)


# -- crash recovery ------------------------------------------------------------------------------------


def test_after_a_crash_commands_start_the_server_on_the_saved_ports(
    real_app: CliApp, home: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    save_settings(home, port=port)
    monkeypatch.setenv("OPENLMS_SDK_PORT", str(busy_port))  # read by `lms` and by the fake server
    write_server_file(home, pid=dead_pid(), port=port)  # left behind by a killed server
    result = run(real_app, ["ps"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Waking up openlms service...\n")
    assert f"Warning: port {busy_port} (the lmstudio SDK's) is in use by another program" in result.stderr
    record = read_server_file(home)
    assert record is not None and (record.port, record.sdk_port) == (port, None)
    run(real_app, ["server", "stop"])
    # Asked for explicitly, a taken SDK port is an error.
    result = run(real_app, ["server", "start", "--sdk-port", str(busy_port)])
    assert result.exit_code == 1 and f"port {busy_port} is already in use" in result.stderr


def test_after_a_crash_the_free_sdk_port_is_used_again(
    real_app: CliApp, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, sdk_port = free_port(), free_port()
    save_settings(home, port=port)
    monkeypatch.setenv("OPENLMS_SDK_PORT", str(sdk_port))
    write_server_file(home, pid=dead_pid(), port=port)
    result = run(real_app, ["ps"])
    assert result.exit_code == 0 and "Warning" not in result.stderr
    record = read_server_file(home)
    assert record is not None and (record.port, record.sdk_port) == (port, sdk_port)
    run(real_app, ["server", "stop"])


def test_the_real_server_binds_without_a_taken_sdk_port_only_when_told(busy_port: int, home: Path) -> None:
    settings = Settings(home=home, port=free_port(), sdk_port=busy_port)
    sockets, skipped = server_daemon.bind_sockets(settings, optional_sdk_port=True)
    try:
        assert len(sockets) == 1 and skipped is not None and f"port {busy_port} is already in use" in skipped
    finally:
        for sock in sockets:
            sock.close()
    with pytest.raises(SystemExit, match=f"port {busy_port} is already in use"):
        server_daemon.bind_sockets(settings, optional_sdk_port=False)
    # The HTTP port is bound again right after (the failed start closed it).
    sockets, _ = server_daemon.bind_sockets(
        settings.model_copy(update={"sdk_port": 0}), optional_sdk_port=False
    )
    for sock in sockets:
        sock.close()


# -- log files ---------------------------------------------------------------------------------------


def test_the_server_log_rotates_by_size(home: Path) -> None:
    settings = Settings(home=home, log_max_bytes=10_000, log_backups=2)
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    server_daemon.setup_logging(settings)
    added = [h for h in root.handlers if h not in before]
    try:
        for n in range(600):
            logging.getLogger("openlms.server").warning("line %04d %s", n, "x" * 60)
    finally:
        root.setLevel(level)  # setup_logging sets the root level: later tests expect the default
        for handler in added:
            root.removeHandler(handler)
            handler.close()
    logs = sorted(p.name for p in settings.logs_dir.iterdir())
    assert logs == ["openlms-server.log", "openlms-server.log.1", "openlms-server.log.2"]
    assert all(p.stat().st_size <= 10_000 for p in settings.logs_dir.iterdir())
    assert "line 0599" in settings.server_log_file.read_text()


def test_the_stdout_file_is_moved_aside_when_large(real_app: CliApp, home: Path) -> None:
    logs = home / "server-logs"
    logs.mkdir(parents=True)
    (logs / "openlms-server.stdout.log").write_bytes(b"old\n" * 300_000)
    save_settings(home, port=free_port(), sdk_port=0)
    assert run(real_app, ["daemon", "up"]).exit_code == 0
    assert (logs / "openlms-server.stdout.log.1").stat().st_size == 1_200_000
    assert (logs / "openlms-server.stdout.log").read_text().startswith("fake server argv:")
    assert not (logs / "openlms-server.log").exists()  # the server's own log has one writer: the server
    run(real_app, ["daemon", "down"])


# -- start on login ----------------------------------------------------------------------------------


@pytest.fixture
def fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `systemctl` on PATH that records its arguments; FAKE_SYSTEMCTL_DOWN=1 makes it fail like a
    container's (no user bus)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "systemctl-calls"
    script = bin_dir / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{calls}"\n'
        'if [ -n "$FAKE_SYSTEMCTL_DOWN" ]; then\n'
        '  echo "Failed to connect to bus: No medium found" >&2; exit 1\n'
        "fi\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(autostart, "platform_kind", lambda: "systemd")
    return calls


def test_install_writes_and_enables_a_systemd_user_unit(
    invoke: Invoke, home: Path, tmp_path: Path, fake_systemctl: Path
) -> None:
    result = invoke(["daemon", "install"], server_command=("/opt/py thon/bin/python", "-m", "openlms.server"))
    unit = tmp_path / "xdg" / "systemd" / "user" / "openlms.service"
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Installed {unit}\nEnabled: the server starts when you log in")
    text = unit.read_text()
    assert 'ExecStart="/opt/py thon/bin/python" -m openlms.server --sdk-port-optional\n' in text
    assert f"Environment=OPENLMS_HOME={home}\n" in text
    assert "Restart=on-failure\n" in text and "WantedBy=default.target\n" in text
    assert fake_systemctl.read_text().splitlines() == [
        "--user show-environment",
        "--user daemon-reload",
        "--user enable openlms.service",
    ]
    assert invoke(["daemon", "status"]).stdout.endswith(f"Starts on login: {unit}\n")

    result = invoke(["daemon", "uninstall"])
    assert result.stdout == f"Stopped and disabled it.\nRemoved {unit}\n"
    assert not unit.exists()
    assert "--user disable --now openlms.service" in fake_systemctl.read_text()
    assert invoke(["daemon", "uninstall"]).stdout == "openlms is not installed as a service.\n"


def test_install_without_a_user_systemd_says_how_to_enable_it(
    invoke: Invoke, tmp_path: Path, fake_systemctl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SYSTEMCTL_DOWN", "1")
    result = invoke(["daemon", "install"])
    assert result.exit_code == 0
    assert (tmp_path / "xdg" / "systemd" / "user" / "openlms.service").exists()
    assert (
        "systemctl --user is not available here (Failed to connect to bus: No medium found)" in result.stdout
    )
    assert "systemctl --user daemon-reload && systemctl --user enable openlms.service" in result.stdout
    assert fake_systemctl.read_text().splitlines() == ["--user show-environment"]


def spec() -> autostart.ServiceSpec:
    return autostart.ServiceSpec(
        command=("/usr/bin/python3", "-m", "openlms.server"),
        environment=autostart.service_environment(
            Path("/home/u/my models%1"), {"OPENLMS_PORT": "4000", "OPENLMS_DEBUG": "1", "HOME": "/home/u"}
        ),
        stdout_log=Path("/home/u/.lmstudio/server-logs/openlms-server.stdout.log"),
    )


def test_service_environment_keeps_the_home_and_the_openlms_settings() -> None:
    assert spec().environment == {"OPENLMS_HOME": "/home/u/my models%1", "OPENLMS_PORT": "4000"}


def test_the_systemd_unit_escapes_what_systemd_would_expand(tmp_path: Path) -> None:
    text = autostart.systemd_unit(spec())
    assert 'Environment="OPENLMS_HOME=/home/u/my models%%1"\n' in text
    assert autostart.systemd_quote("a$b") == "a$$b"
    assert autostart.systemd_quote('say "hi"') == '"say \\"hi\\""'
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "openlms.service"
    unit.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert str(unit) not in result.stderr  # no "Unknown key" or parse warnings about our file


def test_the_launchd_agent_round_trips_through_plistlib() -> None:
    agent = plistlib.loads(autostart.launchd_plist(spec()))
    assert agent == {
        "Label": "ai.openlms.server",
        "ProgramArguments": ["/usr/bin/python3", "-m", "openlms.server"],
        "EnvironmentVariables": {"OPENLMS_HOME": "/home/u/my models%1", "OPENLMS_PORT": "4000"},
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 10,
        "StandardOutPath": "/home/u/.lmstudio/server-logs/openlms-server.stdout.log",
        "StandardErrorPath": "/home/u/.lmstudio/server-logs/openlms-server.stdout.log",
    }
    assert autostart.launchd_plist_path(Path("/Users/u")) == Path(
        "/Users/u/Library/LaunchAgents/ai.openlms.server.plist"
    )


def test_the_unit_path_honours_xdg_config_home() -> None:
    assert autostart.systemd_unit_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/systemd/user/openlms.service")
    assert autostart.systemd_unit_path({}) == Path.home() / ".config" / "systemd" / "user" / "openlms.service"
