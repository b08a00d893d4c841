"""Verified, resumable downloads of one option into `<models>/<user>/<repo>/`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from openlms.store.hub.client import HubClient
from openlms.store.hub.types import DownloadOption, DownloadProgress


def installed_path(option: DownloadOption, models_dir: Path) -> Path | None:
    """The main file's final path when every file of `option` is in place with its size."""
    folder = models_dir.joinpath(*option.repo_id.split("/"))
    for f in option.files:
        target = folder / f.path.rsplit("/", 1)[-1]
        if not target.is_file() or target.stat().st_size != f.size:
            return None
    return folder / option.files[0].path.rsplit("/", 1)[-1]


def download_option(
    client: HubClient,
    option: DownloadOption,
    models_dir: Path,
    *,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    raise NotImplementedError
