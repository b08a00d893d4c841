"""Progress of one option's download: bytes so far, total, speed over the last seconds."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Final

from openlms.store.hub.types import DownloadProgress

_WINDOW_S: Final = 3.0
_INTERVAL_S: Final = 0.1


class Meter:
    """Counts bytes and calls `on_progress` at most every 0.1 s (and always on `flush`)."""

    def __init__(self, total: int, on_progress: Callable[[DownloadProgress], None] | None) -> None:
        self.total = total
        self.done = 0
        self._on_progress = on_progress
        self._samples: deque[tuple[float, int]] = deque()
        self._last_report = 0.0

    def add(self, nbytes: int, *, transferred: bool = True) -> None:
        """`nbytes` more are in; `transferred=False` for bytes found on disk (not counted in the speed)."""
        self.done += nbytes
        now = time.monotonic()
        if transferred:
            self._samples.append((now, nbytes))
        if now - self._last_report >= _INTERVAL_S:
            self._report(now, finalizing=False)

    def rewind(self, nbytes: int) -> None:
        """A partial file was discarded (the remote file changed): its bytes are to be fetched again."""
        self.done = max(0, self.done - nbytes)

    def flush(self, *, finalizing: bool = False) -> None:
        self._report(time.monotonic(), finalizing=finalizing)

    def speed(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self._samples and now - self._samples[0][0] > _WINDOW_S:
            self._samples.popleft()
        if not self._samples:
            return 0.0
        span = max(now - self._samples[0][0], 0.25)
        return sum(n for _, n in self._samples) / span

    def _report(self, now: float, *, finalizing: bool) -> None:
        self._last_report = now
        if self._on_progress is not None:
            done = min(self.done, self.total)
            self._on_progress(DownloadProgress(done, self.total, self.speed(now), finalizing))
