"""The real server started as a user would (`lms server start`) in a home of its own, and where the default
models are: what the benchmarks and the end-to-end tests (`tests/support/server.py`) share.

The benchmarks run as scripts (`.venv/bin/python bench/run.py`), so this folder is on `sys.path` and they
import this module as `harness`; the tests, run from the repository's root, import it as `bench.harness`.
It imports nothing from `tests` or from the other benchmarks.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from openlms.core.types import ModelDescriptor

LMS = str(Path(sys.executable).with_name("lms"))


def default_models_dir() -> Path:
    """Where `openlms-setup-models` put the default models: `OPENLMS_TEST_MODELS_DIR`, else the models
    directory of the current settings (`OPENLMS_HOME` / `OPENLMS_MODELS_DIR` / `~/.lmstudio/models`)."""
    configured = os.environ.get("OPENLMS_TEST_MODELS_DIR")
    if configured:
        return Path(configured)
    from openlms.core.settings import Settings

    return Settings().resolved_models_dir


def find_model(models: Path, key: str) -> ModelDescriptor:
    """The downloaded model `key` in `models`; exits with a hint when it is missing."""
    from openlms.store import ModelCatalog

    found = ModelCatalog(models).find(key)
    if found is None:
        raise SystemExit(f"model {key} not found in {models}; run .venv/bin/openlms-setup-models")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
            raise RuntimeError(
                f"lms {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def lms_json(self, *args: str) -> object:
        return json.loads(self.lms(*args, "--json").stdout)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)

    def unload_all(self) -> None:
        self.lms("unload", "--all")


def start_server(
    tmp: Path,
    models_dir: Path,
    port: int,
    *flags: str,
    sdk_port: int = 0,
    settings: dict[str, object] | None = None,
) -> Server:
    """A server in a home of its own under `tmp`, on `port` (`flags`: more `lms server start` flags;
    `settings`: more of its settings.json); `sdk_port` 0 (the default): no second port, so that test and
    benchmark servers never compete for the SDK's 41343 (SDK clients connect to `port`)."""
    home = tmp / "home"
    (home / "openlms").mkdir(parents=True, exist_ok=True)
    settings = {"models_dir": str(models_dir), "sdk_port": sdk_port, **(settings or {})}
    (home / "openlms" / "settings.json").write_text(json.dumps(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLMS_")}
    env["OPENLMS_HOME"] = str(home)
    server = Server(home, port, env)
    server.lms("server", "start", "--port", str(port), *flags, timeout=60)
    return server
