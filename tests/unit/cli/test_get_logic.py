"""`lms get`'s pure parts: what the user typed, matching an option, the table lines."""

from __future__ import annotations

import pytest

from openlms.cli.getmodel import DownloadChoice, SearchResult, Wanted, match_choice, parse_wanted, recommended
from openlms.cli.render import download_choice_labels, search_result_labels
from openlms.cli.sdkws import error_text, websocket_url


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("llama-3.1-8b", Wanted("llama-3.1-8b", None, None, None)),
        ("llama-3.1-8b@q4_k_m", Wanted("llama-3.1-8b", None, "Q4_K_M", None)),
        ("meta/llama-3.1-8b", Wanted("meta/llama-3.1-8b", "meta/llama-3.1-8b", None, None)),
        ("user/Repo-GGUF@Q8_0", Wanted("user/Repo-GGUF", "user/Repo-GGUF", "Q8_0", None)),
        ("hf.co/user/Repo-GGUF:q4_k_m", Wanted("hf.co/user/Repo-GGUF", "user/Repo-GGUF", "Q4_K_M", None)),
        (
            "https://huggingface.co/user/Repo-GGUF",
            Wanted("https://huggingface.co/user/Repo-GGUF", "user/Repo-GGUF", None, None),
        ),
        (
            "https://huggingface.co/user/Repo-GGUF/tree/main",
            Wanted("https://huggingface.co/user/Repo-GGUF/tree/main", "user/Repo-GGUF", None, None),
        ),
        (
            "https://huggingface.co/user/R/blob/main/R-Q8_0.gguf",
            Wanted("https://huggingface.co/user/R/blob/main/R-Q8_0.gguf", "user/R", None, "R-Q8_0.gguf"),
        ),
        (
            "huggingface.co/user/R/resolve/abc123/Q8_0/R-00001-of-00002.gguf",
            Wanted(
                "huggingface.co/user/R/resolve/abc123/Q8_0/R-00001-of-00002.gguf",
                "user/R",
                None,
                "R-00001-of-00002.gguf",
            ),
        ),
        ("qwen coder", Wanted("qwen coder", None, None, None)),
        (
            "https://hf-mirror.example:8080/user/R@q8_0",
            Wanted("https://hf-mirror.example:8080/user/R", "user/R", "Q8_0", None),
        ),
        ("https://huggingface.co/user", Wanted("https://huggingface.co/user", None, None, None)),
    ],
)
def test_parse_wanted(text: str, wanted: Wanted) -> None:
    assert parse_wanted(text) == wanted


def choice(
    name: str, quant: str | None, size: int = 10, *, fit: str | None = "fitWithoutGPU", rec: bool = False
) -> DownloadChoice:
    return DownloadChoice(name, size, fit, f"u/r/{name}", quant, rec)


def test_match_choice_by_quant_and_by_file() -> None:
    choices = [choice("R-Q4_K_M.gguf", "Q4_K_M"), choice("R-Q8_0-00001-of-00002.gguf", "Q8_0")]
    assert match_choice(choices, Wanted("u/r", "u/r", "q4_k_m", None)) == choices[0]
    assert match_choice(choices, Wanted("u/r", "u/r", None, "r-q4_k_m.gguf")) == choices[0]
    assert match_choice(choices, Wanted("u/r", "u/r", None, "R-Q8_0-00002-of-00002.gguf")) == choices[1]
    assert match_choice(choices, Wanted("u/r", "u/r", "Q2_K", None)) is None
    assert recommended(choices) == choices[0]
    assert recommended([choices[0], choice("x", None, rec=True)]).name == "x"


def test_choice_labels_show_size_fit_and_recommendation() -> None:
    labels = download_choice_labels(
        [
            choice("R-Q4_K_M.gguf", "Q4_K_M", 4_920_000_000, rec=True),
            choice("R-F16.gguf", "F16", 16_100_000_000, fit="willNotFit"),
            choice("R.gguf", None, fit=None),
        ]
    )
    assert labels[0].split() == ["Q4_K_M", "R-Q4_K_M.gguf", "4.92", "GB", "fits", "(recommended)"]
    assert labels[1].split() == ["F16", "R-F16.gguf", "16.10", "GB", "may", "not", "fit"]
    assert labels[2].split() == ["-", "R.gguf", "10", "B"]


def test_search_labels() -> None:
    hit = SearchResult("org/A-GGUF", {"type": "hf", "identifier": "org/A-GGUF"}, False, False, 12_345, 67)
    pick = SearchResult(
        "llama-3.1-8b", {"type": "catalog", "identifier": "meta/llama-3.1-8b"}, True, True, None, None
    )
    labels = search_result_labels([hit, pick])
    assert labels[0].split() == ["org/A-GGUF", "12.3k", "downloads", "67", "likes", "(Hugging", "Face)"]
    assert labels[1].split() == ["llama-3.1-8b", "(openlms", "catalog)", "★", "staff", "pick"]


def test_parse_results_skips_junk() -> None:
    from openlms.cli.getmodel import parse_choices, parse_results

    assert (
        parse_results({"results": [{"name": "x"}, {"identifier": {"type": "hf", "identifier": "a/b"}}]})[
            0
        ].name
        == "a/b"
    )
    assert parse_results(None) == []
    assert [
        c.name for c in parse_choices({"results": [{"sizeBytes": 3}, {"downloadIdentifier": "a/b/c.gguf"}]})
    ] == ["c.gguf"]


def test_websocket_url_and_error_text() -> None:
    assert websocket_url("http://127.0.0.1:1234/", "repository") == "ws://127.0.0.1:1234/repository"
    assert websocket_url("https://h:1", "repository") == "wss://h:1/repository"
    assert error_text({"title": "Gated.", "suggestion": "Set HF_TOKEN."}) == "Gated. Set HF_TOKEN."
    assert error_text(42) == "The server reported an error."
