"""Point a copy of the lmstudio SDK's own test suite (lmstudio 1.5.0 sdist, `tests/`) at openlms's
default models. Used by scripts/sdk-suite.sh on a copy outside the project; nothing of the suite is
kept in openlms.

The suite expects LM Studio's test models (Llama 3.2 1B, MobileVLM, Qwen2.5 7B, nomic-embed); openlms's
defaults stand in for them: SmolLM2-135M-Instruct for every LLM role (no vision model exists among the
defaults, so the VLM tests fail by design), Gemma 3 270M as the downloaded-but-not-loaded model of the
JIT test, all-MiniLM-L6-v2 for embeddings.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CHAT_PATH = "huggingfacetb/smollm2-135m-instruct"
CONSTANTS = {
    "EXPECTED_EMBEDDING": '"sentence-transformers/all-minilm-l6-v2"',
    "EXPECTED_EMBEDDING_ID": '"text-embedding-all-minilm-l6-v2"',
    "EXPECTED_EMBEDDING_LENGTH": "384",
    "EXPECTED_EMBEDDING_CONTEXT_LENGTH": "512",
    "EXPECTED_LLM": f'"{CHAT_PATH}"',
    "EXPECTED_LLM_ID": '"smollm2-135m-instruct"',
    "EXPECTED_VLM": f'"{CHAT_PATH}"',
    "EXPECTED_VLM_ID": '"smollm2-135m-instruct"',
    "TOOL_LLM_ID": '"smollm2-135m-instruct"',
    "SMALL_LLM_ID": '"gemma-3-270m"',
}
LLAMA_PATH = '"hugging-quants/llama-3.2-1b-instruct"'
ROLES = ("EXPECTED_LLM_ID", "EXPECTED_VLM_ID", "TOOL_LLM_ID")


def patch_constants(text: str) -> str:
    for name, value in CONSTANTS.items():
        text, n = re.subn(rf"^{name} = .*$", f"{name} = {value}", text, count=1, flags=re.M)
        if n != 1:
            raise SystemExit(f"tests/support/__init__.py: no '{name} = ...' line to patch")
    return text


def patch_roles(text: str, call: str) -> str:
    """The three LLM roles share one model here: load/unload each identifier once. `call` is the text
    before the identifier, e.g. `_load_llm(client, `."""
    block = "\n".join(f"            {call}{role})," for role in ROLES)
    if block not in text:
        raise SystemExit(f"cannot find the per-role calls {call}...)")
    roles = ", ".join(ROLES)
    return text.replace(block, f"            *({call}m) for m in dict.fromkeys(({roles}))),")


def main(tests: Path) -> None:
    support = tests / "support" / "__init__.py"
    support.write_text(patch_constants(support.read_text()))
    for path in tests.rglob("test_*.py"):
        text = path.read_text()
        if LLAMA_PATH in text:
            path.write_text(text.replace(LLAMA_PATH, f'"{CHAT_PATH}"'))
    for name, call in (
        ("load_models.py", "_load_llm(client, "),
        ("unload_models.py", "_unload_model(client.llm, "),
    ):
        path = tests / name
        path.write_text(patch_roles(path.read_text(), call))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
