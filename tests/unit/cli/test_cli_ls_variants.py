"""`lms ls --variants` and model.yaml fields in `lms ls`: several files of one model folded under one row,
a virtual model's variants with the selected one marked, its file not counted twice in the disk total."""

from __future__ import annotations

from typing import Any

from cli_fakes import QWEN, SMOLLM

from openlms.cli.render import render_ls
from openlms.cli.schema import ModelInfo

KEYS = ["qwen2.5-0.5b-instruct@q4_k_m", "qwen2.5-0.5b-instruct@q8_0"]
Q4: dict[str, Any] = {**QWEN, "key": KEYS[0], "variants": KEYS, "selected_variant": KEYS[0]}
Q8: dict[str, Any] = {
    **QWEN,
    "key": KEYS[1],
    "variants": KEYS,
    "selected_variant": KEYS[1],
    "quantization": {"name": "Q8_0", "bits_per_weight": 8.5},
    "size_bytes": 531_000_000,
    "path": "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q8_0.gguf",
}
VIRTUAL: dict[str, Any] = {
    **Q4,
    "key": "qwen/qwen2.5-0.5b",
    "virtual": True,
    "variants": ["qwen/qwen2.5-0.5b@q4_k_m", "qwen/qwen2.5-0.5b@q8_0"],
    "selected_variant": "qwen/qwen2.5-0.5b@q4_k_m",
    "capabilities": {"vision": False, "trained_for_tool_use": True, "reasoning": True},
}


def _models(*raws: dict[str, Any]) -> list[ModelInfo]:
    return [ModelInfo.from_json(raw) for raw in raws]


def test_without_variants_every_file_is_a_row_and_a_virtual_file_is_counted_once() -> None:
    text = render_ls(_models(SMOLLM, Q4, Q8, VIRTUAL))
    assert "You have 4 models, taking up 1.03 GB of disk space." in text  # 98 MB + 398 MB + 531 MB
    for key in (*KEYS, "qwen/qwen2.5-0.5b"):
        assert key in text
    assert "    - " not in text


def test_variants_fold_a_models_files_under_one_row() -> None:
    lines = render_ls(_models(SMOLLM, Q4, Q8, VIRTUAL), variants=True).splitlines()
    rows = [line.split()[0] for line in lines if line and not line.startswith((" ", "You", "LLM"))]
    assert rows == ["smollm2-135m-instruct", "qwen2.5-0.5b-instruct", "qwen/qwen2.5-0.5b"]
    folded = lines.index(next(line for line in lines if line.startswith("qwen2.5-0.5b-instruct ")))
    assert lines[folded + 1].strip() == f"- {KEYS[0]}  (Q4_K_M, 397.81 MB)"
    assert lines[folded + 2].strip() == f"- {KEYS[1]}  (Q8_0, 531.00 MB)"
    assert "    * qwen/qwen2.5-0.5b@q4_k_m" in lines and "    - qwen/qwen2.5-0.5b@q8_0" in lines


def test_detailed_shows_reasoning_and_the_virtual_model() -> None:
    text = render_ls(_models(VIRTUAL), detailed=True)
    assert "Capabilities: tool use, reasoning" in text
    assert "model.yaml model" in text
    parsed = ModelInfo.from_json(VIRTUAL)
    assert parsed.virtual and parsed.reasoning and parsed.selected_variant == "qwen/qwen2.5-0.5b@q4_k_m"
