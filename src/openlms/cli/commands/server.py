"""`lms server start|stop|status`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from openlms.cli.app import get_app
from openlms.cli.discovery import (
    ServerRecord,
    find_running_server,
    home_dir,
    is_loopback_host,
    is_openlms_process,
    remove_server_file,
)

if TYPE_CHECKING:
    from openlms.cli.app import CliApp
    from openlms.core.settings import Settings

SETTINGS_PATH = "/api/v1/app/server/settings"  # the server's own settings (the API switch)
SWITCHED_ON = "Its API was switched off for other programs: switched it on."
SWITCHED_OFF_STATUS = (
    "Its API is switched off for other programs (the app and `lms` still work); "
    "`lms server start` switches it on."
)
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "none")
_QUIET_LEVELS = frozenset({"warn", "warning", "error", "none"})


@click.group("server", help="Commands for managing the local server")
def server() -> None:
    pass


@server.command("start", help="Start the local server (in the background).")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port to run the server on. Default: the last used one."
)
@click.option(
    "--cors/--no-cors", default=None, help="Send CORS headers for any origin. Default: the last used."
)
@click.option(
    "--bind",
    metavar="HOST",
    help="Address to listen on, e.g. 0.0.0.0 for the network. Default: the last used.",
)
@click.option("--jit/--no-jit", default=None, help="Load downloaded models on their first request (JIT).")
@click.option(
    "--auto-evict/--no-auto-evict", default=None, help="Keep at most one JIT-loaded model at a time."
)
@click.option(
    "--jit-ttl",
    type=click.IntRange(min=0),
    metavar="SECONDS",
    help="Idle time after which a JIT-loaded model is unloaded (0: never).",
)
@click.option(
    "--sdk-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Second port, where the lmstudio SDK looks by default (default 41343; 0: none).",
)
@click.option(
    "--require-auth/--no-require-auth",
    default=None,
    help="Require an API token (`lms token create`) on every request. Default: the last used.",
)
@click.option(
    "--restore-models/--no-restore-models",
    default=None,
    help="Load again, on start, the models loaded when the server last stopped. Default: the last used.",
)
@click.option(
    "--allow-mcp-json/--no-allow-mcp-json",
    default=None,
    help="Let requests (/api/v1/chat integrations, /v1/responses mcp tools) call the servers of mcp.json, "
    "which may run programs on this machine. Default: the last used (off at first).",
)
@click.option(
    "--allow-remote-mcp/--no-allow-remote-mcp",
    default=None,
    help="Let a request name a remote MCP server by URL (ephemeral_mcp, mcp tools with server_url). "
    "Default: the last used (off at first).",
)
@click.pass_context
def start(
    ctx: click.Context,
    port: int | None,
    cors: bool | None,
    bind: str | None,
    jit: bool | None,
    auto_evict: bool | None,
    jit_ttl: int | None,
    sdk_port: int | None,
    require_auth: bool | None,
    restore_models: bool | None,
    allow_mcp_json: bool | None,
    allow_remote_mcp: bool | None,
) -> None:
    from openlms.cli import serverctl

    app = get_app(ctx)
    options = serverctl.StartOptions(
        port=port,
        host=bind,
        cors=cors,
        jit=jit,
        auto_evict=auto_evict,
        jit_ttl=jit_ttl,
        sdk_port=sdk_port,
        require_auth=require_auth,
        restore_models=restore_models,
        allow_mcp_json=allow_mcp_json,
        allow_remote_mcp=allow_remote_mcp,
    )
    settings = serverctl.effective_settings(options)
    running = serverctl.find_server(app, settings)
    if running is not None:
        click.echo(f"The server is already running on port {running.port}.")
        if port is not None and port != running.port:
            click.echo(f"Stop it first (`lms server stop`) to start it on port {port}.", err=True)
        _switch_api_on(app, running.url)
        return
    _warn_if_exposed(settings.host, require_auth=settings.require_auth)
    click.echo("Starting server...")
    address = serverctl.spawn_and_wait(app, settings, options)
    click.echo(f"Success! Server is now running on port {address.port}")
    _switch_api_on(app, address.url)  # switched off when it last ran: `start` serves the API
    if settings.require_auth:
        _hint_tokens(settings)


@server.command("stop", help="Stop the local server. Exits 0 when none is running.")
@click.pass_context
def stop(ctx: click.Context) -> None:
    record = find_running_server(home_dir())
    if record is not None and not is_openlms_process(record.pid):
        remove_server_file(record)  # the pid was recycled by another program
        record = None
    if record is None:
        click.echo("The server is not running.")
        return
    from openlms.cli import serverctl

    serverctl.stop_server(get_app(ctx), record)
    click.echo(f"Stopped the server on port {record.port}.")


@server.command("status", help="Check whether the local server is running. Never starts it.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"running":true,"port":1234,"api_enabled":true} or {"running":false}.',
)
@click.option("--verbose", is_flag=True, help="Also print the pid, address and file locations.")
@click.option("--quiet", is_flag=True, help="Print nothing except --json output.")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="debug, info (default), warn, error or none.",
)
@click.pass_context
def status(ctx: click.Context, as_json: bool, verbose: bool, quiet: bool, log_level: str | None) -> None:
    if verbose + quiet + (log_level is not None) > 1:
        raise click.UsageError(
            "You can only use one logging control flag at a time (--verbose, --quiet, or --log-level)."
        )
    level = "debug" if verbose else "none" if quiet else (log_level or "info").lower()
    record = find_running_server(home_dir())
    if record is not None and not as_json and level not in _QUIET_LEVELS:
        _warn_if_exposed(record.host, require_auth=_requires_auth())
    api_on = api_enabled(get_app(ctx), record.url) if record else None
    if as_json:
        state: dict[str, object] = {"running": True, "port": record.port} if record else {"running": False}
        if api_on is not None:
            state["api_enabled"] = api_on
        click.echo(json.dumps(state, separators=(",", ":")))
    elif level not in _QUIET_LEVELS:
        click.echo(
            f"The server is running on port {record.port}." if record else "The server is not running."
        )
        if api_on is False:
            click.echo(SWITCHED_OFF_STATUS)
    if level == "debug" and not as_json:
        for line in _status_details(record):
            click.echo(line)


def api_enabled(app: CliApp, url: str) -> bool | None:
    """Whether the running server serves its API to other programs (`lms server status`, `lms status`);
    None: it does not say (an older server, or one that does not answer)."""
    from openlms.cli.errors import CliError

    try:
        with app.client(url) as client:
            view = client.request_json("GET", SETTINGS_PATH, timeout=5.0)
    except CliError:
        return None
    settings = view.get("settings")
    value = settings.get("api_enabled") if isinstance(settings, dict) else None
    return value if isinstance(value, bool) else None


def _switch_api_on(app: CliApp, url: str) -> None:
    """`lms server start` serves the API: a server whose API is switched off is switched on (saved)."""
    if api_enabled(app, url) is not False:
        return
    with app.client(url) as client:
        client.request_json("PATCH", SETTINGS_PATH, json={"api_enabled": True})
    click.echo(SWITCHED_ON)


def _status_details(record: ServerRecord | None) -> list[str]:
    from openlms.cli.serverctl import StartOptions, effective_settings

    settings = effective_settings(StartOptions())
    lines = [f"  Home: {settings.home}", f"  Server file: {settings.server_file}"]
    if record is not None:
        lines += [f"  PID: {record.pid}", f"  Address: {record.url}"]
        if record.sdk_port:
            lines.append(f"  lmstudio SDK port: {record.sdk_port} (also on {record.port})")
    return [*lines, f"  Log: {settings.server_log_file}"]


def _warn_if_exposed(host: str, *, require_auth: bool) -> None:
    """A loud warning on stderr for a server on the network that requires no API token."""
    if require_auth or is_loopback_host(host):
        return
    click.echo(
        f"WARNING: the server listens on {host} (the network) and requires no API token: anyone who can "
        "reach this machine can use its models and files. Use `lms server start --require-auth` and "
        "`lms token create`, or bind to 127.0.0.1.",
        err=True,
    )


def _hint_tokens(settings: Settings) -> None:
    from openlms.core.tokens import TokenError, read_tokens

    try:
        count = len(read_tokens(settings.tokens_file))
    except TokenError as exc:
        click.echo(f"Warning: {exc}", err=True)
        return
    if count == 0:
        click.echo(
            "API tokens are required, and none exists yet: create one with `lms token create --name <name>`."
        )


def _requires_auth() -> bool:
    """Whether the server requires tokens, as it persisted at its start."""
    from openlms.cli.errors import CliError
    from openlms.cli.serverctl import StartOptions, effective_settings

    try:
        return effective_settings(StartOptions()).require_auth
    except CliError:
        return False
