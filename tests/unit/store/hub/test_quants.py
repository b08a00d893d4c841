"""Options from a repo's files: quantization, split grouping, mmproj, find_option, recommend."""

from __future__ import annotations

from openlms.store.hub import DownloadOption, HubFile, find_option, recommend
from openlms.store.hub.quants import build_options, pick_mmproj


def _f(path: str, size: int = 100) -> HubFile:
    return HubFile(path, size, "0" * 64)


def _options(*files: HubFile) -> tuple[DownloadOption, ...]:
    return build_options("org/M-GGUF", "abc", files)


def test_one_option_per_quant_sorted_by_size_and_non_gguf_ignored() -> None:
    opts = _options(
        _f("M-Q8_0.gguf", 800), _f("M-Q4_K_M.gguf", 400), _f("M-IQ2_XS.gguf", 200), _f("README.md", 5)
    )
    assert [o.quantization for o in opts] == ["IQ2_XS", "Q4_K_M", "Q8_0"]
    assert opts[1].identifier == "org/M-GGUF/M-Q4_K_M.gguf"
    assert opts[1].size_bytes == 400
    assert opts[1].revision == "abc"


def test_split_parts_are_one_option_in_order_even_in_a_folder() -> None:
    parts = [_f(f"Q8_0/M-Q8_0-0000{i}-of-00003.gguf", 1000) for i in (3, 1, 2)]
    opts = _options(*parts, _f("M-Q4_K_M.gguf", 500))
    big = opts[-1]
    assert big.name == "M-Q8_0-00001-of-00003.gguf"
    assert big.quantization == "Q8_0"
    assert [f.path for f in big.files] == [f"Q8_0/M-Q8_0-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert big.size_bytes == 3000


def test_an_incomplete_split_set_is_not_offered() -> None:
    opts = _options(_f("M-Q8_0-00001-of-00003.gguf"), _f("M-Q8_0-00002-of-00003.gguf"), _f("M-Q4_0.gguf"))
    assert [o.quantization for o in opts] == ["Q4_0"]


def test_mmproj_is_attached_to_every_option_and_never_one_itself() -> None:
    opts = _options(
        _f("M-Q4_K_M.gguf", 400),
        _f("M-Q8_0.gguf", 800),
        _f("mmproj-M-Q8_0.gguf", 30),
        _f("mmproj-M-F16.gguf", 60),
    )
    assert len(opts) == 2
    for option in opts:
        assert option.files[-1].path == "mmproj-M-F16.gguf"
        assert not option.name.startswith("mmproj")
    assert opts[0].size_bytes == 460


def test_pick_mmproj_without_f16_takes_a_known_one() -> None:
    chosen = pick_mmproj([_f("mmproj-x-Q4_0.gguf", 10), _f("mmproj-x-Q8_0.gguf", 20)])
    assert chosen is not None and chosen.path == "mmproj-x-Q8_0.gguf"
    assert pick_mmproj([]) is None


def test_find_option_is_case_insensitive() -> None:
    opts = _options(_f("M-Q4_K_M.gguf"), _f("M-Q8_0.gguf"))
    found = find_option(opts, "q8_0")
    assert found is not None and found.quantization == "Q8_0"
    assert find_option(opts, "Q2_K") is None


def test_recommend_prefers_q4_k_m_then_the_largest_that_fits_then_the_smallest() -> None:
    opts = _options(
        _f("M-Q2_K.gguf", 200), _f("M-Q4_K_M.gguf", 400), _f("M-Q6_K.gguf", 600), _f("M-Q8_0.gguf", 800)
    )
    assert _quant(recommend(opts, 10_000)) == "Q4_K_M"
    assert _quant(recommend(opts, 300)) == "Q2_K"
    assert _quant(recommend(opts, 100)) == "Q2_K"
    no_q4 = [o for o in opts if o.quantization != "Q4_K_M"]
    assert _quant(recommend(no_q4, 700)) == "Q6_K"
    assert recommend([], 1000) is None


def _quant(option: DownloadOption | None) -> str | None:
    assert option is not None
    return option.quantization
