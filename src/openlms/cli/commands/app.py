"""`lms app`: open the openlms web app (served by the server at /), starting the server if needed."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import click

from openlms.cli.app import get_app, host_option
from openlms.cli.deeplink import app_path_for, register
from openlms.cli.errors import CliError

if TYPE_CHECKING:
    from openlms.cli.client import ApiClient

APP_STATE_HEADER = "x-openlms-app"  # what GET / says: "built" or "not-built" (server/webapp/files.py)
BUILD_HINT = "The app is not built: the page says how to build it (scripts/build-app.sh in the repository)."


def has_display() -> bool:
    """Whether a graphical browser can open here (Linux without X11/Wayland would start a text browser)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def app_state(client: ApiClient) -> str:
    """`built`, `not-built`, or `unknown` (a server that does not serve the app: not openlms, or older)."""
    try:
        response = client.get_page("/")
    except CliError as exc:
        raise CliError(f"The server at {client.base_url} does not serve the app at /: {exc}") from None
    return str(response.headers.get(APP_STATE_HEADER, "unknown"))


@click.command("app", help="Open the openlms app in the browser (starts the server if needed)")
@click.option("--no-open", is_flag=True, help="Print the app's URL without opening a browser.")
@click.option("--json", "as_json", is_flag=True, help="Print {url, built, opened} as JSON.")
@click.option(
    "--deeplink",
    metavar="URL",
    help="Open the app at the install confirmation of an lmstudio://add_mcp link (MCP server).",
)
@click.option(
    "--register-deeplink",
    is_flag=True,
    help="Make lmstudio:// links open here (Linux: an xdg desktop entry), then exit.",
)
@host_option
@click.pass_context
def app(
    ctx: click.Context,
    no_open: bool,
    as_json: bool,
    deeplink: str | None,
    register_deeplink: bool,
    host_url: str | None,
) -> None:
    if register_deeplink:
        _register(as_json)
        return
    path = "/" if deeplink is None else app_path_for(deeplink)
    with get_app(ctx).connect(host_url) as client:
        state = app_state(client)
        url = client.base_url + path
    opened = False
    if not no_open and has_display():
        import webbrowser

        opened = webbrowser.open(url)
    if as_json:
        click.echo(json.dumps({"url": url, "built": state == "built", "opened": opened}))
        return
    click.echo(f"The openlms app: {url}")
    if state == "not-built":
        click.echo(BUILD_HINT, err=True)
    if not no_open and not opened:
        click.echo("Open that address in your browser (no browser could be started here).", err=True)


def _register(as_json: bool) -> None:
    path, default = register()
    if as_json:
        click.echo(json.dumps({"desktop_file": str(path), "default": default}))
        return
    click.echo(f"lmstudio:// links open the openlms app: {path}")
    if not default:
        click.echo(
            "xdg-mime could not make it the default handler: run "
            f"`xdg-mime default {path.name} x-scheme-handler/lmstudio`.",
            err=True,
        )
