"""`lms import`: bring a GGUF file (or a BERT sentence-transformers folder) into the models directory."""

from __future__ import annotations

from pathlib import Path

import click

from openlms.cli.app import get_app

MODES = {"copy": "copy", "move": "move", "hard-link": "hardlink", "symbolic-link": "symlink"}


@click.command("import", help="Import a model file into the models directory")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--publisher", help="Publisher folder (default: local, or asked on a terminal).")
@click.option("--repo", help="Repository folder (default: derived from the file name).")
@click.option(
    "--mode",
    type=click.Choice(list(MODES)),
    default="copy",
    show_default=True,
    help="How to bring the file in.",
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask; use the defaults.")
@click.pass_context
def import_(
    ctx: click.Context, path: Path, publisher: str | None, repo: str | None, mode: str, yes: bool
) -> None:
    app = get_app(ctx)
    if publisher is None and not yes and app.stdin_is_tty():
        publisher = click.prompt("Publisher", default="local")
    body = {"path": str(path.resolve()), "publisher": publisher, "repo": repo, "mode": MODES[mode]}
    with app.connect(None) as client:
        result = client.import_model({k: v for k, v in body.items() if v is not None})
    click.echo(f"Imported {path.name} as {result['key']} ({result['path']}).")
    if result.get("error"):
        click.echo(f"Warning: the imported file cannot be loaded: {result['error']}", err=True)
    else:
        click.echo(f"Load it with: lms load {result['key']}")
