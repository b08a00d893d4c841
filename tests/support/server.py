"""Starting the real openlms server for end-to-end tests, as a user would (`lms`).

The benchmarks keep their own, smaller harness (`bench/harness.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CHAT_MODEL = "smollm2-135m-instruct"
BASE_MODEL = "gemma-3-270m"
EMBEDDING_MODEL = "text-embedding-all-minilm-l6-v2"
LMS = str(Path(sys.executable).with_name("lms"))

# A `logit_bias` for CHAT_MODEL that bans its 17 control tokens (ids 0-16; its end-of-generation tokens
# <|endoftext|>, <|im_end|> and <reponame> are among them): it then writes plain text until `max_tokens`,
# so that a test can count on an answer's length without counting on its words.
NEVER_ENDS: dict[str, float] = {str(token): -100 for token in range(17)}


def default_models_dir() -> Path:
    """Where `openlms-setup-models` put the default models: `OPENLMS_TEST_MODELS_DIR`, else the models
    directory of the current settings (`OPENLMS_HOME` / `OPENLMS_MODELS_DIR` / `~/.lmstudio/models`)."""
    configured = os.environ.get("OPENLMS_TEST_MODELS_DIR")
    if configured:
        return Path(configured)
    from openlms.core.settings import Settings

    return Settings().resolved_models_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Free to listen on, as the server binds (SO_REUSEADDR: old connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Server:
    home: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lms(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [LMS, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"lms {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def lms_json(self, *args: str) -> object:
        return json.loads(self.lms(*args, "--json").stdout)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)

    def unload_all(self) -> None:
        self.lms("unload", "--all")


def start_server(tmp: Path, models_dir: Path, port: int, *flags: str, sdk_port: int = 0) -> Server:
    """A server in its own home; `sdk_port` 0 (the default): no second port, so that test servers never
    compete for the SDK's 41343."""
    home = tmp / "home"
    (home / "openlms").mkdir(parents=True, exist_ok=True)
    settings = {"models_dir": str(models_dir), "sdk_port": sdk_port}
    (home / "openlms" / "settings.json").write_text(json.dumps(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLMS_")}
    env["OPENLMS_HOME"] = str(home)
    server = Server(home, port, env)
    server.lms("server", "start", "--port", str(port), *flags, timeout=60)
    return server


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
