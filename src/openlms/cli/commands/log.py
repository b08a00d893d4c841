"""`lms log stream`: follow `GET /api/v1/logs/stream` (docs: 3_cli/log-stream.md).

Output follows LM Studio's: the line `Streaming logs from LM Studio` (kept verbatim: scripts wait for it;
it is printed once the server confirms the subscription, so anything sent after it is seen), then per
model event a blank line and `key: value` lines, the prompt or reply on the lines after `input:` /
`output:` (log-stream.md's layout). Server events are `[YYYY-MM-DD HH:MM:SS] [LEVEL] message` lines.
`--json` prints each event as one JSON object per line (the header then goes to stderr).

Never starts a server: without one, it says so and exits 1. Ctrl+C exits quietly with 0.

`--source server` follows the server's records as the server emits them, not its log file, so the file's
rotation by size (`log_max_bytes`, `log_backups`) never interrupts or repeats what it shows.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import click

from openlms.cli.app import LOCAL_HINT, REMOTE_HINT, get_app
from openlms.cli.discovery import find_running_server, home_dir, local_url, parse_host, url_host
from openlms.cli.errors import CliError

if TYPE_CHECKING:
    from openlms.cli.app import CliApp

HEADER = "Streaming logs from LM Studio"
INPUT_TYPE = "llm.prediction.input"
OUTPUT_TYPE = "llm.prediction.output"
FILTERS = {"input": INPUT_TYPE, "output": OUTPUT_TYPE}
NOT_RUNNING = "The openlms server is not running. Start it with `lms server start`."
STREAM_CLOSED = "The server closed the log stream (was it stopped?)."
_STATS_LABELS = (  # (LM Studio's stats key, label, unit suffix)
    ("tokensPerSecond", "tokens/s", ""),
    ("timeToFirstTokenSec", "time to first token", " s"),
    ("promptTokensCount", "prompt tokens", ""),
    ("predictedTokensCount", "predicted tokens", ""),
    ("stopReason", "stop reason", ""),
)

EventHandler = Callable[[str, dict[str, Any]], None]


# -- formatting (pure) ------------------------------------------------------------------------------


def _moment(timestamp_ms: Any, tz: tzinfo | None) -> datetime:
    if isinstance(timestamp_ms, int | float) and not isinstance(timestamp_ms, bool):
        try:
            return datetime.fromtimestamp(timestamp_ms / 1000, tz=tz)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(tz)


def format_timestamp(timestamp_ms: Any, tz: tzinfo | None = None) -> str:
    """`9/15/2025, 3:16:39 PM` (en-US, local time unless `tz`), as LM Studio prints it."""
    moment = _moment(timestamp_ms, tz)
    hour = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    clock = f"{hour}:{moment.minute:02d}:{moment.second:02d} {meridiem}"
    return f"{moment.month}/{moment.day}/{moment.year}, {clock}"


def format_server_time(timestamp_ms: Any, tz: tzinfo | None = None) -> str:
    return _moment(timestamp_ms, tz).strftime("%Y-%m-%d %H:%M:%S")


def parse_filter(value: str) -> frozenset[str]:
    """`input`, `output` or `input,output` -> the event types to show; ValueError otherwise."""
    names = {part.strip().lower() for part in value.split(",") if part.strip()}
    if not names or not names <= FILTERS.keys():
        raise ValueError(f"'{value}' is not input, output or input,output.")
    return frozenset(FILTERS[name] for name in names)


def stats_lines(stats: Mapping[str, Any]) -> list[str]:
    lines = ["stats:"]
    for key, label, unit in _STATS_LABELS:
        value = stats.get(key)
        if value is None:
            continue
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        lines.append(f"  {label}: {text}{unit}")
    return lines


def format_model_event(event: Mapping[str, Any], *, stats: bool = False, tz: tzinfo | None = None) -> str:
    """One model event as LM Studio prints it, starting with a blank line."""
    kind = str(event.get("type", ""))
    lines = [
        "",
        f"timestamp: {format_timestamp(event.get('timestamp'), tz)}",
        f"type: {kind}",
        f"modelIdentifier: {event.get('modelIdentifier', '')}",
    ]
    if kind == INPUT_TYPE:
        lines += [f"modelPath: {event.get('modelPath', '')}", "input:", str(event.get("input", ""))]
    elif kind == OUTPUT_TYPE:
        lines += ["output:", str(event.get("output", ""))]
        if stats and isinstance(event.get("stats"), Mapping):
            lines += stats_lines(event["stats"])
    return "\n".join(lines)


def format_server_event(event: Mapping[str, Any], tz: tzinfo | None = None) -> str:
    level = str(event.get("level", "INFO"))
    return f"[{format_server_time(event.get('timestamp'), tz)}] [{level}] {event.get('message', '')}"


def json_line(event: Mapping[str, Any], *, stats: bool) -> str:
    shown = event if stats else {k: v for k, v in event.items() if k != "stats"}
    return json.dumps(shown, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Printer:
    """Turns the stream's SSE messages into output lines (`echo` is a seam for tests)."""

    source: str
    types: frozenset[str] = frozenset({INPUT_TYPE})
    as_json: bool = False
    stats: bool = False
    echo: Callable[..., None] = click.echo
    dropped: int = field(default=0, init=False)

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "ready":
            self.echo(HEADER, err=self.as_json)
        elif kind == "dropped":
            self._report_drops(payload.get("dropped"))
        elif kind == "message":
            self._event(payload)

    def _event(self, event: dict[str, Any]) -> None:
        if self.source == "model" and event.get("type") not in self.types:
            return
        if self.as_json:
            self.echo(json_line(event, stats=self.stats or self.source != "model"))
        elif self.source == "model":
            self.echo(format_model_event(event, stats=self.stats))
        else:
            self.echo(format_server_event(event))

    def _report_drops(self, total: Any) -> None:
        if not isinstance(total, int) or total <= self.dropped:
            return
        lost, self.dropped = total - self.dropped, total
        self.echo(f"Warning: {lost} log event(s) dropped: this client is reading too slowly.", err=True)


# -- the stream -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    hint: str
    unreachable: str | None = None  # the whole message when nothing listens (local: "not running")


def resolve_target(host_url: str | None, port: int | None) -> Target:
    """`--host` (with `--port` replacing its port), else the local server; never starts one."""
    if host_url is not None:
        return Target(with_port(host_url, port) if port is not None else host_url, REMOTE_HINT)
    if port is not None:
        url = local_url("127.0.0.1", port)
        return Target(url, LOCAL_HINT, f"No openlms server is running on port {port}. {LOCAL_HINT}")
    record = find_running_server(home_dir())
    if record is None:
        raise CliError(NOT_RUNNING)
    return Target(record.url, LOCAL_HINT, NOT_RUNNING)


def with_port(url: str, port: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{url_host(parts.hostname or '')}:{port}"))


def follow(app: CliApp, target: Target, source: str, on_event: EventHandler) -> None:
    """Read the log stream until the server ends it, calling `on_event(event, payload)` per message."""
    with (
        app.client(target.url, hint=target.hint) as client,
        closing(client.log_stream(source, unreachable=target.unreachable)) as events,
    ):
        for event, payload in events:
            on_event(event, payload)


def _quiet_stdout() -> None:
    """After a closed pipe (`lms log stream | head`): send further output, and the exit flush, nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


# -- the command ------------------------------------------------------------------------------------


def _filter_option(ctx: click.Context, param: click.Parameter, value: str | None) -> frozenset[str] | None:
    try:
        return None if value is None else parse_filter(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _host_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        return None if value is None else parse_host(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.group("log", help="Log operations. Currently only supports streaming logs via `lms log stream`")
def log() -> None:
    pass


@log.command("stream", help="Stream logs: what models receive and produce, or the server's log.")
@click.option(
    "--source",
    type=click.Choice(["model", "server"]),
    default="model",
    show_default=True,
    help="model: model input/output; server: the HTTP server's log (start-up, requests, status).",
)
@click.option(
    "--filter",
    "types",
    metavar="input|output|input,output",
    callback=_filter_option,
    help="Model logs to show (default: input, the formatted prompt). Output is shown once complete.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
@click.option("--stats", is_flag=True, help="Add tokens/s and related metrics to model output.")
@click.option(
    "--host",
    "host_url",
    metavar="HOST",
    callback=_host_option,
    help="Another address of this machine's server: hostname, hostname:port or http://hostname:port "
    "(log streams are served to local clients only).",
)
@click.option("--port", type=click.IntRange(1, 65535), help="The server's port (default: the running one).")
@click.pass_context
def stream(
    ctx: click.Context,
    source: str,
    types: frozenset[str] | None,
    as_json: bool,
    stats: bool,
    host_url: str | None,
    port: int | None,
) -> None:
    if source == "server" and (types is not None or stats):
        raise click.UsageError("--filter and --stats apply to --source model only.")
    target = resolve_target(host_url, port)
    printer = Printer(source, types or frozenset({INPUT_TYPE}), as_json, stats)
    try:
        follow(get_app(ctx), target, source, printer)
    except KeyboardInterrupt:
        return
    except BrokenPipeError:
        _quiet_stdout()
        return
    raise CliError(STREAM_CLOSED)
