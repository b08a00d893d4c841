"""The Python examples of the spec's openai.md run unchanged (model name replaced) against openlms.

They hard-code http://localhost:1234, so this module runs its own server on port 1234.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.server import CHAT_MODEL, EMBEDDING_MODEL, Server
from tests.support.spec import python_blocks

pytestmark = pytest.mark.e2e

OPENAI_MD = "0_app/4_api/1_endpoints/openai.md"


def python_examples() -> list[str]:
    return python_blocks(OPENAI_MD)


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
