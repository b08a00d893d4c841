"""The interactive prompt of `lms chat`: messages, slash commands, Ctrl+C and Ctrl+D."""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from openlms.cli.chat.answer import Answer, ask
from openlms.cli.chat.session import ChatSession, Stats
from openlms.cli.chat.slash import Slash, help_text, message_text, parse_slash
from openlms.cli.chat.view import AnswerView
from openlms.cli.errors import CliError

if TYPE_CHECKING:
    from openlms.cli.app import CliApp
    from openlms.cli.client import ApiClient

AGAIN_TO_LEAVE = "(Press Ctrl+C again, type /exit or press Ctrl+D to leave.)"


def prompt_text() -> str:
    """LM Studio's `› `, where the terminal can show it."""
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    return "› " if encoding == "utf8" else "> "


class Outcome(enum.Enum):
    DONE = "done"
    STOPPED = "stopped"  # an answer stopped by Ctrl+C: one more Ctrl+C at the prompt leaves
    LEAVE = "leave"


def print_stats(stats: Stats) -> None:
    click.echo("\n".join(stats.lines()), err=True)


@dataclass
class ChatLoop:
    app: CliApp
    client: ApiClient
    session: ChatSession
    make_view: Callable[[], AnswerView]
    show_stats: bool = False
    ttl: int | None = None
    read: Callable[[str], str] = input

    def run(self) -> None:
        """Read lines until /exit, Ctrl+D, or a Ctrl+C at the prompt right after another Ctrl+C."""
        armed = False
        prompt = prompt_text()
        while True:
            try:
                line = self.read(prompt)
            except KeyboardInterrupt:
                click.echo()
                if armed:
                    return
                armed = True
                click.echo(AGAIN_TO_LEAVE, err=True)
                continue
            except EOFError:
                click.echo()
                return
            outcome = self.handle(line)
            if outcome is Outcome.LEAVE:
                return
            armed = outcome is Outcome.STOPPED

    def handle(self, line: str) -> Outcome:
        """Run one line: a slash command or a message. Errors are one line; the chat goes on."""
        if not line.strip():
            return Outcome.DONE
        try:
            slash = parse_slash(line)
            if slash is not None:
                return self.command(slash)
            answer = self.answer(message_text(line))
        except CliError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            return Outcome.DONE
        except KeyboardInterrupt:  # Ctrl+C during a /model load, or between an answer and its stats
            click.echo("(cancelled)", err=True)
            return Outcome.STOPPED
        return Outcome.STOPPED if answer.stopped else Outcome.DONE

    def answer(self, text: str) -> Answer:
        self.session.ask(text)
        answer = ask(self.client, self.session, self.make_view())
        if self.show_stats and answer.stats is not None:
            print_stats(answer.stats)
        return answer

    def command(self, slash: Slash) -> Outcome:
        if slash.name == "exit":
            return Outcome.LEAVE
        if slash.name == "help":
            click.echo(help_text())
        elif slash.name == "clear":
            self.session.clear()
            click.echo("The conversation is cleared.")
        elif slash.name == "system-prompt":
            self._system_prompt(slash.arg)
        elif slash.name == "model":
            self._model(slash.arg)
        elif slash.name == "stats":
            self._stats()
        else:
            raise CliError(f"Unknown command /{slash.name}. Type /help to see the commands.")
        return Outcome.DONE

    def _system_prompt(self, text: str) -> None:
        if text:
            self.session.system_prompt = text
            click.echo("The system prompt is replaced.")
        else:
            click.echo(f"System prompt: {self.session.system_prompt or '(none)'}")

    def _model(self, query: str) -> None:
        if not query:
            click.echo(f"Model: {self.session.model}. Switch with /model <model>; the language models here:")
            for model in self.client.list_models():
                if model.type == "llm":
                    click.echo(f"  {model.key}" + ("  (loaded)" if model.instances else ""))
            return
        from openlms.cli.chat.models import resolve_model

        self.session.model = resolve_model(self.app, self.client, query, ttl=self.ttl)
        click.echo(f"Now chatting with {self.session.model}.")

    def _stats(self) -> None:
        if self.session.last_stats is None:
            click.echo("No answer yet: nothing to show.")
        else:
            print_stats(self.session.last_stats)
