"""The Python examples of the spec's openai.md run unchanged (model name replaced) against openlms.

They hard-code http://localhost:1234, so this module runs its own server on port 1234.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import CHAT_MODEL, EMBEDDING_MODEL, Server, port_is_free, start_server

pytestmark = pytest.mark.e2e

OPENAI_MD = Path("lmstudio-docs/0_app/4_api/1_endpoints/openai.md")


def spec_file() -> Path:
    """The spec's openai.md: in `shared/` beside the repository (as CI has it), or beside a parent."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / OPENAI_MD
        if candidate.exists():
            return candidate
    return Path(__file__).resolve().parents[3] / "shared" / OPENAI_MD


def python_examples() -> list[str]:
    spec = spec_file()
    if not spec.exists():
        pytest.skip(f"the spec (../shared/{OPENAI_MD}) is not beside this checkout")
    return re.findall(r"```python\n(.*?)```", spec.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def server_1234(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    if not port_is_free(1234):
        pytest.skip("port 1234 is in use; the spec's examples need it")
    srv = start_server(tmp_path_factory.mktemp("spec"), models_dir, 1234)
    yield srv
    srv.lms("server", "stop", check=False)


def test_the_spec_has_the_examples() -> None:
    examples = python_examples()
    assert len(examples) == 2 and all("localhost:1234" in e for e in examples)


@pytest.mark.parametrize("index", [0, 1])
def test_openai_md_python_example_runs(server_1234: Server, index: int) -> None:
    code = python_examples()[index]
    model = EMBEDDING_MODEL if "embeddings" in code else CHAT_MODEL
    code = code.replace('"model-identifier"', f'"{model}"')
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    if model == CHAT_MODEL:
        assert "ChatCompletionMessage(content=" in result.stdout and "role='assistant'" in result.stdout
    else:
        values = result.stdout.strip().strip("[]").split(",")
        assert len(values) == 384 and all(float(v) == float(v) for v in values)
