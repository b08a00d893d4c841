"""`lms ls`: the downloaded models."""

from __future__ import annotations

import json

import click

from openlms.cli.app import get_app, host_option
from openlms.cli.render import filter_models, render_ls


@click.command("ls", help="List all downloaded models")
@click.option("--llm", is_flag=True, help="Show only LLMs. When not set, all models are shown.")
@click.option("--embedding", is_flag=True, help="Show only embedding models.")
@click.option("--json", "as_json", is_flag=True, help="Print the server's model objects as a JSON array.")
@click.option("--detailed", is_flag=True, help="Show path, quantization, max context and display name.")
@click.option("--variants", is_flag=True, help="List all variants (files) under models that have several.")
@host_option
@click.pass_context
def ls(
    ctx: click.Context,
    llm: bool,
    embedding: bool,
    as_json: bool,
    detailed: bool,
    variants: bool,
    host_url: str | None,
) -> None:
    with get_app(ctx).connect(host_url) as client:
        models = client.list_models()
    shown = filter_models(models, llm=llm, embedding=embedding)
    if as_json:
        click.echo(json.dumps([dict(m.raw) for m in shown], indent=2, ensure_ascii=False))
    else:
        click.echo(render_ls(shown, detailed=detailed, filtered=llm != embedding, variants=variants))
