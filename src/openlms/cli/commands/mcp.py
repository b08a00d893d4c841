"""`lms mcp`: the MCP servers of `<home>/mcp.json` (`ls`, `add`, `rm`), through the server's admin routes
(`/api/v1/mcp/servers`, docs/http-api.md); the server is started if need be, like every command."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import click

from openlms.cli.app import get_app, host_option
from openlms.cli.errors import CliError

SERVERS_PATH = "/api/v1/mcp/servers"
_TOOLS_TIMEOUT = 300.0  # `ls` starts every server to list its tools (a first `uvx` run may download)
WARNING = (
    "Warning: never install MCP servers from untrusted sources. Some MCP servers can run arbitrary code, "
    "access your local files, and use your network connection. If you don't trust the source, don't "
    "install it."
)
CONSENT_NOTE = (
    "Note: requests cannot call these servers until the server setting mcp_allow_json_servers is on "
    '(LM Studio\'s "Allow calling servers from mcp.json"): `lms server stop`, then `lms server start '
    "--allow-mcp-json` (see docs/mcp.md, Consent)."
)
CONFIG_HELP = """The server's mcp.json entry as JSON: '{"command": "uvx", "args": ["mcp-server-time"]}' or
'{"url": "https://...", "headers": {...}}' (an mcp.json snippet with the name around it works too)."""


@click.group("mcp", help="Manage MCP servers (mcp.json)", no_args_is_help=True)
def mcp() -> None:
    pass


@mcp.command("ls", help="List the MCP servers of mcp.json, their status and tools")
@click.option("--json", "as_json", is_flag=True, help="Print the servers as a JSON array.")
@click.option(
    "--tools/--no-tools", default=True, show_default=True, help="Start the servers to list their tools."
)
@host_option
@click.pass_context
def ls(ctx: click.Context, as_json: bool, tools: bool, host_url: str | None) -> None:
    params = {"tools": "true"} if tools else {}
    timeout = _TOOLS_TIMEOUT if tools else 60.0
    with get_app(ctx).connect(host_url) as client:
        body = client.request_json("GET", SERVERS_PATH, params=params, timeout=timeout)
    servers = [s for s in body.get("servers") or [] if isinstance(s, Mapping)]
    if as_json:
        click.echo(json.dumps(servers, indent=2, ensure_ascii=False))
    elif not servers:
        click.echo(f"No MCP servers in {body.get('path', 'mcp.json')}.")
        click.echo("""Add one with `lms mcp add <name> --config '{"command": "...", "args": [...]}'`.""")
    else:
        click.echo(render_servers(servers))
        if body.get("calls_allowed") is False:
            click.echo(CONSENT_NOTE)


@mcp.command("add", help="Add an MCP server to mcp.json (from JSON, or an `Add to LM Studio` link)")
@click.argument("name", required=False)
@click.option("--config", "config_json", metavar="JSON", help=CONFIG_HELP)
@click.option("--deeplink", metavar="URL", help="An lmstudio://add_mcp?name=...&config=... link.")
@click.option("-y", "--yes", is_flag=True, help="Install a deeplink's server without asking.")
@host_option
@click.pass_context
def add(
    ctx: click.Context,
    name: str | None,
    config_json: str | None,
    deeplink: str | None,
    yes: bool,
    host_url: str | None,
) -> None:
    if (config_json is None) == (deeplink is None):
        raise click.UsageError("Give --config JSON or --deeplink URL (one of them).")
    app = get_app(ctx)
    name, entry = from_deeplink(name, deeplink) if deeplink else from_config(name, config_json or "")
    checked_name(name)
    with app.connect(host_url) as client:
        if deeplink:
            existing = {s.get("name") for s in _servers(client.request_json("GET", SERVERS_PATH))}
            show_install(name, entry, replaces=name in existing)
            if not yes:
                confirm_install(app.stdin_is_tty())
        result = client.request_json("PUT", f"{SERVERS_PATH}/{quote(name, safe='')}", json=entry)
    verb = "Added" if result.get("created", True) else "Replaced"
    click.echo(f"{verb} MCP server '{name}' ({result.get('type', '?')}) in {result.get('path', 'mcp.json')}.")


@mcp.command("rm", help="Remove an MCP server from mcp.json")
@click.argument("name")
@host_option
@click.pass_context
def rm(ctx: click.Context, name: str, host_url: str | None) -> None:
    checked_name(name)
    with get_app(ctx).connect(host_url) as client:
        result = client.request_json("DELETE", f"{SERVERS_PATH}/{quote(name, safe='')}")
    click.echo(f"Removed MCP server '{name}' from {result.get('path', 'mcp.json')}.")


def checked_name(name: str) -> None:
    """Refuse a name the server would refuse (a slash would not even reach the route)."""
    from openlms.core.errors import McpConfigError
    from openlms.core.mcp_names import check_server_name

    try:
        check_server_name(name)
    except McpConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="NAME") from None


def from_deeplink(name: str | None, link: str) -> tuple[str, dict[str, Any]]:
    from openlms.core.errors import McpConfigError
    from openlms.core.mcp_deeplink import parse_deeplink

    try:
        link_name, entry = parse_deeplink(link)
    except McpConfigError as exc:
        raise CliError(exc.message) from None
    return name or link_name, entry


def from_config(name: str | None, text: str) -> tuple[str, dict[str, Any]]:
    from openlms.core.errors import McpConfigError
    from openlms.core.mcp_deeplink import unwrap_entry

    try:
        config = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc}).", param_hint="--config") from None
    if name is None:
        name, config = _sole_server(config)
    try:
        return name, unwrap_entry(name, config, what="--config")
    except McpConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="--config") from None


def _sole_server(config: object) -> tuple[str, object]:
    """`{"mcpServers": {name: entry}}` or `{name: entry}` name their one server; anything else needs NAME."""
    if isinstance(config, dict) and set(config) == {"mcpServers"}:
        config = config["mcpServers"]
    if isinstance(config, dict) and len(config) == 1 and "command" not in config and "url" not in config:
        [(name, entry)] = config.items()
        return str(name), entry
    raise click.UsageError("Give the server's name: `lms mcp add <name> --config '{...}'`.")


def show_install(name: str, entry: Mapping[str, Any], *, replaces: bool) -> None:
    click.echo(f"This link installs the MCP server '{name}' into mcp.json:")
    click.echo(json.dumps({name: entry}, indent=2, ensure_ascii=False))
    if replaces:
        click.echo(f"It replaces the server '{name}' already in mcp.json.")
    if "command" in entry:
        program = " ".join([str(entry["command"]), *map(str, entry.get("args") or [])])
        click.echo(f"It runs this program on this machine when used: {program}")
    click.echo(WARNING)


def confirm_install(interactive: bool) -> None:
    if not interactive:
        raise CliError("Not installed: check the server above, then run the command again with --yes.")
    if not click.confirm("Install it?", default=False):
        raise CliError("Not installed.")


def _servers(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in body.get("servers") or [] if isinstance(s, Mapping)]


def render_servers(servers: Sequence[Mapping[str, Any]]) -> str:
    """A table (name, type, status, tools) with each failed server's error under it."""
    rows = [("NAME", "TYPE", "STATUS", "TOOLS")]
    rows += [(str(s.get("name")), str(s.get("type")), str(s.get("status")), _tools_cell(s)) for s in servers]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines: list[str] = []
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        )
        error = servers[index - 1].get("error") if index else None
        if error:
            lines.append(f"  error: {error}")
    return "\n".join(line.rstrip() for line in lines)


def _tools_cell(server: Mapping[str, Any]) -> str:
    tools = server.get("tools")
    if not isinstance(tools, list):
        return "-"
    names = [str(t.get("name")) for t in tools if isinstance(t, Mapping)]
    return f"{len(names)}: {', '.join(names)}" if names else "0"
