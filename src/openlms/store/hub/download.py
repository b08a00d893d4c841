"""Verified, resumable downloads of one option into `<models>/<user>/<repo>/`.

Partial data lives in `<models>/.openlms-downloads/<user>/<repo>/<file>.part` with a json sidecar (the
expected sha256, size and the Hub's etag) so a resume continues only the same remote file. Every file is
fetched and verified first; only then are they all moved into place, so the catalog (which skips dot
folders) never lists a half download. A lock per file keeps two processes (or threads) off the same part.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from filelock import FileLock
from filelock import Timeout as LockTimeout

from openlms.core.errors import DownloadError, InsufficientDiskError
from openlms.core.fsutil import contained_path
from openlms.store.hub.client import HubClient
from openlms.store.hub.progress import Meter
from openlms.store.hub.transfer import FileJob, Sidecar, load_state
from openlms.store.hub.types import DownloadCancelled, DownloadOption, DownloadProgress, HubFile

STAGING_DIR: Final = ".openlms-downloads"
DISK_MARGIN_BYTES: Final = 256 * 1024 * 1024
_LOCK_POLL_S: Final = 0.25


def installed_path(option: DownloadOption, models_dir: Path) -> Path | None:
    """The main file's final path when every file of `option` is in place with its size."""
    folder = _final_dir(option, models_dir)
    if not all(_installed(folder / _base(f), f) for f in option.files):
        return None
    return folder / _base(option.files[0])


def download_option(
    client: HubClient,
    option: DownloadOption,
    models_dir: Path,
    *,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
    disk_free: Callable[[Path], int] | None = None,
) -> Path:
    """Download (or resume, or find installed) every file of `option`; returns the main file's path.

    Blocking: call it in a thread. Raises DownloadCancelled when `cancel` is set (partial data kept),
    InsufficientDiskError, DownloadVerificationError, DownloadError, HubError/HubAuthRequiredError.
    `disk_free` (tests) replaces `shutil.disk_usage(models_dir).free`."""
    cancel = cancel or threading.Event()
    meter = Meter(option.size_bytes, on_progress)
    done = installed_path(option, models_dir)
    if done is not None:
        meter.add(option.size_bytes, transferred=False)
        meter.flush()
        return done
    final_dir, staging = _final_dir(option, models_dir), _staging_dir(option, models_dir)
    staging.mkdir(parents=True, exist_ok=True)
    _check_disk(option, models_dir, final_dir, staging, disk_free or _free_bytes)
    for f in option.files:
        _fetch(client, option, f, final_dir, staging, meter, cancel)
    meter.flush(finalizing=True)
    final_dir.mkdir(parents=True, exist_ok=True)
    for f in option.files:
        _install(f, final_dir, staging, cancel)
    meter.flush(finalizing=True)
    return final_dir / _base(option.files[0])


def _fetch(
    client: HubClient,
    option: DownloadOption,
    f: HubFile,
    final_dir: Path,
    staging: Path,
    meter: Meter,
    cancel: threading.Event,
) -> None:
    part = _part(staging, f)
    with _file_lock(part, cancel):
        if _installed(final_dir / _base(f), f):
            meter.add(f.size, transferred=False)
            return
        FileJob(client, option, f, part, meter, cancel).run()


def _install(f: HubFile, final_dir: Path, staging: Path, cancel: threading.Event) -> None:
    part = _part(staging, f)
    with _file_lock(part, cancel):
        target = final_dir / _base(f)
        if not _installed(target, f):
            if not part.exists():
                raise DownloadError(
                    f"The downloaded {f.path} disappeared from {staging} before it was installed; run the "
                    "download again."
                )
            os.replace(part, target)
        Sidecar.path_for(part).unlink(missing_ok=True)
        part.unlink(missing_ok=True)


@contextmanager
def _file_lock(part: Path, cancel: threading.Event) -> Iterator[None]:
    """Hold `<part>.lock`; another holder (thread or process) is waited for, checking `cancel`."""
    lock = FileLock(str(part.with_name(part.name + ".lock")), thread_local=False, is_singleton=False)
    while True:
        try:
            lock.acquire(timeout=_LOCK_POLL_S)
            break
        except LockTimeout:
            if cancel.is_set():
                raise DownloadCancelled(
                    f"Cancelled while waiting for another download of {part.stem}."
                ) from None
    try:
        yield
    finally:
        lock.release()


def _check_disk(
    option: DownloadOption, models_dir: Path, final_dir: Path, staging: Path, free: Callable[[Path], int]
) -> None:
    remaining = sum(_remaining(f, final_dir, staging) for f in option.files)
    if remaining == 0:
        return
    available = free(models_dir)
    if available < remaining + DISK_MARGIN_BYTES:
        raise InsufficientDiskError(
            f"Not enough disk space for {option.identifier}: it needs {_gb(remaining)} more (plus "
            f"{_gb(DISK_MARGIN_BYTES)} to spare) and {models_dir} has {_gb(available)} free. Free some "
            "space, or point the models folder (the `models_dir` setting) at a bigger disk."
        )


def _remaining(f: HubFile, final_dir: Path, staging: Path) -> int:
    if _installed(final_dir / _base(f), f):
        return 0
    part = _part(staging, f)
    if not part.exists():
        return f.size
    state = load_state(part, f)
    have = part.stat().st_size if part.exists() and state.size == f.size else 0
    return max(f.size - have, 0)


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def _installed(target: Path, f: HubFile) -> bool:
    try:
        return target.is_file() and target.stat().st_size == f.size
    except OSError:
        return False


def _base(f: HubFile) -> str:
    return f.path.rsplit("/", 1)[-1]


def _final_dir(option: DownloadOption, models_dir: Path) -> Path:
    return contained_path(models_dir, option.repo_id)


def _staging_dir(option: DownloadOption, models_dir: Path) -> Path:
    return contained_path(models_dir, f"{STAGING_DIR}/{option.repo_id}")


def _part(staging: Path, f: HubFile) -> Path:
    return contained_path(staging, _base(f) + ".part")


def _gb(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 10**8 else f"{nbytes / 1e6:.1f} MB"
