"""Starting and stopping the local server process.

`lms server start` (and any command that needs the local server while none runs) spawns
`python -m openlms.server <flags>` fully detached, then polls `GET /lmstudio-greeting` until it answers.
The server writes (and rotates) its own log; its stdout and stderr (start-up errors, a native crash's
last words) go to a separate small file, `openlms-server.stdout.log`, so the rotating log has one writer.
`lms server stop` sends SIGTERM to the pid in `server.json`.

An automatic start (`wake_up`, e.g. `lms ps` after a crash) uses the saved settings, ports included; if
the saved SDK port is taken by another program it serves without it and warns, where an explicit
`lms server start` fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from openlms.cli.discovery import (
    ServerRecord,
    find_running_server,
    local_url,
    pid_alive,
    read_server_file,
    remove_server_file,
)
from openlms.cli.errors import CliError

if TYPE_CHECKING:
    from openlms.cli.app import CliApp
    from openlms.core.settings import Settings

_LOG_TAIL_LINES = 20
STDOUT_LOG_NAME = "openlms-server.stdout.log"
STDOUT_LOG_MAX_BYTES = 1_000_000  # kept from one start to the next, moved aside to `.1` above this


@dataclass(frozen=True, slots=True)
class StartOptions:
    """Flags of `lms server start`; `None` keeps the last used value (settings file, environment)."""

    port: int | None = None
    host: str | None = None
    cors: bool | None = None
    jit: bool | None = None
    auto_evict: bool | None = None
    jit_ttl: int | None = None
    log_level: str | None = None
    sdk_port: int | None = None
    require_auth: bool | None = None
    restore_models: bool | None = None
    allow_mcp_json: bool | None = None
    allow_remote_mcp: bool | None = None
    sdk_port_optional: bool = False  # serve without the SDK port when it is taken (automatic starts)

    def server_flags(self, port: int) -> list[str]:
        """The `python -m openlms.server` arguments (docs/http-api.md, "Running the server")."""
        flags = ["--port", str(port)]
        if self.host is not None:
            flags += ["--host", self.host]
        toggles = (
            ("cors", self.cors),
            ("jit", self.jit),
            ("auto-evict", self.auto_evict),
            ("require-auth", self.require_auth),
            ("restore-models", self.restore_models),
            ("allow-mcp-json", self.allow_mcp_json),
            ("allow-remote-mcp", self.allow_remote_mcp),
        )
        for name, value in toggles:
            if value is not None:
                flags.append(f"--{name}" if value else f"--no-{name}")
        if self.jit_ttl is not None:
            flags += ["--jit-ttl", str(self.jit_ttl)]
        if self.log_level is not None:
            flags += ["--log-level", self.log_level]
        if self.sdk_port is not None:
            flags += ["--sdk-port", str(self.sdk_port)]
        if self.sdk_port_optional:
            flags.append("--sdk-port-optional")
        return flags


@dataclass(frozen=True, slots=True)
class ServerAddress:
    url: str
    port: int


def effective_settings(options: StartOptions) -> Settings:
    """The settings a server started with `options` will use (flags > environment > settings file)."""
    try:
        from openlms.core.settings import load_settings

        return load_settings(
            port=options.port,
            host=options.host,
            cors=options.cors,
            jit=options.jit,
            auto_evict=options.auto_evict,
            jit_ttl_seconds=options.jit_ttl,
            log_level=options.log_level,
            sdk_port=options.sdk_port,
            require_auth=options.require_auth,
            restore_loaded_models=options.restore_models,
            mcp_allow_json_servers=options.allow_mcp_json,
            mcp_allow_remote_servers=options.allow_remote_mcp,
        )
    except ValueError as exc:  # includes pydantic's ValidationError
        raise CliError(f"Invalid openlms settings: {exc}") from None


def find_server(app: CliApp, settings: Settings) -> ServerAddress | None:
    """The running local server: the one in `server.json`, or any server answering on the configured port."""
    record = find_running_server(settings.home)
    if record is not None:
        return ServerAddress(record.url, record.port)
    url = local_url(settings.host, settings.port)
    with app.client(url) as client:
        return ServerAddress(url, settings.port) if client.is_alive() else None


def stdout_log_file(settings: Settings) -> Path:
    """Where the server's stdout and stderr go (the log proper is `settings.server_log_file`)."""
    return settings.logs_dir / STDOUT_LOG_NAME


def _open_stdout_log(settings: Settings) -> tuple[Path, int]:
    """The stdout file, moved aside first when it grew large; returns it and its size before this start."""
    log = stdout_log_file(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.exists() else 0
    if offset > STDOUT_LOG_MAX_BYTES:
        with contextlib.suppress(OSError):
            log.replace(log.with_name(log.name + ".1"))
            offset = 0
    return log, offset


def spawn_and_wait(app: CliApp, settings: Settings, options: StartOptions) -> ServerAddress:
    """Start the server detached and wait until it answers; a `CliError` says why it did not."""
    log, offset = _open_stdout_log(settings)
    argv = [*app.server_command, *options.server_flags(settings.port)]
    with log.open("ab") as out:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise CliError(f"Cannot start the server ({exc}).") from None
    address = ServerAddress(local_url(settings.host, settings.port), settings.port)
    _wait_until_ready(app, process, address.url, log, offset)
    return address


def _wait_until_ready(
    app: CliApp, process: subprocess.Popen[bytes], url: str, log: Path, offset: int
) -> None:
    deadline = time.monotonic() + app.start_timeout_s
    with app.client(url) as client:
        while True:
            code = process.poll()
            if code is not None:
                raise CliError(exit_message(code, log, offset))
            if client.is_alive():
                _detach(process)
                return
            if time.monotonic() >= deadline:
                _terminate(process)
                raise CliError(
                    f"The server did not answer within {app.start_timeout_s:g} s and was stopped. "
                    f"See its log: {log}"
                )
            time.sleep(app.poll_interval_s)


def _detach(process: subprocess.Popen[bytes]) -> None:
    """The server outlives this process by design: stop `Popen` from warning about it when collected."""
    process.returncode = 0


def _terminate(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def exit_message(code: int, log: Path, offset: int) -> str:
    """One line on why the server exited: its last `Error: ...` line, else its last log line."""
    lines = [line.strip() for line in read_log_tail(log, offset) if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    if errors:
        return errors[-1].removeprefix("Error: ")
    detail = f": {lines[-1]}" if lines else ""
    return f"The server exited with code {code} before it was ready{detail} (log: {log})"


def read_log_tail(log: Path, offset: int) -> list[str]:
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-_LOG_TAIL_LINES:]


def wake_up(app: CliApp) -> str:
    """The URL of the local server, started with the last used settings if it is not running."""
    options = StartOptions(sdk_port_optional=True)
    settings = effective_settings(options)
    found = find_server(app, settings)
    if found is not None:
        return found.url
    click.echo("Waking up openlms service...", err=True)
    address = spawn_and_wait(app, settings, options)
    warn_if_sdk_port_skipped(settings)
    return address.url


def warn_if_sdk_port_skipped(settings: Settings) -> None:
    """After an automatic start: say so when the saved SDK port was taken and the server runs without it."""
    record = read_server_file(settings.home)
    if (
        settings.sdk_port
        and record is not None
        and record.sdk_port is None
        and settings.sdk_port != record.port
    ):
        click.echo(
            f"Warning: port {settings.sdk_port} (the lmstudio SDK's) is in use by another program; the "
            f"server runs without it (SDK clients can connect to port {record.port}).",
            err=True,
        )


def stop_server(app: CliApp, record: ServerRecord) -> None:
    """SIGTERM, wait up to `app.stop_timeout_s`, then SIGKILL with a warning; removes `server.json`."""
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        remove_server_file(record)
        return
    except PermissionError:
        raise CliError(
            f"Not allowed to stop the server (pid {record.pid}); it runs as another user."
        ) from None
    if not wait_for_exit(record.pid, app.stop_timeout_s, app.poll_interval_s):
        seconds = f"{app.stop_timeout_s:g} s"
        click.echo(
            f"Warning: the server did not stop within {seconds}; killing it (pid {record.pid}).", err=True
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        wait_for_exit(record.pid, 5.0, app.poll_interval_s)
    remove_server_file(record)


def wait_for_exit(pid: int, timeout_s: float, interval_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
    return True
