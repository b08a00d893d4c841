"""`lms ps`: the loaded model instances."""

from __future__ import annotations

import json
import time

import click

from openlms.cli.app import get_app, host_option
from openlms.cli.render import crash_lines, render_ps
from openlms.cli.schema import loaded_instances


@click.command("ps", help="List all loaded models")
@click.option("--json", "as_json", is_flag=True, help="Print the loaded instances as a JSON array.")
@host_option
@click.pass_context
def ps(ctx: click.Context, as_json: bool, host_url: str | None) -> None:
    with get_app(ctx).connect(host_url) as client:
        models, crashes = client.list_models_and_crashes()
    instances = loaded_instances(models)
    if as_json:
        click.echo(json.dumps([i.to_json() for i in instances], indent=2, ensure_ascii=False))
    else:
        loaded = frozenset(i.identifier for i in instances)
        click.echo("\n".join([render_ps(instances), *crash_lines(crashes, time.time(), loaded)]))
