"""`lms version`."""

from __future__ import annotations

import click


@click.command("version", help="Prints the version of the CLI")
def version() -> None:
    from openlms import __version__

    click.echo(f"openlms {__version__}")
