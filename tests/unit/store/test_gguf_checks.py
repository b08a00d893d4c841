"""The header checks that keep crafted GGUF files away from llama.cpp (issue 10)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import psutil
import pytest

from openlms.store.catalog import ModelCatalog
from openlms.store.gguf_checks import check_hparams, check_tensors
from openlms.store.gguf_meta import GGUFMetadata, read_gguf_metadata
from tests.support.gguf_craft import crafted_llama, patch_int
from tests.support.tiny_gguf import write_tiny_llama_gguf


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> GGUFMetadata:
    return read_gguf_metadata(write_tiny_llama_gguf(tmp_path_factory.mktemp("good") / "good.gguf"))


def with_kv(meta: GGUFMetadata, **changes: object) -> GGUFMetadata:
    kv = dict(meta.kv)
    kv.update({key.replace("__", "."): value for key, value in changes.items()})
    return replace(meta, kv=MappingProxyType(kv))  # type: ignore[arg-type]


def test_a_real_tiny_model_passes(good: GGUFMetadata) -> None:
    assert check_tensors(good) is None
    assert check_hparams(good) is None


@pytest.mark.parametrize("layers", [0, 513, 100_000])
def test_a_layer_count_out_of_llama_cpp_range_is_refused(good: GGUFMetadata, layers: int) -> None:
    problem = check_hparams(with_kv(good, llama__block_count=layers))
    assert problem is not None and "llama.block_count" in problem and "512" in problem


def test_a_layer_count_that_disagrees_with_the_tensors_is_refused(good: GGUFMetadata) -> None:
    problem = check_hparams(with_kv(good, llama__block_count=5))
    assert problem is not None and "2 layers" in problem


@pytest.mark.parametrize(
    ("key", "value", "names"),
    [
        ("llama.embedding_length", 0, "llama.embedding_length"),
        ("llama.embedding_length", 1 << 30, "llama.embedding_length"),
        ("llama.context_length", 0, "llama.context_length"),
        ("llama.attention.head_count", 1 << 20, "llama.attention.head_count"),
        ("llama.attention.head_count_kv", (1, 2, 3), "3 values for 2 layers"),
        ("llama.attention.key_length", 1 << 20, "llama.attention.key_length"),
        ("llama.expert_count", 1000, "at most 512 experts"),
        ("llama.expert_used_count", 2, "does not fit"),
    ],
)
def test_hyperparameters_out_of_range_are_refused(
    good: GGUFMetadata, key: str, value: object, names: str
) -> None:
    problem = check_hparams(with_kv(good, **{key.replace(".", "__"): value}))
    assert problem is not None and names in problem


def test_expert_counts_llama_cpp_would_assert_on_are_refused(good: GGUFMetadata) -> None:
    assert check_hparams(with_kv(good, llama__expert_count=8, llama__expert_used_count=0)) is not None
    assert check_hparams(with_kv(good, llama__expert_count=8, llama__expert_used_count=9)) is not None
    assert check_hparams(with_kv(good, llama__expert_count=8, llama__expert_used_count=2)) is None


def test_unknown_and_projector_architectures_are_refused(good: GGUFMetadata) -> None:
    for arch in ("evil-arch", "clip"):
        problem = check_hparams(with_kv(good, general__architecture=arch))
        assert problem is not None and f"architecture '{arch}'" in problem


def test_a_vocabulary_larger_than_the_token_embedding_is_refused(good: GGUFMetadata) -> None:
    lengths = dict(good.array_lengths) | {"tokenizer.ggml.tokens": 100_000}
    problem = check_hparams(replace(good, array_lengths=MappingProxyType(lengths)))
    assert problem is not None and "100000 tokens" in problem


def test_tensor_infos_llama_cpp_would_refuse_are_refused(good: GGUFMetadata) -> None:
    first, second = good.tensors[0], good.tensors[1]
    cases = {
        "duplicate tensor name": (first, replace(second, name=first.name)),
        "unknown type": (replace(first, ggml_type=999),),
        "overlap": (first, replace(second, offset=first.offset)),
        "not aligned": (replace(first, offset=first.offset + 1),),
        "impossible shape": (replace(first, shape=(1 << 40, 1 << 40)),),
        "whole number": (replace(first, ggml_type=2, shape=(33, 4)),),  # Q4_0 rows hold 32-value blocks
    }
    for words, tensors in cases.items():
        problem = check_tensors(replace(good, tensors=tensors))
        assert problem is not None and words in problem, (words, problem)


def test_the_catalog_lists_a_crafted_file_with_its_error(tmp_path: Path) -> None:
    models = tmp_path / "models"
    crafted_llama(models / "evil" / "repo" / "bad.gguf", "llama.block_count", 100_000)
    write_tiny_llama_gguf(models / "good" / "repo" / "good.gguf")
    before = psutil.Process().memory_info().rss
    listed = {m.rel_path: m for m in ModelCatalog(models).scan()}
    assert psutil.Process().memory_info().rss - before < 64 << 20
    bad, fine = listed["evil/repo/bad.gguf"], listed["good/repo/good.gguf"]
    assert not bad.loadable and bad.error is not None and "block_count = 100000" in bad.error
    assert fine.loadable


def test_a_huge_array_count_in_a_small_file_is_refused_without_allocating(tmp_path: Path) -> None:
    path = write_tiny_llama_gguf(tmp_path / "models" / "p" / "r" / "huge.gguf")
    data = bytearray(path.read_bytes())
    key = b"tokenizer.ggml.tokens"
    at = data.index(key) + len(key) + 4  # past the key and the ARRAY type: element type, then count
    data[at + 4 : at + 12] = (1 << 62).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    before = psutil.Process().memory_info().rss
    (model,) = ModelCatalog(tmp_path / "models").scan()
    assert psutil.Process().memory_info().rss - before < 64 << 20
    assert model.error is not None and "absurd" in model.error


def test_a_huge_string_length_is_refused(tmp_path: Path) -> None:
    path = write_tiny_llama_gguf(tmp_path / "m.gguf")
    data = bytearray(path.read_bytes())
    key = b"general.name"
    at = data.index(key) + len(key) + 4  # the name's length prefix
    data[at : at + 8] = (1 << 40).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    (model,) = ModelCatalog(_single(tmp_path, path)).scan()
    assert model.error is not None and "string length" in model.error


def test_the_catalog_rechecks_a_file_patched_after_a_scan(tmp_path: Path) -> None:
    models = tmp_path / "models"
    path = write_tiny_llama_gguf(models / "p" / "r" / "m.gguf")
    catalog = ModelCatalog(models)
    assert catalog.scan()[0].loadable and catalog.metadata(catalog.scan()[0]) is not None
    patch_int(path, "llama.block_count", 600)
    (model,) = catalog.scan()
    assert not model.loadable and catalog.metadata(model) is None


def _single(tmp_path: Path, path: Path) -> Path:
    folder = tmp_path / "single"
    folder.mkdir()
    shutil.move(path, folder / path.name)
    return folder
