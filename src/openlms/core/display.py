"""How architectures are shown to people (`lms ls`, model info): `llama` -> `Llama`, `nomic-bert` ->
`Nomic BERT`. Shared by the store and the CLI, which may not import each other."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

ARCHITECTURE_DISPLAY: Final[Mapping[str, str]] = MappingProxyType(
    {
        "llama": "Llama",
        "llama4": "Llama 4",
        "mistral": "Mistral",
        "mistral3": "Mistral 3",
        "gemma": "Gemma",
        "gemma2": "Gemma2",
        "gemma3": "Gemma3",
        "gemma3n": "Gemma3n",
        "gemma-embedding": "Gemma Embedding",
        "qwen": "Qwen",
        "qwen2": "Qwen2",
        "qwen2moe": "Qwen2 MoE",
        "qwen2vl": "Qwen2 VL",
        "qwen3": "Qwen3",
        "qwen3moe": "Qwen3 MoE",
        "phi2": "Phi2",
        "phi3": "Phi3",
        "phimoe": "Phi MoE",
        "bert": "BERT",
        "nomic-bert": "Nomic BERT",
        "nomic-bert-moe": "Nomic BERT MoE",
        "jina-bert-v2": "Jina BERT v2",
        "jina-bert-v3": "Jina BERT v3",
        "modern-bert": "ModernBERT",
        "neo-bert": "NeoBERT",
        "eurobert": "EuroBERT",
        "t5": "T5",
        "t5encoder": "T5 Encoder",
        "gpt2": "GPT2",
        "gptneox": "GPT-NeoX",
        "gpt-oss": "GPT-OSS",
        "starcoder": "StarCoder",
        "starcoder2": "StarCoder2",
        "stablelm": "StableLM",
        "falcon": "Falcon",
        "mpt": "MPT",
        "deepseek": "DeepSeek",
        "deepseek2": "DeepSeek2",
        "command-r": "Command R",
        "cohere2": "Cohere2",
        "olmo": "OLMo",
        "olmo2": "OLMo2",
        "granite": "Granite",
        "granitemoe": "Granite MoE",
        "exaone": "EXAONE",
        "internlm2": "InternLM2",
        "minicpm": "MiniCPM",
        "smollm3": "SmolLM3",
        "glm4": "GLM4",
        "mamba": "Mamba",
    }
)


def architecture_display(arch: str | None) -> str | None:
    """How `lms ls` shows an architecture: `llama` -> `Llama`, `nomic-bert` -> `Nomic BERT`."""
    if not arch:
        return None
    known = ARCHITECTURE_DISPLAY.get(arch.lower())
    if known:
        return known
    return " ".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]+", arch) if part)
