"""`lms get`: search Hugging Face (and openlms's curated list) and download a GGUF model.

Everything goes through the server's public SDK websocket API, namespace `repository`
(research/sdk-protocol.md): `searchModels`, `getModelDownloadOptions`, and the `downloadModel` channel,
whose progress drives the bar. Closing the socket (Ctrl+C) pauses the download on the server; the same
command resumes it. The downloaded model's path comes from `GET /api/v1/models`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from openlms.cli.app import CliApp, get_app, host_option
from openlms.cli.errors import CliError
from openlms.cli.getmodel import (
    DownloadChoice,
    SearchResult,
    Wanted,
    available_quants,
    exact_result,
    match_choice,
    parse_choices,
    parse_results,
    parse_wanted,
    recommended,
)
from openlms.cli.render import download_choice_labels, format_duration, format_size, search_result_labels

if TYPE_CHECKING:
    from openlms.cli.client import ApiClient
    from openlms.cli.sdkws import SdkSocket

MLX_REFUSED = (
    "MLX models run on Apple's MLX runtime, which openlms does not have; openlms runs GGUF models "
    "(llama.cpp). Leave out --mlx to search GGUF models."
)
PAUSED = "Download paused; run the same command again to resume."
EXIT_INTERRUPTED = 130
_SEARCH_TIMEOUT_S = 120.0  # the server retries the Hub with backoff before it answers
_DOWNLOAD_SILENCE_S = 600.0  # a download may sit behind others (max_concurrent_downloads)


@click.command("get", help="Search and download models")
@click.argument("term", required=False, metavar="[SEARCH TERM]")
@click.option("--mlx", is_flag=True, help="Include MLX models (openlms runs GGUF models only: refused).")
@click.option("--gguf", is_flag=True, help="Include GGUF models in search results (the default).")
@click.option("--limit", type=click.IntRange(1, 25), default=10, show_default=True, help="How many results.")
@click.option("--always-show-all-results", is_flag=True, help="Show search results even with an exact match.")
@click.option(
    "--always-show-download-options", is_flag=True, help="Show the quantizations even when one is given."
)
@click.option(
    "-y", "--yes", is_flag=True, help="No prompts: the first match and the recommended quantization."
)
@host_option
@click.pass_context
def get(
    ctx: click.Context,
    term: str | None,
    mlx: bool,
    gguf: bool,
    limit: int,
    always_show_all_results: bool,
    always_show_download_options: bool,
    yes: bool,
    host_url: str | None,
) -> None:
    if mlx:
        raise CliError(MLX_REFUSED)
    app = get_app(ctx)
    flow = GetFlow(app, yes=yes, show_all=always_show_all_results, show_options=always_show_download_options)
    wanted = parse_wanted(term) if term and term.strip() else None
    from openlms.cli.sdkws import SdkSocket

    with app.connect(host_url) as client:
        with SdkSocket(client.base_url, "repository", timeout_s=_SEARCH_TIMEOUT_S) as repo:
            target = flow.choose_result(repo, wanted, limit)
            if target is None:
                return
            choice = flow.choose_option(repo, target, wanted)
            before = {m.key for m in client.list_models()}
            click.echo(f"Downloading {choice.download_identifier} ({format_size(choice.size_bytes)})")
            key = flow.download(repo, choice)
        _report_done(client, key, already=key in before)


class GetFlow:
    """The choices of one `lms get`: which search result, which quantization, then the download."""

    def __init__(self, app: CliApp, *, yes: bool, show_all: bool, show_options: bool) -> None:
        self.app = app
        self.yes = yes
        self.show_all = show_all
        self.show_options = show_options

    # -- which model ---------------------------------------------------------------------------------

    def choose_result(self, repo: SdkSocket, wanted: Wanted | None, limit: int) -> SearchResult | None:
        """The model to get; None when there is nothing to choose without a terminal (list printed)."""
        if wanted is None:
            return self._staff_pick(repo, limit)
        direct = _hf_result(wanted.repo_id) if wanted.repo_id else None
        if direct is not None and wanted.text != wanted.repo_id and not self.show_all:
            return direct  # a URL names its repo: no search needed
        results = search(repo, wanted.repo_id or wanted.text, limit)
        exact = exact_result(results) or direct
        if exact is not None and (not self.show_all or not results):
            return exact
        if not results:
            raise CliError(
                f"No GGUF models found for '{wanted.text}'. Try another search term, a Hugging Face repo "
                "(user/repo) or its URL."
            )
        return self._pick_result(results, wanted.text, exact)

    def _staff_pick(self, repo: SdkSocket, limit: int) -> SearchResult | None:
        results = search(repo, None, limit)
        if not results:
            raise CliError("No curated models fit this machine's memory. Search with `lms get <term>`.")
        if self.yes:
            return results[0]
        if not self.app.stdin_is_tty():
            click.echo("Staff picks that fit this machine:")
            for label in search_result_labels(results):
                click.echo(f"  {label}")
            click.echo("Download one with: lms get <name>")
            return None
        from openlms.cli.prompt import pick

        return results[pick("Staff picks that fit this machine. Select one to download:", _labels(results))]

    def _pick_result(
        self, results: Sequence[SearchResult], term: str, exact: SearchResult | None
    ) -> SearchResult:
        if self.yes or not self.app.stdin_is_tty():
            click.echo(f"Models matching '{term}':")
            for label in search_result_labels(results):
                click.echo(f"  {label}")
            if self.yes or exact is not None:
                return exact or results[0]
            raise CliError(
                f"Several models match '{term}'. Run `lms get <name>` with one of them, or use --yes to "
                "take the first."
            )
        from openlms.cli.prompt import pick

        default = list(results).index(exact) if exact is not None and exact in results else 0
        return results[pick(f"Models matching '{term}'. Select one:", _labels(results), default=default)]

    # -- which file ----------------------------------------------------------------------------------

    def choose_option(self, repo: SdkSocket, target: SearchResult, wanted: Wanted | None) -> DownloadChoice:
        choices = parse_choices(
            repo.rpc("getModelDownloadOptions", {"modelSearchResultIdentifier": dict(target.identifier)})
        )
        if not choices:
            raise CliError(f"{target.name} has no GGUF file openlms can download.")
        named = wanted is not None and (wanted.quantization is not None or wanted.file is not None)
        chosen = match_choice(choices, wanted) if wanted is not None and named else None
        if named and chosen is None:
            assert wanted is not None
            asked = wanted.file or wanted.quantization
            raise CliError(f"{target.name} has no {asked}. Available: {available_quants(choices)}.")
        if not self.show_options and (chosen is not None or self.yes or len(choices) == 1):
            return chosen or recommended(choices)
        return self._pick_option(target, choices, chosen)

    def _pick_option(
        self, target: SearchResult, choices: Sequence[DownloadChoice], chosen: DownloadChoice | None
    ) -> DownloadChoice:
        default = chosen or recommended(choices)
        title = f"Download options for {target.name}:"
        if self.yes or not self.app.stdin_is_tty():
            click.echo(title)
            for label in download_choice_labels(choices):
                click.echo(f"  {label}")
            if self.yes or chosen is not None:
                return default
            raise CliError(
                f"Several quantizations of {target.name}. Add one to the name (`lms get "
                f"{target.name}@{(default.quantization or 'Q4_K_M').lower()}`), or use --yes for the "
                "recommended one."
            )
        from openlms.cli.prompt import pick

        labels = download_choice_labels(choices)
        return choices[pick(f"{title} Select one:", labels, default=list(choices).index(default))]

    # -- the download --------------------------------------------------------------------------------

    def download(self, repo: SdkSocket, choice: DownloadChoice) -> str:
        """Run the `downloadModel` channel to its end; the model key. Ctrl+C pauses it (exit 130)."""
        repo.timeout_s = _DOWNLOAD_SILENCE_S
        try:
            with _Progress(self.app, choice) as progress:
                creation = {"downloadIdentifier": choice.download_identifier}
                return _follow(repo.channel("downloadModel", creation), progress)
        except KeyboardInterrupt:
            repo.close()  # the server pauses the job when its client goes away; the .part stays
            click.echo(PAUSED, err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def search(repo: SdkSocket, term: str | None, limit: int) -> list[SearchResult]:
    opts: dict[str, Any] = {"limit": limit, "compatibilityTypes": ["gguf"]}
    if term is not None:
        opts["searchTerm"] = term
    return parse_results(repo.rpc("searchModels", {"opts": opts}))


def _hf_result(repo_id: str) -> SearchResult:
    return SearchResult(repo_id, {"type": "hf", "identifier": repo_id}, True, False, None, None)


def _labels(results: Sequence[SearchResult]) -> list[str]:
    return search_result_labels(results)


class _Progress:
    """Shows a download's progress: a rich bar on a terminal, else a line at every quarter."""

    def __init__(self, app: CliApp, choice: DownloadChoice) -> None:
        self.choice = choice
        self.fancy = app.show_progress()
        self.quarter = 0
        self.finalizing = False
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.fancy:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=False),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[eta]}"),
            )
            self._bar = Progress(*columns, console=Console(stderr=True))
            self._bar.__enter__()
            self._task = self._bar.add_task(
                self.choice.name, total=self.choice.size_bytes or None, rate="", eta=""
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def update(self, done: int, total: int, speed: float) -> None:
        rate = f"{format_size(int(speed))}/s" if speed > 0 else ""
        eta = f"ETA {format_duration((total - done) / speed)}" if speed > 0 and total > done else ""
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total or None, rate=rate, eta=eta)
            return
        quarter = 4 * done // total if total > 0 else 0
        if quarter > self.quarter and quarter < 4:
            self.quarter = quarter
            speed_text = f", {rate}" if rate else ""
            click.echo(f"  {100 * done // total}% ({format_size(done)} of {format_size(total)}{speed_text})")

    def finalize(self) -> None:
        if self.finalizing:
            return
        self.finalizing = True
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self.choice.name} (verifying)", eta="")
        else:
            click.echo("  100%, verifying the sha256 and moving it into place")


def _follow(messages: Iterator[dict[str, Any]], progress: _Progress) -> str:
    """Read the `downloadModel` channel to its `success`: the model key."""
    for message in messages:
        kind = message.get("type")
        update = message.get("update")
        if kind == "downloadProgress" and isinstance(update, dict):
            progress.update(
                _num(update.get("downloadedBytes")),
                _num(update.get("totalBytes")),
                float(_num(update.get("speedBytesPerSecond"))),
            )
        elif kind == "startFinalizing":
            progress.finalize()
        elif kind == "success":
            key = message.get("defaultIdentifier")
            if isinstance(key, str) and key:
                return key
            raise CliError("The server finished the download without naming the model key; run `lms ls`.")
    raise CliError("The server closed the download before it finished; run the same command again to resume.")


def _num(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _report_done(client: ApiClient, key: str, *, already: bool) -> None:
    found = [m for m in client.list_models() if m.key == key]
    where = found[0].path if found else None
    if already:
        click.echo(f"Already downloaded{f' ({where})' if where else ''}. Load it with: lms load {key}")
    else:
        click.echo(f"Downloaded to {where or key}. Load it with: lms load {key}")
