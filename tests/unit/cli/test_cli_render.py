"""Pure formatting: sizes, durations, and the `ls` / `ps` layouts of the spec pages."""

from __future__ import annotations

from typing import Any

import pytest
from cli_fakes import BROKEN, NOMIC, QWEN, SMOLLM, instance

from openlms.cli.render import (
    filter_models,
    format_duration,
    format_size,
    pretty_architecture,
    render_ls,
    render_ps,
    render_status,
)
from openlms.cli.schema import LoadedInstance, ModelInfo, loaded_instances


def model(raw: dict[str, Any], **overrides: Any) -> ModelInfo:
    return ModelInfo.from_json({**raw, **overrides})


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.00 KB"),
        (84_106_624, "84.11 MB"),
        (98_362_432, "98.36 MB"),
        (448_640_000, "448.64 MB"),
        (999_999_999, "1.00 GB"),  # rounds up into the next unit, never "1000.00 MB"
        (4_920_000_000, "4.92 GB"),
        (160_780_000_000, "160.78 GB"),
        (2_500_000_000_000, "2.50 TB"),
    ],
)
def test_format_size_uses_decimal_units(num_bytes: int, text: str) -> None:
    assert format_size(num_bytes) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (12.5, "12s"),
        (59, "59s"),
        (60, "1m"),
        (150, "2m 30s"),
        (3600, "60m"),
        (5400, "1h 30m"),
        (7200, "2h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_pretty_architecture() -> None:
    assert pretty_architecture("llama") == "Llama"
    assert pretty_architecture("qwen2") == "Qwen2"
    assert pretty_architecture("nomic-bert") == "Nomic BERT"
    assert pretty_architecture("someArch") == "SomeArch"
    assert pretty_architecture(None) == ""


def test_ls_rows_match_the_spec_example_layout() -> None:
    """The LLM rows of ls.md's example, column for column (the longest key there is 45 characters)."""
    models = [
        model(
            SMOLLM,
            key="lmstudio-community/meta-llama-3.1-8b-instruct",
            params_string="8B",
            size_bytes=4_920_000_000,
        ),
        model(
            SMOLLM, key="hugging-quants/llama-3.2-1b-instruct", params_string="1B", size_bytes=1_320_000_000
        ),
        model(
            SMOLLM,
            key="mistral-7b-instruct-v0.3",
            params_string=None,
            architecture="mistral",
            size_bytes=4_080_000_000,
        ),
        model(SMOLLM, key="zeta", params_string="7B", architecture="qwen2", size_bytes=4_090_000_000),
    ]
    assert render_ls(models).splitlines() == [
        "You have 4 models, taking up 14.41 GB of disk space.",
        "",
        "LLMs (Large Language Models)                       PARAMS      ARCHITECTURE           SIZE",
        "lmstudio-community/meta-llama-3.1-8b-instruct          8B         Llama            4.92 GB",
        "hugging-quants/llama-3.2-1b-instruct                   1B         Llama            1.32 GB",
        "mistral-7b-instruct-v0.3                                         Mistral           4.08 GB",
        "zeta                                                   7B         Qwen2            4.09 GB",
    ]


def test_ls_sections_loaded_marker_and_errors() -> None:
    smol = model(
        SMOLLM, loaded_instances=[instance("smollm2-135m-instruct"), instance("smollm2-135m-instruct:2")]
    )
    models = [smol, model(QWEN), model(NOMIC), model(BROKEN)]
    lines = render_ls(models).splitlines()
    assert lines[0] == "You have 4 models, taking up 580.28 MB of disk space."
    assert lines[2].startswith("LLMs (Large Language Models)")
    assert lines[3].startswith("smollm2-135m-instruct ") and lines[3].endswith("98.36 MB   ✓ LOADED (2)")
    assert "0.5B" in lines[4] and "Qwen2" in lines[4] and not lines[4].endswith("LOADED")
    assert lines[5].startswith("broken-model ") and lines[5].endswith("⚠ cannot be loaded: not a GGUF file")
    assert lines[7].startswith("Embedding Models")
    assert "Nomic BERT" in lines[8] and lines[8].endswith("84.11 MB")
    # Both tables share their columns.
    assert lines[2].index("PARAMS") == lines[7].index("PARAMS")
    assert lines[2].index("SIZE") == lines[7].index("SIZE")


def test_ls_filters_and_empty_states() -> None:
    models = [model(SMOLLM), model(NOMIC)]
    assert [m.key for m in filter_models(models, llm=True, embedding=False)] == ["smollm2-135m-instruct"]
    assert [m.key for m in filter_models(models, llm=False, embedding=True)] == [NOMIC["key"]]
    assert len(filter_models(models, llm=True, embedding=True)) == 2
    assert render_ls([]) == "You have not downloaded any models yet."
    assert render_ls([], filtered=True) == "No models match the filter."
    assert render_ls([model(SMOLLM)]).startswith("You have 1 model, taking up 98.36 MB")


def test_ls_detailed_lines() -> None:
    text = render_ls([model(QWEN)], detailed=True)
    assert "    Display name: Qwen2.5 0.5B Instruct" in text
    assert f"    Path: {QWEN['path']}" in text
    assert "    Quantization: Q4_K_M (4.5 bits per weight)" in text
    assert "    Max context length: 32768 tokens" in text
    assert "    Capabilities: tool use" in text


def test_ps_matches_the_spec_example() -> None:
    deepseek = model(
        SMOLLM,
        key="unsloth/deepseek-r1-distill-qwen-1.5b",
        architecture="qwen2",
        path="unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf",
        loaded_instances=[instance("unsloth/deepseek-r1-distill-qwen-1.5b", size_bytes=1_120_000_000)],
    )
    assert render_ps(loaded_instances([deepseek])).splitlines() == [
        "   LOADED MODELS",
        "",
        "Identifier: unsloth/deepseek-r1-distill-qwen-1.5b",
        "  • Type:  LLM",
        "  • Path: unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf",
        "  • Size: 1.12 GB",
        "  • Architecture: Qwen2",
        "  • Context length: 4096",
        "  • Status: idle",
        "  • Queued requests: 0",
    ]


def test_ps_ttl_status_and_empty() -> None:
    busy = model(
        NOMIC,
        loaded_instances=[
            instance(
                "emb",
                status="generating",
                active_requests=2,
                queued_requests=3,
                ttl_seconds=3600,
                idle_seconds=150,
            )
        ],
    )
    lines = render_ps(loaded_instances([busy])).splitlines()
    assert "  • Type:  Embedding" in lines
    assert "  • Status: generating (2 active requests)" in lines
    assert "  • Queued requests: 3" in lines
    assert "  • TTL: 60m (idle 2m 30s)" in lines
    assert render_ps([]) == "No models are currently loaded."


def test_instance_json_shape() -> None:
    [inst] = loaded_instances([model(SMOLLM, loaded_instances=[instance("x", ttl_seconds=60)])])
    assert isinstance(inst, LoadedInstance)
    assert inst.to_json() == {
        "identifier": "x",
        "modelKey": "smollm2-135m-instruct",
        "type": "llm",
        "path": SMOLLM["path"],
        "sizeBytes": 98362432,
        "architecture": "llama",
        "status": "idle",
        "parallel": None,  # the fake instance's config has none (an older server)
        "active": 0,
        "queued": 0,
        "ttl": 60,
        "contextLength": 4096,
        "jit": False,
        "idleSeconds": 12.5,
        "gpu": "off",
        "gpuLayers": None,
    }


def test_model_parsing_is_lenient() -> None:
    odd = ModelInfo.from_json(
        {"key": "k", "size_bytes": "big", "quantization": "Q4", "loaded_instances": [1]}
    )
    assert (odd.key, odd.size_bytes, odd.quantization, odd.instances, odd.type) == ("k", 0, None, (), "llm")


def test_render_status() -> None:
    assert render_status(None, None).startswith("Server:  OFF")
    inst = loaded_instances([model(SMOLLM, loaded_instances=[instance("smollm2-135m-instruct")])])
    assert render_status(1234, inst).splitlines() == [
        "Server:  ON  (port: 1234)",
        "",
        "Loaded models (1)",
        "  · smollm2-135m-instruct - 98.36 MB",
    ]
    assert render_status(1234, []).endswith("Loaded models: none")
    assert "unknown" in render_status(1234, None)
