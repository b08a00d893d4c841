"""`lms ps`: the loaded model instances."""

from __future__ import annotations

import json

import click

from openlms.cli.app import get_app, host_option
from openlms.cli.render import render_ps
from openlms.cli.schema import loaded_instances


@click.command("ps", help="List all loaded models")
@click.option("--json", "as_json", is_flag=True, help="Print the loaded instances as a JSON array.")
@host_option
@click.pass_context
def ps(ctx: click.Context, as_json: bool, host_url: str | None) -> None:
    with get_app(ctx).connect(host_url) as client:
        instances = loaded_instances(client.list_models())
    if as_json:
        click.echo(json.dumps([i.to_json() for i in instances], indent=2, ensure_ascii=False))
    else:
        click.echo(render_ps(instances))
