"""The spec (LM Studio's docs) as CI has it: `shared/lmstudio-docs/` beside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path("lmstudio-docs")


def spec_page(rel: str) -> Path:
    """A docs page, e.g. "0_app/4_api/tools.md"; skips the test when the docs are not beside the checkout."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / DOCS / rel
        if candidate.exists():
            return candidate
    pytest.skip(f"the spec (../shared/{DOCS / rel}) is not beside this checkout")


def python_blocks(rel: str) -> list[str]:
    """The ```python blocks of a docs page, in order."""
    return re.findall(r"```python\n(.*?)```", spec_page(rel).read_text(encoding="utf-8"), flags=re.S)
