"""`lms daemon up|down|status|install|uninstall`: the server as a background service (LM Studio 0.4's
`lms daemon`; docs 0_app/4_api/headless.md).

`up` starts the server headless with the last used settings (ports, bind, CORS, JIT, restoring models)
unless it runs; `down` stops it; `status --json` prints LM Studio's shape,
`{"status":"running","pid":N,"isDaemon":true,"version":"..."}` or `{"status":"not-running"}`.
`install` makes it start on login (a systemd user unit, a launchd agent on macOS); `uninstall` undoes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from openlms.cli.app import get_app
from openlms.cli.discovery import (
    ServerRecord,
    find_running_server,
    home_dir,
    is_openlms_process,
    remove_server_file,
)


def _running(*, to_signal: bool = False) -> ServerRecord | None:
    """The live server's record; before signalling it, a pid recycled by another program counts as none."""
    record = find_running_server(home_dir())
    if to_signal and record is not None and not is_openlms_process(record.pid):
        remove_server_file(record)
        return None
    return record


def status_object(record: ServerRecord | None) -> dict[str, Any]:
    """LM Studio's `lms daemon status --json` object."""
    if record is None:
        return {"status": "not-running"}
    from openlms import __version__

    return {
        "status": "running",
        "pid": record.pid,
        "isDaemon": True,
        "version": record.version or __version__,
    }


def _echo_status(record: ServerRecord | None, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(status_object(record), separators=(",", ":")))
    elif record is None:
        click.echo("The openlms daemon is not running.")
    else:
        click.echo(f"The openlms daemon is running (pid {record.pid}, port {record.port}).")


_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")


@click.group("daemon", help="Run the server as a background service: up, down, status, install, uninstall.")
def daemon() -> None:
    pass


@daemon.command("up", help="Start the service (the server, headless, with the last used settings).")
@click.option(
    "--restore-models/--no-restore-models",
    default=None,
    help="Load again the models that were loaded when it last stopped (kept for later starts).",
)
@_JSON_OPTION
@click.pass_context
def up(ctx: click.Context, restore_models: bool | None, as_json: bool) -> None:
    record = _running()
    if record is None:
        from openlms.cli import serverctl

        options = serverctl.StartOptions(restore_models=restore_models, sdk_port_optional=True)
        settings = serverctl.effective_settings(options)
        if not as_json:
            click.echo("Starting the openlms daemon...", err=True)
        serverctl.spawn_and_wait(get_app(ctx), settings, options)
        serverctl.warn_if_sdk_port_skipped(settings)
        record = _running()
    elif restore_models is not None:
        click.echo("Warning: it already runs; --restore-models applies from its next start.", err=True)
    _echo_status(record, as_json)


@daemon.command("down", help="Stop the service. Exits 0 when it is not running.")
@_JSON_OPTION
@click.pass_context
def down(ctx: click.Context, as_json: bool) -> None:
    record = _running(to_signal=True)
    if record is not None:
        from openlms.cli import serverctl

        serverctl.stop_server(get_app(ctx), record)
        if not as_json:
            click.echo(f"Stopped the openlms daemon (pid {record.pid}).")
    elif not as_json:
        click.echo("The openlms daemon is not running.")
    if as_json:
        _echo_status(None, True)


@daemon.command("status", help="Whether the service runs. Never starts it.")
@_JSON_OPTION
def status(as_json: bool) -> None:
    _echo_status(_running(), as_json)
    if not as_json:
        from openlms.cli import autostart

        path = _installed_path(autostart.platform_kind())
        if path.exists():
            click.echo(f"Starts on login: {path}")


def _installed_path(kind: str) -> Path:
    from openlms.cli import autostart

    return autostart.launchd_plist_path() if kind == "launchd" else autostart.systemd_unit_path()


@daemon.command("install", help="Start the service on login (systemd user unit; launchd agent on macOS).")
@click.pass_context
def install(ctx: click.Context) -> None:
    from openlms.cli import autostart, serverctl

    settings = serverctl.effective_settings(serverctl.StartOptions())
    spec = autostart.ServiceSpec(
        # Unattended starts serve without the SDK port rather than not at all when another program has it.
        command=(*get_app(ctx).server_command, "--sdk-port-optional"),
        environment=autostart.service_environment(home_dir()),
        stdout_log=serverctl.stdout_log_file(settings),
    )
    kind = autostart.platform_kind()
    path = _installed_path(kind)
    if kind == "launchd":
        outcome = autostart.install_launchd(spec, path, load_now=_running() is None)
    else:
        outcome = autostart.install_systemd(spec, path)
    click.echo(f"Installed {outcome.path}")
    for line in outcome.lines:
        click.echo(line)


@daemon.command("uninstall", help="Stop starting the service on login (removes the unit or agent).")
def uninstall() -> None:
    from openlms.cli import autostart

    kind = autostart.platform_kind()
    path = _installed_path(kind)
    outcome = autostart.uninstall_launchd(path) if kind == "launchd" else autostart.uninstall_systemd(path)
    if outcome is None:
        click.echo("openlms is not installed as a service.")
        return
    for line in outcome.lines:
        click.echo(line)
    click.echo(f"Removed {outcome.path}")
