"""End-to-end fixtures: the real server, started with `lms server start` as a user would, on the real
default models (placed by `openlms-setup-models`, which `./scripts/test.sh` runs first).

Each server gets its own temporary home (`OPENLMS_HOME`) whose settings point the models directory at
the installed defaults (`OPENLMS_TEST_MODELS_DIR`, else the default `~/.lmstudio/models`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.model_log import ModelLog
from tests.support.server import (
    BASE_MODEL,
    CHAT_MODEL,
    EMBEDDING_MODEL,
    SDK_PORT,
    Server,
    default_models_dir,
    free_port,
    port_is_free,
    sdk_port_held,
    start_server,
)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    path = default_models_dir()
    missing = [k for k in (CHAT_MODEL, BASE_MODEL, EMBEDDING_MODEL) if not _present(path, k)]
    if missing:
        pytest.fail(f"default models missing in {path}: {missing}. Run .venv/bin/openlms-setup-models first.")
    return path


def _present(models: Path, key: str) -> bool:
    needle = {
        "smollm2-135m-instruct": "SmolLM2-135M",
        "gemma-3-270m": "gemma-3-270m",
        "text-embedding-all-minilm-l6-v2": "all-MiniLM-L6-v2",
    }[key]
    return any(needle.lower() in p.name.lower() for p in models.rglob("*.gguf"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    """One server per test module (JIT on, auto-evict on)."""
    srv = start_server(tmp_path_factory.mktemp("srv"), models_dir, free_port())
    yield srv
    srv.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def server_1234(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    """A server on 1234, the port the spec's examples hard-code (one module at a time holds it)."""
    if not port_is_free(1234):
        pytest.skip("port 1234 is in use; the spec's examples need it")
    srv = start_server(tmp_path_factory.mktemp("spec"), models_dir, 1234)
    yield srv
    srv.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    """A server that also listens on 41343, where the lmstudio SDK looks when given no host
    (`lms.llm()`, `with lms.Client()`). One module at a time holds that port (a file lock)."""
    with sdk_port_held():
        srv = start_server(tmp_path_factory.mktemp("sdk"), models_dir, free_port(), sdk_port=SDK_PORT)
        try:
            yield srv
        finally:
            srv.lms("server", "stop", check=False)


@pytest.fixture
def model_log(server: Server) -> Iterator[ModelLog]:
    """`lms log stream --source model` beside the test: the prompts the model got and what it wrote."""
    with ModelLog(server) as log:
        yield log
