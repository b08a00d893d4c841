"""`lms unload`: unload one instance, or all of them."""

from __future__ import annotations

from collections.abc import Sequence

import click

from openlms.cli.app import CliApp, get_app, host_option
from openlms.cli.errors import CliError
from openlms.cli.schema import LoadedInstance, loaded_instances

NO_MODELS = "No models to unload."
NO_KEY_NO_TTY = (
    "No model given. Run `lms ps` to see the loaded models, then `lms unload <identifier>` "
    "(or `lms unload --all`)."
)


@click.command("unload", help="Unload a model")
@click.argument("model_key", required=False)
@click.option("-a", "--all", "unload_all", is_flag=True, help="Unload all currently loaded models.")
@host_option
@click.pass_context
def unload(ctx: click.Context, model_key: str | None, unload_all: bool, host_url: str | None) -> None:
    if model_key is not None and unload_all:
        raise click.UsageError("Give a model key or --all, not both.")
    app = get_app(ctx)
    with app.connect(host_url) as client:
        instances = loaded_instances(client.list_models())
        if not instances and model_key is None:
            click.echo(NO_MODELS)
            return
        targets = (
            [i.identifier for i in instances] if unload_all else [choose_instance(app, instances, model_key)]
        )
        for identifier in targets:
            client.unload(identifier)
            click.echo(f'Unloaded "{identifier}".')


def choose_instance(app: CliApp, instances: Sequence[LoadedInstance], query: str | None) -> str:
    """The identifier to unload: `query` itself, the only instance of model key `query`, or the user's pick.

    An unknown `query` is returned as is, so the server answers for it (404 with its message).
    """
    from openlms.cli.prompt import instance_labels, pick

    if query is None:
        if not app.stdin_is_tty():
            raise CliError(NO_KEY_NO_TTY)
        return instances[pick("Select a model to unload:", instance_labels(instances))].identifier
    if any(i.identifier == query for i in instances):
        return query
    same_key = [i for i in instances if i.model_key == query]
    if len(same_key) == 1:
        return same_key[0].identifier
    if not same_key:
        return query
    if app.stdin_is_tty():
        return same_key[
            pick(f"'{query}' is loaded several times. Select one:", instance_labels(same_key))
        ].identifier
    ids = ", ".join(i.identifier for i in same_key)
    raise CliError(
        f"'{query}' is loaded {len(same_key)} times ({ids}). Give the identifier to unload, or --all."
    )
