"""Interactive choices, for a TTY only (callers check `CliApp.stdin_is_tty` first)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from openlms.cli.render import format_size, type_label
from openlms.cli.schema import LoadedInstance, ModelInfo


def pick(title: str, labels: Sequence[str], *, default: int | None = None) -> int:
    """Print a numbered list and return the index the user types (Enter alone takes `default`, an index)."""
    click.echo(title)
    width = len(str(len(labels)))
    for number, label in enumerate(labels, 1):
        click.echo(f"  {number:>{width}}. {label}")
    choice: int = click.prompt(
        "Enter a number",
        type=click.IntRange(1, len(labels)),
        default=None if default is None else default + 1,
    )
    return choice - 1


def model_labels(models: Sequence[ModelInfo]) -> list[str]:
    width = max(len(m.key) for m in models)
    return [
        f"{m.key.ljust(width)}  {type_label(m.type):<9}  {format_size(m.size_bytes):>9}"
        + ("  (loaded)" if m.instances else "")
        for m in models
    ]


def instance_labels(instances: Sequence[LoadedInstance]) -> list[str]:
    width = max(len(i.identifier) for i in instances)
    return [f"{i.identifier.ljust(width)}  {type_label(i.type):<9}  {i.path}" for i in instances]
