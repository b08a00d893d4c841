"""The real openlms server for end-to-end tests, started as a user would (`lms`): the harness the
benchmarks use too (`bench/harness.py`), plus the tests' models, the SDK port's lock and helpers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from bench.harness import LMS as LMS
from bench.harness import Server as Server
from bench.harness import default_models_dir as default_models_dir
from bench.harness import free_port as free_port
from bench.harness import start_server as start_server

CHAT_MODEL = "smollm2-135m-instruct"
BASE_MODEL = "gemma-3-270m"
EMBEDDING_MODEL = "text-embedding-all-minilm-l6-v2"

# A `logit_bias` for CHAT_MODEL that bans its 17 control tokens (ids 0-16; its end-of-generation tokens
# <|endoftext|>, <|im_end|> and <reponame> are among them): it then writes plain text until `max_tokens`,
# so that a test can count on an answer's length without counting on its words.
NEVER_ENDS: dict[str, float] = {str(token): -100 for token in range(17)}


def port_is_free(port: int) -> bool:
    """Free to listen on, as the server binds (SO_REUSEADDR: old connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


SDK_PORT = 41343  # the lmstudio SDK's first default port
SDK_PORT_LOCK = Path(os.environ.get("TMPDIR", "/tmp")) / "openlms-sdk-port-41343.lock"


@contextlib.contextmanager
def sdk_port_held(timeout: float = 240) -> Iterator[None]:
    """Hold the machine-wide lock on port 41343 (test modules, the SDK suite runner and benchmarks take
    turns), then wait until the port is actually free."""
    SDK_PORT_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with SDK_PORT_LOCK.open("w") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"port {SDK_PORT} stayed locked by another run ({SDK_PORT_LOCK})"
                    ) from None
                time.sleep(1)
        while not port_is_free(SDK_PORT):
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {SDK_PORT} is in use by something else")
            time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
