"""`lms load`: load a model through `POST /api/v1/models/load`, with a progress bar."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from openlms.cli.app import CliApp, get_app, host_option
from openlms.cli.errors import CliError
from openlms.cli.estimate import load_config
from openlms.cli.render import format_size
from openlms.cli.schema import LoadResult, ModelInfo, loaded_instances
from openlms.core.types import MAX_PARALLEL

if TYPE_CHECKING:
    from openlms.cli.client import ApiClient

NO_KEY_NO_TTY = "No model key given. Run `lms ls` to see model keys, then `lms load <key>`."


def parse_gpu(value: str) -> str | float | None:
    """`max`, `off`, `auto` (None: the server decides) or a ratio from 0 to 1; ValueError otherwise."""
    text = value.strip().lower()
    if text in ("max", "off"):
        return text
    if text == "auto":
        return None
    try:
        ratio = float(text)
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"'{value}' is not 'max', 'off', 'auto' or a number from 0 to 1.")
    return ratio


def _gpu_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | float | None:
    try:
        return None if value is None else parse_gpu(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command("load", help="Load a model")
@click.argument("model_key", required=False)
@click.option(
    "--ttl",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Unload the model after it has been idle for this many seconds.",
)
@click.option(
    "--gpu",
    callback=_gpu_option,
    metavar="max|off|0..1",
    help="How much to offload to the GPU: max, off, or 0 to 1.",
)
@click.option("--context-length", type=click.IntRange(min=1), metavar="N", help="Context length in tokens.")
@click.option(
    "--parallel",
    type=click.IntRange(min=1, max=MAX_PARALLEL),
    metavar="N",
    help=f"Predictions the model serves at once (1 to {MAX_PARALLEL}; the server's default is 4).",
)
@click.option("--identifier", metavar="ID", help="The identifier to use for the model in API requests.")
@click.option("--estimate-only", is_flag=True, help="Print a memory estimate and exit without loading.")
@click.option("-y", "--yes", is_flag=True, help="No prompts: when several models match, load the first.")
@host_option
@click.pass_context
def load(
    ctx: click.Context,
    model_key: str | None,
    ttl: int | None,
    gpu: str | float | None,
    context_length: int | None,
    parallel: int | None,
    identifier: str | None,
    estimate_only: bool,
    yes: bool,
    host_url: str | None,
) -> None:
    app = get_app(ctx)
    if model_key is None and not app.stdin_is_tty():
        raise CliError(NO_KEY_NO_TTY)
    with app.connect(host_url) as client:
        model = choose_model(app, client.list_models(), model_key, yes=yes)
        if estimate_only:
            _print_estimate(client, model, model_key, context_length, gpu, parallel)
            return
        key = model.key if model is not None else str(model_key)
        body = load_body(
            key, identifier=identifier, ttl=ttl, gpu=gpu, context_length=context_length, parallel=parallel
        )
        click.echo(f'Loading model "{key}"...')
        started = time.monotonic()
        result = load_with_progress(app, client, body)
        seconds = result.load_time_seconds or time.monotonic() - started
        size = model.size_bytes if model is not None else _instance_size(client, result.identifier)
    click.echo(f"Model loaded successfully in {seconds:.2f}s. ({format_size(size)})")
    click.echo(f'To use the model in the API/SDK, use the identifier "{result.identifier}".')


def load_body(
    key: str,
    *,
    identifier: str | None,
    ttl: int | None,
    gpu: str | float | None,
    context_length: int | None,
    parallel: int | None = None,
) -> dict[str, Any]:
    """The `POST /api/v1/models/load` body; only what the user set is sent."""
    body: dict[str, Any] = {"model": key}
    if identifier:
        body["identifier"] = identifier
    if ttl is not None:
        body["ttl"] = ttl
    config = load_config(gpu=gpu, context_length=context_length, parallel=parallel)
    if config:
        body["config"] = config
    return body


def choose_model(
    app: CliApp, models: Sequence[ModelInfo], query: str | None, *, yes: bool
) -> ModelInfo | None:
    """The model to load: an exact key/path match, the only fuzzy match, or the user's pick.

    None means nothing here matches `query`; the server then answers for it (404 with its message).
    """
    from openlms.cli.prompt import model_labels, pick

    if query is None:
        candidates = [m for m in models if m.error is None]
        if not candidates:
            raise CliError("You have not downloaded any models yet.")
        return candidates[pick("Select a model to load:", model_labels(candidates))]
    matches = match_models(models, query)
    if len(matches) <= 1 or yes:
        return matches[0] if matches else None
    if app.stdin_is_tty():
        return matches[pick(f"Several models match '{query}'. Select one:", model_labels(matches))]
    keys = ", ".join(m.key for m in matches)
    raise CliError(f"'{query}' matches several models ({keys}). Give the full model key, or use --yes.")


def match_models(models: Sequence[ModelInfo], query: str) -> list[ModelInfo]:
    """The model whose key is `query`; else exact matches of publisher/key or path; else the models whose
    key or path contains `query`. (A model.yaml model keyed `publisher/name` wins over a file that is
    `name` from that publisher: its key is what `lms get` and `lms ls` print.)"""
    needle = query.strip().casefold()

    def names(model: ModelInfo) -> set[str]:
        full = f"{model.publisher}/{model.key}" if model.publisher else model.key
        return {model.path.casefold(), full.casefold()}

    for exact in (
        [m for m in models if m.key.casefold() == needle],
        [m for m in models if needle in names(m)],
    ):
        if exact:
            return exact
    return [m for m in models if needle in m.key.casefold() or needle in m.path.casefold()]


def load_with_progress(app: CliApp, client: ApiClient, body: dict[str, Any]) -> LoadResult:
    if not app.show_progress():
        return client.load(body)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (TextColumn("Loading model"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("load", total=1.0)
        return client.load(body, on_progress=lambda fraction: progress.update(task, completed=fraction))


def _instance_size(client: ApiClient, identifier: str) -> int:
    found = [i for i in loaded_instances(client.list_models()) if i.identifier == identifier]
    return found[0].size_bytes if found else 0


def _print_estimate(
    client: ApiClient,
    model: ModelInfo | None,
    query: str | None,
    context_length: int | None,
    gpu: str | float | None,
    parallel: int | None,
) -> None:
    """The server's estimate for this load (its default context and guardrails, the model's header)."""
    from openlms.cli.estimate import estimate_body, render_estimate

    if model is None:
        raise CliError(f"No model matching '{query}' was found. Run `lms ls` to see model keys.")
    body = estimate_body(model.key, gpu=gpu, context_length=context_length, parallel=parallel)
    name = f"{model.publisher}/{model.key}" if model.publisher else model.key
    click.echo(render_estimate(name, client.estimate(body)))
