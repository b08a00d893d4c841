"""`lms link`: LM Link's peers and this device (docs/link.md), through the server's admin routes
(`/api/v1/link`, docs/http-api.md); the server is started if need be, like every command. Requests are not
routed to peers yet."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import click

from openlms.cli.app import get_app, host_option

LINK_PATH = "/api/v1/link"
_STATUS_TIMEOUT = 30.0  # the server checks every peer at once, each within a few seconds
NOT_ROUTED = "Note: requests are not routed to peers yet; `lms link status` shows what they serve."


@click.group("link", help="LM Link: use models on your other machines (peers)", no_args_is_help=True)
def link() -> None:
    pass


@link.command("add", help="Add a peer (another openlms or LM Studio server, or an OpenAI-compatible engine)")
@click.argument("name")
@click.argument("url")
@click.option("--token", metavar="TOKEN", help="The peer's API token (sent as Authorization: Bearer).")
@click.option(
    "--engine",
    type=click.Choice(["openlms", "openai"]),
    default="openlms",
    show_default=True,
    help="openai: any OpenAI-compatible server (vLLM, SGLang, llama-server, Ollama's /v1).",
)
@host_option
@click.pass_context
def add(
    ctx: click.Context, name: str, url: str, token: str | None, engine: str, host_url: str | None
) -> None:
    checked(name, "NAME")
    body: dict[str, Any] = {"url": url, "engine": engine} | ({"token": token} if token is not None else {})
    with get_app(ctx).connect(host_url) as client:
        result = client.request_json("PUT", f"{LINK_PATH}/peers/{quote(name, safe='')}", json=body)
    verb = "Added" if result.get("created", True) else "Replaced"
    click.echo(f"{verb} peer '{name}' ({result.get('engine', engine)}) at {result.get('url', url)}.")
    click.echo("Check it with `lms link status`.")


@link.command("rm", help="Remove a peer")
@click.argument("name")
@host_option
@click.pass_context
def rm(ctx: click.Context, name: str, host_url: str | None) -> None:
    checked(name, "NAME")
    with get_app(ctx).connect(host_url) as client:
        client.request_json("DELETE", f"{LINK_PATH}/peers/{quote(name, safe='')}")
    click.echo(f"Removed peer '{name}'.")


@link.command("status", help="This device, and each peer's state, latency and loaded models")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@host_option
@click.pass_context
def status(ctx: click.Context, as_json: bool, host_url: str | None) -> None:
    with get_app(ctx).connect(host_url) as client:
        body = client.request_json("GET", f"{LINK_PATH}/status", timeout=_STATUS_TIMEOUT)
    if as_json:
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    click.echo(render_status(body))


@link.command("enable", help="Turn LM Link on")
@host_option
@click.pass_context
def enable(ctx: click.Context, host_url: str | None) -> None:
    _patch(ctx, host_url, {"enabled": True})
    click.echo("LM Link is enabled.")
    click.echo(NOT_ROUTED)


@link.command("disable", help="Turn LM Link off")
@host_option
@click.pass_context
def disable(ctx: click.Context, host_url: str | None) -> None:
    _patch(ctx, host_url, {"enabled": False})
    click.echo("LM Link is disabled.")


@link.command("set-device-name", help="Name this device (default: the host name)")
@click.argument("name")
@host_option
@click.pass_context
def set_device_name(ctx: click.Context, name: str, host_url: str | None) -> None:
    checked(name, "NAME")
    result = _patch(ctx, host_url, {"device_name": name})
    click.echo(f"This device is now named '{result.get('device_name', name)}'.")


@link.command(
    "set-preferred-device", help="The device to use when a model is on several (a peer or this one)"
)
@click.argument("name", required=False)
@click.option("--clear", is_flag=True, help="Have no preferred device.")
@host_option
@click.pass_context
def set_preferred_device(ctx: click.Context, name: str | None, clear: bool, host_url: str | None) -> None:
    if (name is None) != clear:
        raise click.UsageError("Give a device's NAME, or --clear.")
    if name is not None:
        checked(name, "NAME")
    _patch(ctx, host_url, {"preferred_device": name})
    click.echo(f"The preferred device is now '{name}'." if name else "No preferred device.")


def checked(name: str, hint: str) -> None:
    """Refuse a name the server would refuse (a slash would not even reach the route)."""
    from openlms.core.errors import LinkConfigError
    from openlms.core.peer_names import check_name

    try:
        check_name(name, "name")
    except LinkConfigError as exc:
        raise click.BadParameter(exc.message, param_hint=hint) from None


def _patch(ctx: click.Context, host_url: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
    with get_app(ctx).connect(host_url) as client:
        return client.request_json("PATCH", LINK_PATH, json=dict(body))


def render_status(body: Mapping[str, Any]) -> str:
    """This device and the switch, then a table of peers with each one's reason under it."""
    enabled = "enabled" if body.get("enabled") else "disabled"
    lines = [f"This device: {body.get('device_name')} (LM Link {enabled})"]
    if body.get("preferred_device"):
        lines.append(f"Preferred device: {body['preferred_device']}")
    peers = [p for p in body.get("peers") or [] if isinstance(p, Mapping)]
    if not peers:
        lines.append("No peers. Add one with `lms link add <name> <url> [--token TOKEN]`.")
        return "\n".join(lines)
    lines += ["", *render_peers(peers)]
    if body.get("routing") is False:
        lines += ["", NOT_ROUTED]
    return "\n".join(lines)


def render_peers(peers: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [("DEVICE", "ENGINE", "STATE", "LATENCY", "MODELS")]
    rows += [
        (str(p.get("name")), str(p.get("engine")), str(p.get("state")), _latency(p), _models(p))
        for p in peers
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines: list[str] = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        lines.append(("  ".join(cells) + "  " + row[4]).rstrip())
        reason = peers[index - 1].get("reason") if index else None
        if reason:
            lines.append(f"  {reason}")
    return lines


def _latency(peer: Mapping[str, Any]) -> str:
    latency = peer.get("latency_ms")
    return f"{latency:.0f} ms" if isinstance(latency, int | float) else "-"


def _models(peer: Mapping[str, Any]) -> str:
    models = peer.get("loaded_models")
    if not isinstance(models, list) or peer.get("state") != "online":
        return "-"
    return ", ".join(map(str, models)) if models else "(none loaded)"
