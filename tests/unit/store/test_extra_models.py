"""The optional extra models (Qwen2.5-Coder 0.5B and 1.5B): specs, and how openlms-setup-models picks them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

import openlms.setup_models as setup_models
from openlms.store.defaults import ALL_MODELS, DEFAULT_MODELS, EXTRA_MODELS, DefaultModel
from openlms.store.naming import model_key, quantization_from_name

QWEN_05B = "qwen2.5-coder-0.5b-instruct"
QWEN_15B = "qwen2.5-coder-1.5b-instruct"


def test_extra_specs_are_consistent() -> None:
    assert [s.key for s in EXTRA_MODELS] == [QWEN_05B, QWEN_15B]
    assert {s.key for s in ALL_MODELS} == {s.key for s in DEFAULT_MODELS} | {QWEN_05B, QWEN_15B}
    for spec in EXTRA_MODELS:
        file_name = spec.rel_path.rsplit("/", 1)[1]
        assert model_key(file_name, embedding=False) == spec.key
        assert quantization_from_name(file_name) == "Q4_K_M"
        assert spec.rel_path.startswith("Qwen/Qwen2.5-Coder-") and len(spec.rel_path.split("/")) == 3
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256) and spec.size_bytes > 0
        assert spec.convert is None
        for n, member in enumerate(spec.members, start=1):
            assert member.wheel.package.endswith(f"-part{n}")
            assert member.member == f"{member.wheel.package.replace('-', '_')}/data/part{n:02d}.bin"
    small, large = EXTRA_MODELS
    assert (len(small.members), len(large.members)) == (6, 22)
    assert {m.wheel.version for m in small.members} == {"0.9.0"}
    assert {m.wheel.version for m in large.members} == {"0.2.0"}


@pytest.fixture
def chosen(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def fake_install(
        models_dir: Path,
        *,
        only: Sequence[str] | None = None,
        pip_cache_dir: Path | None = None,
        specs: Sequence[DefaultModel] = DEFAULT_MODELS,
    ) -> list[Path]:
        assert only is not None
        known = {s.key: s for s in specs}
        calls.append(list(only))
        return [models_dir / known[key].rel_path for key in only]

    monkeypatch.setattr(setup_models, "install_default_models", fake_install)
    return calls


def test_setup_models_selection(
    tmp_path: Path, chosen: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    defaults = [s.key for s in DEFAULT_MODELS]
    assert setup_models.main(["--models-dir", str(tmp_path)]) == 0
    assert setup_models.main(["--models-dir", str(tmp_path), "--extra"]) == 0
    assert setup_models.main(["--models-dir", str(tmp_path), "--only", QWEN_05B]) == 0
    assert setup_models.main(["--models-dir", str(tmp_path), "--only", "gemma-3-270m", "--extra"]) == 0
    assert chosen == [
        defaults,
        [*defaults, QWEN_05B, QWEN_15B],
        [QWEN_05B],
        ["gemma-3-270m", QWEN_05B, QWEN_15B],
    ]
    printed = capsys.readouterr().out.splitlines()
    assert str(tmp_path / EXTRA_MODELS[0].rel_path) in printed


def test_setup_models_unknown_key_lists_the_extra_models(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        setup_models.main(["--only", "qwen-nope"])
    assert QWEN_05B in capsys.readouterr().err
