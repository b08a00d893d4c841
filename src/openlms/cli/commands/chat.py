"""`lms chat`: chat with a model in the terminal (interactive), or answer once (`-p`, or stdin piped)."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import click

from openlms.cli.app import CliApp, get_app, host_option
from openlms.cli.errors import CliError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from openlms.cli.chat.session import ChatSession
    from openlms.cli.chat.view import AnswerView
    from openlms.cli.client import ApiClient

HISTORY_FILE = "chat-history"  # under <home>/openlms: the prompt's line history
HISTORY_LINES = 1000


def _request_json(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON ({exc})", ctx=ctx, param=param) from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object", ctx=ctx, param=param)
    return parsed


@click.command("chat", help="Chat with a model in the terminal")
@click.argument("model", required=False)
@click.option("-p", "--prompt", metavar="TEXT", help="Answer this prompt (and piped stdin), then exit.")
@click.option("-s", "--system-prompt", metavar="TEXT", help="The system prompt to use.")
@click.option("--stats", is_flag=True, help="Show the prediction's stats after each answer.")
@click.option(
    "--ttl",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="When the model has to be loaded: unload it after it has been idle this long.",
)
@click.option(
    "--request-json",
    "extra",
    callback=_request_json,
    hidden=True,
    help="More fields for every chat request (a JSON object; for tests, e.g. max_tokens).",
)
@host_option
@click.pass_context
def chat(
    ctx: click.Context,
    model: str | None,
    prompt: str | None,
    system_prompt: str | None,
    stats: bool,
    ttl: int | None,
    extra: dict[str, Any],
    host_url: str | None,
) -> None:
    from openlms.cli.chat.session import DEFAULT_SYSTEM_PROMPT, ChatSession

    app = get_app(ctx)
    interactive = app.stdin_is_tty()
    first = _first_message(prompt, None if interactive else _read_stdin())
    if first is None and not interactive:
        raise CliError(
            "Nothing to answer: stdin was empty. Give a prompt with -p, or run `lms chat` in a terminal."
        )
    with app.connect(host_url) as client:
        from openlms.cli.chat.models import resolve_model

        identifier = resolve_model(app, client, model, ttl=ttl)
        session = ChatSession(
            identifier, DEFAULT_SYSTEM_PROMPT if system_prompt is None else system_prompt, extra=extra
        )
        if first is not None:
            ctx.exit(_answer_once(client, session, first, stats))
        _interactive(app, client, session, stats, ttl)


def _first_message(prompt: str | None, piped: str | None) -> str | None:
    """LM Studio's rule: `-p` text, then a blank line and stdin when stdin is piped; stdin alone without
    `-p`. None: nothing to send first (an interactive chat)."""
    piped = piped.strip() if piped else ""
    if prompt is not None:
        return f"{prompt}\n\n{piped}" if piped else prompt
    return piped or None


def _read_stdin() -> str:
    return sys.stdin.read()


def _answer_once(client: ApiClient, session: ChatSession, text: str, stats: bool) -> int:
    from openlms.cli.chat.answer import ask
    from openlms.cli.chat.loop import print_stats

    session.ask(text)
    answer = ask(client, session, _view())
    if stats and answer.stats is not None:
        print_stats(answer.stats)
    return 130 if answer.stopped else 0


def _view() -> AnswerView:
    from openlms.cli.chat.view import PlainView, RichView

    out = sys.stdout
    if out.isatty():
        from rich.console import Console

        return RichView(Console())
    return PlainView(out, sys.stderr)


def _interactive(app: CliApp, client: ApiClient, session: ChatSession, stats: bool, ttl: int | None) -> None:
    from openlms.cli.chat.loop import ChatLoop

    click.echo(
        f"Chatting with {session.model}. Type /help for the commands; /exit or Ctrl+D leaves.", err=True
    )
    loop = ChatLoop(app, client, session, _view, show_stats=stats, ttl=ttl)
    with _line_history():
        loop.run()


@contextmanager
def _line_history() -> Iterator[None]:
    """Line editing and a history kept across chats (readline; nothing where it is missing or where
    stdin is not a real terminal)."""
    if not sys.stdin.isatty():
        yield
        return
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input()
        yield
        return
    from openlms.cli.discovery import home_dir

    path = home_dir() / "openlms" / HISTORY_FILE
    with suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(HISTORY_LINES)
    try:
        yield
    finally:
        with suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
