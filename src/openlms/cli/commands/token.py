"""`lms token create|ls|rm`: API tokens for a server that requires authentication.

They work on the token file in the home (`<home>/openlms/tokens.json`) with or without a running
server; a running server sees the change at its next request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from openlms.cli.errors import CliError

if TYPE_CHECKING:
    from openlms.core.settings import Settings
    from openlms.core.tokens import TokenRecord, TokenStore

_GAP = " " * 4


@click.group("token", help="Create, list and remove API tokens (for `lms server start --require-auth`)")
def token() -> None:
    pass


@token.command("create", help="Create an API token. It is printed once: copy it.")
@click.option("--name", required=True, help="A unique name for the token, e.g. the app that uses it.")
@click.option("--expires", metavar="DURATION", help="Lifetime, e.g. 30d, 12h, 2w, 1y. Default: never.")
@click.option("--json", "as_json", is_flag=True, help="Print the token and its details as JSON.")
def create(name: str, expires: str | None, as_json: bool) -> None:
    from openlms.core.tokens import TokenError, parse_duration

    try:
        lifetime = parse_duration(expires) if expires is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--expires'") from None
    settings = _settings()
    try:
        created = _store(settings).create(name, expires_in=lifetime)
    except TokenError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"token": created.token, **created.record.public()}))
        return
    record = created.record
    until = f", expires {_when(record.expires_at)}" if record.expires_at else ""
    click.echo(f"Created API token '{record.name}'{until}:\n\n    {created.token}\n")
    click.echo("Copy it now: it is not shown again. Clients send it as `Authorization: Bearer <token>`")
    click.echo("(OpenAI clients: api_key=<token>), or read it from LM_API_TOKEN.")
    if not settings.require_auth:
        click.echo(
            "Note: the server does not require tokens yet; start it with `lms server start --require-auth`.",
            err=True,
        )


@token.command("ls", help="List API tokens (their names and visible prefixes; never the secrets).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def ls(as_json: bool) -> None:
    records = _records()
    if as_json:
        click.echo(json.dumps([record.public() for record in records]))
        return
    click.echo(render_tokens(records))


@token.command("rm", help="Remove (revoke) an API token by its name, id or sk-lm-<id> prefix.")
@click.argument("name_or_id")
def rm(name_or_id: str) -> None:
    from openlms.core.tokens import TokenError

    try:
        removed = _store(_settings()).revoke(name_or_id)
    except TokenError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"Removed API token '{removed.name}' ({removed.prefix}).")


def render_tokens(records: Sequence[TokenRecord], now: datetime | None = None) -> str:
    """A table like `lms ls`: NAME, PREFIX, CREATED, EXPIRES."""
    if not records:
        return "No API tokens. Create one with `lms token create --name <name>`."
    moment = now or datetime.now(UTC)
    rows = [("NAME", "PREFIX", "CREATED", "EXPIRES")]
    for record in records:
        expires = _when(record.expires_at) if record.expires_at else "never"
        if record.expired(moment):
            expires += " (expired)"
        rows.append((record.name, f"{record.prefix}…", _when(record.created_at), expires))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [_GAP.join([*(row[i].ljust(widths[i]) for i in range(3)), row[3]]) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _settings() -> Settings:
    from openlms.cli.serverctl import StartOptions, effective_settings

    return effective_settings(StartOptions())


def _store(settings: Settings) -> TokenStore:
    from openlms.core.tokens import TokenStore

    return TokenStore(settings.tokens_file)


def _records() -> list[TokenRecord]:
    from openlms.core.tokens import TokenError

    try:
        return _store(_settings()).records()
    except TokenError as exc:
        raise CliError(str(exc)) from None
