"""A server killed with SIGKILL whose parent has not reaped it yet is dead, though its pid still exists."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from openlms.cli import discovery


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="zombies are read from /proc (Linux)")
def test_an_unreaped_killed_process_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert discovery._is_zombie(child.pid) is False
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not discovery._is_zombie(child.pid):  # the kernel marks it Z until we reap it
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(child.pid, 0)  # the pid exists: kill(0) alone would call it alive
    finally:
        child.kill()
        child.wait()
    assert discovery._is_zombie(child.pid) is False
