"""What the benchmarks share: where the default models are, and the real server started as a user would
(`lms server start`) in a home of its own. The tests keep their own harness in `tests/support/`.

The benchmarks run as scripts (`.venv/bin/python bench/run.py`), so this folder is on `sys.path` and they
import this module as `harness`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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
    env: dict[str, str]

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
            raise SystemExit(
                f"lms {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result


def start_server(tmp: Path, models_dir: Path, port: int) -> Server:
    """A server in a home of its own under `tmp`, on `port`, with no SDK port (so that a benchmark never
    competes with a test run for the SDK's 41343; SDK clients connect to `port`)."""
    home = tmp / "home"
    (home / "openlms").mkdir(parents=True, exist_ok=True)
    settings = {"models_dir": str(models_dir), "sdk_port": 0}
    (home / "openlms" / "settings.json").write_text(json.dumps(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLMS_")}
    env["OPENLMS_HOME"] = str(home)
    server = Server(home, port, env)
    server.lms("server", "start", "--port", str(port), timeout=60)
    return server
