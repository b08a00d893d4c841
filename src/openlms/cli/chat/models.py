"""Which model `lms chat` talks to: the one named (loaded if need be, with `lms load`'s progress bar),
else the loaded one, else the user's pick."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from openlms.cli.errors import CliError
from openlms.cli.schema import LoadedInstance, ModelInfo

if TYPE_CHECKING:
    from openlms.cli.app import CliApp
    from openlms.cli.client import ApiClient

LS_HINT = "Run `lms ls` to see your models."
NONE_LOADED = (
    "No model is loaded. Name one (`lms chat <model>`; `lms ls` lists them) or load one with `lms load`."
)


def resolve_model(app: CliApp, client: ApiClient, query: str | None, *, ttl: int | None) -> str:
    """The identifier to send requests to; loads the model when it is not loaded yet."""
    models = client.list_models()
    if query is None:
        return _default(app, client, models, ttl)
    loaded = [i for i in _llm_instances(models) if i.identifier == query]
    if loaded:
        return loaded[0].identifier
    from openlms.cli.commands.load import match_models

    matches = match_models(models, query)
    llms = [m for m in matches if m.type == "llm"]
    if matches and not llms:
        raise CliError(f"'{query}' is not a language model ({matches[0].type}): `lms chat` needs an LLM.")
    running = [m.instances[0].identifier for m in llms if m.instances]
    if running:
        return running[0]
    if len(llms) > 1:
        llms = [_pick_one(app, llms, f"Several models match '{query}'. Select one:")]
    if not llms:  # nothing here by that name: the server may still know it (a path); else its message
        return _load(app, client, query, ttl, hint=LS_HINT)
    return _load(app, client, llms[0].key, ttl)


def _default(app: CliApp, client: ApiClient, models: Sequence[ModelInfo], ttl: int | None) -> str:
    instances = _llm_instances(models)
    if len(instances) == 1:
        return instances[0].identifier
    if instances:
        if not app.stdin_is_tty():
            names = ", ".join(i.identifier for i in instances)
            raise CliError(f"Several models are loaded ({names}). Name one: `lms chat <identifier>`.")
        from openlms.cli.prompt import instance_labels, pick

        return instances[pick("Select a loaded model to chat with:", instance_labels(instances))].identifier
    if not app.stdin_is_tty():
        raise CliError(NONE_LOADED)
    candidates = [m for m in models if m.type == "llm" and m.error is None]
    if not candidates:
        raise CliError("You have no language models yet. Download one with `lms get`.")
    return _load(app, client, _pick_one(app, candidates, "Select a model to chat with:").key, ttl)


def _pick_one(app: CliApp, models: Sequence[ModelInfo], title: str) -> ModelInfo:
    if not app.stdin_is_tty():
        keys = ", ".join(m.key for m in models)
        raise CliError(f"Several models match ({keys}). Give the full model key.")
    from openlms.cli.prompt import model_labels, pick

    return models[pick(title, model_labels(models))]


def _llm_instances(models: Sequence[ModelInfo]) -> list[LoadedInstance]:
    return [i for m in models if m.type == "llm" for i in m.instances]


def _load(app: CliApp, client: ApiClient, key: str, ttl: int | None, *, hint: str | None = None) -> str:
    from openlms.cli.commands.load import load_body, load_with_progress

    body = load_body(key, identifier=None, ttl=ttl, gpu=None, context_length=None)
    if hint is None:  # a model of the list: say so (the server resolves an unknown name, or refuses it)
        click.echo(f'Loading model "{key}"...', err=True)
    try:
        result = load_with_progress(app, client, body)
    except CliError as exc:
        raise CliError(f"{exc.message} {hint}" if hint else exc.message) from None
    return result.identifier
