"""Download throughput of `openlms.store.hub` from the local FakeHub (SmolLM2, ~98 MB, streamed from disk).

    .venv/bin/python bench/hub_download.py [--reps 3]

Reports: a full download (stream + sha256 + move into place), a resume after a cut at the middle (the kept
half is hashed first), and a pause/resume round trip. The FakeHub is a Python server on this machine, so
the figures bound the client's own overhead (hashing, writing), not a network.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from openlms.store.hub import (  # noqa: E402
    DownloadCancelled,
    DownloadOption,
    DownloadProgress,
    HubClient,
    download_option,
)
from tests.support.fake_hub import SMOLLM2_REPO, FakeHub  # noqa: E402


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with FakeHub() as hub:
        hub.add_smollm2()
        client = HubClient(hub.url, retries=3, backoff_s=0.01)
        option = client.listing(SMOLLM2_REPO).options[0]
        size = option.size_bytes
        full, resumed, paused = [], [], []
        for _ in range(args.reps):
            with tempfile.TemporaryDirectory() as tmp:
                full.append(_timed(lambda: download_option(client, option, Path(tmp))))
            with tempfile.TemporaryDirectory() as tmp:
                hub.cut_after(option.files[0].path, size // 2)
                resumed.append(_timed(lambda: download_option(client, option, Path(tmp))))
            with tempfile.TemporaryDirectory() as tmp:
                paused.append(_pause_resume(client, option, Path(tmp)))
    mb = size / 1e6
    for label, times in (
        ("full download", full),
        ("cut at 50% + resume", resumed),
        ("pause + resume", paused),
    ):
        best = min(times)
        print(
            f"{label:22s} {statistics.median(times):6.2f} s median, {mb / best:7.1f} MB/s best ({mb:.0f} MB)"
        )


def _pause_resume(client: HubClient, option: DownloadOption, models: Path) -> float:
    cancel = threading.Event()

    def stop(progress: DownloadProgress) -> None:
        if progress.downloaded_bytes * 2 >= progress.total_bytes:
            cancel.set()

    start = time.perf_counter()
    with contextlib.suppress(DownloadCancelled):
        download_option(client, option, models, on_progress=stop, cancel=cancel)
    download_option(client, option, models)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
