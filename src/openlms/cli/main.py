"""The `lms` entry point: a click group whose errors are always one `Error: ...` line.

Exit codes: 0 success, 1 runtime error (server unreachable, unknown model, ...), 2 usage error (bad
flag or value). Command modules import only click and light CLI modules at the top; httpx, rich and
pydantic are imported inside the commands that need them, so `lms --help` starts fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from openlms.cli.app import CliApp
from openlms.cli.commands.app import app
from openlms.cli.commands.chat import chat
from openlms.cli.commands.daemon import daemon
from openlms.cli.commands.get import get
from openlms.cli.commands.importcmd import import_
from openlms.cli.commands.link import link
from openlms.cli.commands.load import load
from openlms.cli.commands.log import log
from openlms.cli.commands.ls import ls
from openlms.cli.commands.mcp import mcp
from openlms.cli.commands.ps import ps
from openlms.cli.commands.server import server
from openlms.cli.commands.status import status
from openlms.cli.commands.token import token
from openlms.cli.commands.unload import unload
from openlms.cli.commands.version import version
from openlms.cli.errors import one_line

DEBUG_ENV = "OPENLMS_DEBUG"  # set it to see the traceback of an unexpected error


class LmsGroup(click.Group):
    """Lists subcommands in the order they were added, LM Studio style, and reports errors on one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from openlms import __version__

        formatter.write(f"lms - openlms CLI - v{__version__}\n\nUsage\nlms <subcommand>\n\n")
        formatter.write("where <subcommand> can be one of:\n\n")
        for name in self.list_commands(ctx):
            command = self.commands[name]
            formatter.write(f"- {name} - {command.get_short_help_str(limit=100)}\n")
        formatter.write("\nFor more help, try running `lms <subcommand> --help`\n")

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        code = run_guarded(lambda: super(LmsGroup, self).main(args, prog_name, complete_var, False, **extra))
        if standalone_mode:
            sys.exit(code)
        return code


def run_guarded(invoke: Callable[[], object]) -> int:
    """Run click, turning every failure into one stderr line and an exit code."""
    try:
        result = invoke()
    except click.exceptions.NoArgsIsHelpError as exc:  # e.g. `lms server` alone: its help, not an error
        click.echo(exc.format_message())
        return 0
    except click.UsageError as exc:
        click.echo(f"Error: {one_line(exc.format_message())}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"Error: {one_line(exc.format_message())}", err=True)
        return exc.exit_code
    except click.Abort as exc:
        click.echo("Aborted.", err=True)
        return 130 if isinstance(exc.__cause__, KeyboardInterrupt) else 1
    except Exception as exc:  # a bug: still one line, unless debugging
        if os.environ.get(DEBUG_ENV):
            raise
        click.echo(
            f"Error: unexpected {type(exc).__name__}: {one_line(str(exc))} "
            f"(set {DEBUG_ENV}=1 to see the traceback)",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


@click.group(
    "lms", cls=LmsGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """openlms's `lms`: manage the local server and its models."""
    ctx.ensure_object(CliApp)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


cli.add_command(status)
cli.add_command(server)
cli.add_command(ls)
cli.add_command(get)
cli.add_command(ps)
cli.add_command(load)
cli.add_command(chat)
cli.add_command(unload)
cli.add_command(import_)
cli.add_command(log)
cli.add_command(token)
cli.add_command(mcp)
cli.add_command(link)
cli.add_command(app)
cli.add_command(daemon)
cli.add_command(version)


def main(argv: Sequence[str] | None = None, *, app: CliApp | None = None) -> int:
    """Run `lms` with `argv` (default: `sys.argv[1:]`) and return the exit code."""
    return cli.main(args=argv, prog_name="lms", standalone_mode=False, obj=app)
