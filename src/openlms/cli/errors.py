"""Errors the CLI reports as one `Error: ...` line on stderr."""

from __future__ import annotations

import click


class CliError(click.ClickException):
    """A runtime failure: printed as `Error: <message>`, exit code 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def one_line(text: str) -> str:
    """Collapse whitespace and newlines so an error always fits on one line."""
    return " ".join(text.split())
