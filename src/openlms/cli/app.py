"""The object every command receives (click's `ctx.obj`): how to reach and start the server.

Its fields are the seams tests use: an httpx transport (e.g. `httpx.MockTransport`), the command that
runs the server, the TTY check and the timeouts. Production code uses the defaults.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from openlms.cli.discovery import find_running_server, home_dir

if TYPE_CHECKING:
    import httpx

    from openlms.cli.client import ApiClient

F = TypeVar("F", bound=Callable[..., Any])

LOCAL_HINT = "Start it with `lms server start`."
REMOTE_HINT = "Is the server running there, and reachable from this machine?"


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def _default_server_command() -> tuple[str, ...]:
    return (sys.executable, "-m", "openlms.server")


@dataclass
class CliApp:
    transport: httpx.BaseTransport | None = None
    server_command: tuple[str, ...] = field(default_factory=_default_server_command)
    stdin_is_tty: Callable[[], bool] = _stdin_is_tty  # whether to offer interactive pickers
    show_progress: Callable[[], bool] = _stderr_is_tty  # whether `lms load` draws a progress bar
    start_timeout_s: float = 30.0
    stop_timeout_s: float = 15.0
    poll_interval_s: float = 0.1

    def client(self, base_url: str, *, hint: str | None = None) -> ApiClient:
        from openlms.cli.client import ApiClient

        return ApiClient(base_url, transport=self.transport, hint=hint)

    def connect(self, host_url: str | None) -> ApiClient:
        """A client for `--host` (already a URL), else for the local server, started if need be."""
        if host_url is not None:
            return self.client(host_url, hint=REMOTE_HINT)
        record = find_running_server(home_dir())
        if record is not None:
            return self.client(record.url, hint=LOCAL_HINT)
        from openlms.cli import serverctl

        return self.client(serverctl.wake_up(self), hint=LOCAL_HINT)


def get_app(ctx: click.Context) -> CliApp:
    return ctx.ensure_object(CliApp)


def host_option(function: F) -> F:
    """The `--host` option of the commands that talk to a server; its value becomes a base URL."""
    return click.option(
        "--host",
        "host_url",
        metavar="HOST",
        callback=_parse_host_option,
        help="A remote server: hostname, hostname:port or http://hostname:port (port 1234 by default). "
        "Without it, the local server is used (and started if it is not running).",
    )(function)


def _parse_host_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from openlms.cli.discovery import parse_host

    try:
        return parse_host(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
