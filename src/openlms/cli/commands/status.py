"""`lms status`: whether the local server runs, and what it has loaded. Never starts a server."""

from __future__ import annotations

import click

from openlms.cli.app import LOCAL_HINT, get_app
from openlms.cli.commands.server import api_enabled
from openlms.cli.discovery import find_running_server, home_dir
from openlms.cli.errors import CliError
from openlms.cli.render import render_status
from openlms.cli.schema import loaded_instances

API_OFF_LINE = (
    "API:     OFF for other programs (the app and `lms` still work; `lms server start` switches it on)"
)


@click.command("status", help="Prints the status of the openlms server")
@click.pass_context
def status(ctx: click.Context) -> None:
    record = find_running_server(home_dir())
    if record is None:
        click.echo(render_status(None, None))
        return
    try:
        with get_app(ctx).client(record.url, hint=LOCAL_HINT) as client:
            instances = loaded_instances(client.list_models())
    except CliError:
        instances = None
    lines = render_status(record.port, instances).split("\n")
    if api_enabled(get_app(ctx), record.url) is False:
        lines.insert(1, API_OFF_LINE)
    click.echo("\n".join(lines))
