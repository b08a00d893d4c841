"""`lms get` against a fake server side speaking the SDK's `repository` namespace over a real websocket."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from typing import Any

import click.testing
import pytest
from fake_repository import HANG, FakeRepository, completed, model, option, running

from openlms.cli.app import CliApp
from openlms.cli.commands.get import MLX_REFUSED, PAUSED
from openlms.cli.main import cli

REPO = "org/Tiny-GGUF"
KEY = "tiny"
PATH = "org/Tiny-GGUF/Tiny-Q4_K_M.gguf"
CURATED = {"name": "tiny-1b", "identifier": {"type": "catalog", "identifier": "org/tiny-1b"}, "exact": True}


def options() -> list[dict[str, Any]]:
    return [
        option(REPO, "Q2_K", 400),
        option(REPO, "Q4_K_M", 600, rec=True),
        option(REPO, "Q8_0", 1_000_000_000_000, fit="willNotFit"),
    ]


def identifier(quant: str) -> str:
    return f"{REPO}/Tiny-{quant}.gguf"


@pytest.fixture
def repo() -> Iterator[FakeRepository]:
    fake = FakeRepository(
        search={"tiny-1b": [CURATED]},
        options={"org/tiny-1b": options(), REPO: options()},
        downloads={identifier(q): completed(KEY) for q in ("Q2_K", "Q4_K_M", "Q8_0")},
        after_download=[model(KEY, PATH)],
    )
    with running(fake):
        yield fake


def lms(
    repo: FakeRepository,
    args: Sequence[str],
    *,
    tty: bool = False,
    input: str | None = None,
    bar: bool = False,
) -> click.testing.Result:
    app = CliApp(stdin_is_tty=lambda: tty, show_progress=lambda: bar)
    return click.testing.CliRunner().invoke(cli, ["get", *args, "--host", repo.url], obj=app, input=input)


def downloaded(repo: FakeRepository) -> list[str]:
    return [p["downloadIdentifier"] for name, p in repo.calls if name == "downloadModel"]


def test_exact_curated_name_with_yes_downloads_the_recommended_quantization(repo: FakeRepository) -> None:
    result = lms(repo, ["tiny-1b", "--yes"])
    assert result.exit_code == 0, result.output
    assert repo.calls[0] == (
        "searchModels",
        {"opts": {"limit": 10, "compatibilityTypes": ["gguf"], "searchTerm": "tiny-1b"}},
    )
    assert repo.calls[1] == (
        "getModelDownloadOptions",
        {"modelSearchResultIdentifier": CURATED["identifier"]},
    )
    assert downloaded(repo) == [identifier("Q4_K_M")]
    assert f"Downloaded to {PATH}. Load it with: lms load {KEY}" in result.output
    assert "50%" in result.output and "verifying" in result.output


def test_at_quant_picks_that_file_without_a_table(repo: FakeRepository) -> None:
    result = lms(repo, ["tiny-1b@q2_k"])
    assert result.exit_code == 0, result.output
    assert downloaded(repo) == [identifier("Q2_K")]
    assert "Download options" not in result.output


def test_missing_quant_lists_what_there_is(repo: FakeRepository) -> None:
    result = lms(repo, ["tiny-1b@q5_k_s"])
    assert result.exit_code == 1
    assert "has no Q5_K_S. Available: Q2_K, Q4_K_M, Q8_0." in result.output
    assert downloaded(repo) == []


def test_url_goes_straight_to_the_repo(repo: FakeRepository) -> None:
    result = lms(repo, [f"https://huggingface.co/{REPO}", "-y"])
    assert result.exit_code == 0, result.output
    assert "searchModels" not in repo.endpoints()
    assert repo.calls[0] == (
        "getModelDownloadOptions",
        {"modelSearchResultIdentifier": {"type": "hf", "identifier": REPO}},
    )
    assert downloaded(repo) == [identifier("Q4_K_M")]


def test_file_url_picks_that_file(repo: FakeRepository) -> None:
    result = lms(repo, [f"https://huggingface.co/{REPO}/blob/main/Tiny-Q8_0.gguf"])
    assert result.exit_code == 0, result.output
    assert downloaded(repo) == [identifier("Q8_0")]


def test_user_repo_without_an_exact_hit_uses_the_repo(repo: FakeRepository) -> None:
    result = lms(repo, [f"{REPO}:Q2_K"])
    assert result.exit_code == 0, result.output
    assert repo.endpoints()[:2] == ["searchModels", "getModelDownloadOptions"]
    assert downloaded(repo) == [identifier("Q2_K")]


def test_several_quantizations_without_a_terminal_say_how_to_choose(repo: FakeRepository) -> None:
    result = lms(repo, ["tiny-1b"])
    assert result.exit_code == 1
    assert "Q8_0" in result.output and "may not fit" in result.output and "(recommended)" in result.output
    assert "lms get tiny-1b@q4_k_m" in result.output
    assert downloaded(repo) == []


def test_interactive_quantization_choice_defaults_to_the_recommended(repo: FakeRepository) -> None:
    result = lms(repo, ["tiny-1b"], tty=True, input="\n")
    assert result.exit_code == 0, result.output
    assert downloaded(repo) == [identifier("Q4_K_M")]
    rows = [line for line in result.output.splitlines() if line.lstrip()[:3] in ("1. ", "2. ", "3. ")]
    assert len(rows) == 3
    assert "fits" in rows[0] and "may not fit" not in rows[0] and "may not fit" in rows[2]


def test_interactive_choice_of_another_quantization(repo: FakeRepository) -> None:
    result = lms(repo, ["tiny-1b"], tty=True, input="1\n")
    assert result.exit_code == 0, result.output
    assert downloaded(repo) == [identifier("Q2_K")]


def test_always_show_download_options_shows_the_table_even_with_a_quant(repo: FakeRepository) -> None:
    result = lms(repo, ["tiny-1b@q8_0", "--always-show-download-options", "-y"])
    assert result.exit_code == 0, result.output
    assert "Download options for tiny-1b:" in result.output
    assert downloaded(repo) == [identifier("Q8_0")]


def test_search_results_without_exact_match(repo: FakeRepository) -> None:
    hits = [
        {"name": f"org/Hit{i}-GGUF", "identifier": {"type": "hf", "identifier": f"org/Hit{i}-GGUF"}}
        for i in (1, 2)
    ]
    repo.search["hit"] = hits
    repo.options["org/Hit2-GGUF"] = options()
    result = lms(repo, ["hit"])
    assert result.exit_code == 1
    assert "org/Hit1-GGUF" in result.output and "Several models match 'hit'" in result.output
    result = lms(repo, ["hit"], tty=True, input="2\n\n")
    assert result.exit_code == 0, result.output
    assert repo.calls[-2] == (
        "getModelDownloadOptions",
        {"modelSearchResultIdentifier": hits[1]["identifier"]},
    )


def test_always_show_all_results_lists_even_an_exact_match(repo: FakeRepository) -> None:
    result = lms(repo, ["tiny-1b", "--always-show-all-results", "-y"])
    assert result.exit_code == 0, result.output
    assert "Models matching 'tiny-1b':" in result.output


def test_no_results(repo: FakeRepository) -> None:
    result = lms(repo, ["nothing-like-it"])
    assert result.exit_code == 1
    assert "No GGUF models found for 'nothing-like-it'" in result.output


def test_no_term_lists_the_staff_picks(repo: FakeRepository) -> None:
    repo.search[None] = [{**CURATED, "exact": False, "staffPick": True}]
    result = lms(repo, [])
    assert result.exit_code == 0, result.output
    assert "tiny-1b" in result.output and "staff pick" in result.output and "lms get <name>" in result.output
    assert repo.calls == [("searchModels", {"opts": {"limit": 10, "compatibilityTypes": ["gguf"]}})]


def test_mlx_is_refused_before_anything_is_asked(repo: FakeRepository) -> None:
    result = lms(repo, ["tiny-1b", "--mlx"])
    assert result.exit_code == 1
    assert MLX_REFUSED in result.output
    assert repo.calls == []


def test_server_errors_are_one_line(repo: FakeRepository) -> None:
    repo.downloads[identifier("Q4_K_M")] = {"error": {"title": "org/Tiny-GGUF is gated: set HF_TOKEN."}}
    result = lms(repo, ["tiny-1b", "-y"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "Error: org/Tiny-GGUF is gated: set HF_TOKEN."
    repo.options[REPO] = {"error": {"title": "Repository not found: org/Tiny-GGUF."}}
    result = lms(repo, [f"hf.co/{REPO}"])
    assert result.exit_code == 1
    assert "Error: Repository not found: org/Tiny-GGUF." in result.output


def test_already_downloaded_says_so(repo: FakeRepository) -> None:
    repo.models = [model(KEY, PATH)]
    repo.after_download = []
    result = lms(repo, ["tiny-1b", "-y"])
    assert result.exit_code == 0, result.output
    assert f"Already downloaded ({PATH}). Load it with: lms load {KEY}" in result.output


def test_ctrl_c_closes_the_socket_and_says_how_to_resume(repo: FakeRepository) -> None:
    repo.downloads[identifier("Q4_K_M")] = HANG
    repo.on_hang = lambda: os.kill(os.getpid(), signal.SIGINT)
    result = lms(repo, ["tiny-1b", "-y"])
    assert result.exit_code == 130, result.output
    assert PAUSED in result.output
    assert repo.closed_mid_download.wait(10)


def test_progress_bar_on_a_terminal_and_the_limit(repo: FakeRepository) -> None:
    result = lms(repo, ["tiny-1b", "-y", "--limit", "5"], bar=True)
    assert result.exit_code == 0, result.output
    assert repo.calls[0][1]["opts"]["limit"] == 5
    assert "Tiny-Q4_K_M.gguf" in result.output and "500 B/s" in result.output
    assert f"Downloaded to {PATH}. Load it with: lms load {KEY}" in result.output


def test_a_server_without_the_repository_endpoints_is_one_error(repo: FakeRepository) -> None:
    repo.search["old"] = [{"name": "x", "identifier": {"type": "hf", "identifier": "a/b"}, "exact": True}]
    repo.options["a/b"] = {"error": {"title": "Searching and downloading models needs the LM Studio Hub"}}
    result = lms(repo, ["old", "-y"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: Searching and downloading models needs the LM Studio Hub"


def test_no_term_on_a_terminal_picks_a_staff_pick_then_its_quantization(repo: FakeRepository) -> None:
    repo.search[None] = [{**CURATED, "exact": False, "staffPick": True}]
    result = lms(repo, [], tty=True, input="1\n3\n")
    assert result.exit_code == 0, result.output
    assert "Staff picks that fit this machine. Select one to download:" in result.output
    assert downloaded(repo) == [identifier("Q8_0")]
