"""parse_model_ref: every form a user types."""

from __future__ import annotations

import pytest

from openlms.core.errors import InvalidRequestError
from openlms.store.hub import ModelRef, parse_model_ref


@pytest.mark.parametrize(
    ("text", "repo_id", "term", "quant", "file"),
    [
        ("user/repo", "user/repo", None, None, None),
        ("user/repo@q4_k_m", "user/repo", None, "Q4_K_M", None),
        ("  lmstudio-community/Qwen3-8B-GGUF@Q8_0 ", "lmstudio-community/Qwen3-8B-GGUF", None, "Q8_0", None),
        ("https://huggingface.co/user/repo", "user/repo", None, None, None),
        ("https://huggingface.co/user/repo/", "user/repo", None, None, None),
        ("https://huggingface.co/user/repo/tree/main", "user/repo", None, None, None),
        ("https://huggingface.co/models/user/repo", "user/repo", None, None, None),
        (
            "https://huggingface.co/user/repo/blob/main/file-Q5_K_S.gguf",
            "user/repo",
            None,
            "Q5_K_S",
            "file-Q5_K_S.gguf",
        ),
        (
            "https://huggingface.co/user/repo/resolve/main/Q8_0/x-Q8_0-00001-of-00002.gguf",
            "user/repo",
            None,
            "Q8_0",
            "Q8_0/x-Q8_0-00001-of-00002.gguf",
        ),
        ("hf.co/user/repo:Q4_K_M", "user/repo", None, "Q4_K_M", None),
        ("huggingface.co/user/repo", "user/repo", None, None, None),
        ("http://www.huggingface.co/user/repo@iq4_xs", "user/repo", None, "IQ4_XS", None),
        ("llama-3.1-8b", None, "llama-3.1-8b", None, None),
        ("llama-3.1-8b@q4_k_m", None, "llama-3.1-8b", "Q4_K_M", None),
        ("qwen3 8b", None, "qwen3 8b", None, None),
    ],
)
def test_forms(text: str, repo_id: str | None, term: str | None, quant: str | None, file: str | None) -> None:
    assert parse_model_ref(text) == ModelRef(text.strip(), repo_id, term, quant, file)


def test_explicit_quant_wins_over_the_file_name() -> None:
    ref = parse_model_ref("https://huggingface.co/u/r/blob/main/x-Q8_0.gguf@q4_k_m")
    assert ref.quantization == "Q4_K_M"
    assert ref.file == "x-Q8_0.gguf"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "a/b/c",
        "https://example.com/user/repo",
        "ftp://huggingface.co/u/r",
        "x@q4 k",
        "user/repo@",
        "https://huggingface.co/user",
        "https://huggingface.co/u/r/discussions",
        "<script>",
    ],
)
def test_junk_is_a_clear_invalid_request(text: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        parse_model_ref(text)
    assert err.value.param == "model"
    assert "user/repo" in err.value.message or "model" in err.value.message.lower()


def test_urls_of_the_configured_mirror_are_understood(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    with pytest.raises(InvalidRequestError):
        parse_model_ref("https://hf-mirror.example/user/repo")
    assert (
        parse_model_ref("https://hf-mirror.example/u/r", endpoint="https://hf-mirror.example").repo_id
        == "u/r"
    )
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:8123")
    assert parse_model_ref("http://127.0.0.1:8123/u/r@q8_0").quantization == "Q8_0"
