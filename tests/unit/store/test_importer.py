from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from openlms.core.types import ModelKind
from openlms.store.catalog import ModelCatalog
from openlms.store.importer import ModelImportError, import_model
from tests.support.tiny_gguf import write_tiny_llama_gguf


@pytest.fixture
def source(tmp_path: Path, tiny_llama: Path) -> Path:
    path = tmp_path / "downloads" / "Cool-Model-7B-Q4_K_M.gguf"
    path.parent.mkdir(parents=True)
    shutil.copyfile(tiny_llama, path)
    return path


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return tmp_path / "models"


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*") if p.is_file()]


def test_copy_into_the_default_layout(source: Path, models: Path) -> None:
    target = import_model(source, models)
    assert target == models / "local" / "Cool-Model-7B-GGUF" / "Cool-Model-7B-Q4_K_M.gguf"
    assert target.read_bytes() == source.read_bytes() and source.exists()
    assert no_temp_files(models)
    found = ModelCatalog(models).find("cool-model-7b")
    assert found is not None and found.path == target and found.publisher == "local"


def test_publisher_and_repo(source: Path, models: Path) -> None:
    target = import_model(source, models, publisher="acme", repo="Cool-GGUF")
    assert target.relative_to(models).as_posix() == "acme/Cool-GGUF/Cool-Model-7B-Q4_K_M.gguf"


def test_move(source: Path, models: Path) -> None:
    data = source.read_bytes()
    target = import_model(source, models, mode="move")
    assert not source.exists() and target.read_bytes() == data


def test_hardlink(source: Path, models: Path) -> None:
    target = import_model(source, models, mode="hardlink")
    assert target.stat().st_ino == source.stat().st_ino


def test_symlink(source: Path, models: Path) -> None:
    target = import_model(source, models, mode="symlink")
    assert target.is_symlink() and target.resolve() == source.resolve()
    found = ModelCatalog(models).find("cool-model-7b")
    assert found is not None and found.loadable


@pytest.mark.parametrize("mode", ["copy", "move", "hardlink", "symlink"])
def test_never_overwrites(source: Path, models: Path, mode: str) -> None:
    target = models / "local" / "Cool-Model-7B-GGUF" / source.name
    target.parent.mkdir(parents=True)
    target.write_bytes(b"already here")
    with pytest.raises(ModelImportError, match="already exists"):
        import_model(source, models, mode=mode)  # type: ignore[arg-type]
    assert target.read_bytes() == b"already here" and source.exists()


def test_refuses_a_second_import(source: Path, models: Path) -> None:
    import_model(source, models)
    with pytest.raises(ModelImportError, match="already exists"):
        import_model(source, models)


def test_refuses_non_gguf_and_corrupt_files(tmp_path: Path, models: Path, tiny_llama: Path) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelImportError, match="not a GGUF file"):
        import_model(text, models)
    half = tmp_path / "half.gguf"
    half.write_bytes(tiny_llama.read_bytes()[:5000])
    with pytest.raises(ModelImportError, match="not a valid GGUF file: truncated"):
        import_model(half, models)
    with pytest.raises(ModelImportError, match="does not exist"):
        import_model(tmp_path / "missing.gguf", models)
    assert not models.exists()


@pytest.mark.parametrize("bad", ["..", ".hidden", "a/b", "x\\y"])
def test_refuses_bad_publisher_or_repo_names(source: Path, models: Path, bad: str) -> None:
    with pytest.raises(ModelImportError, match="invalid"):
        import_model(source, models, publisher=bad, repo=bad)
    assert not models.exists()


def test_refuses_unknown_modes(source: Path, models: Path) -> None:
    with pytest.raises(ModelImportError, match="unknown import mode"):
        import_model(source, models, mode="teleport")  # type: ignore[arg-type]


def test_split_model_imports_every_shard(tmp_path: Path, models: Path) -> None:
    first = write_tiny_llama_gguf(tmp_path / "dl" / "Big-Q8_0.gguf", split_max_tensors=8)
    target = import_model(tmp_path / "dl" / "Big-Q8_0-00002-of-00003.gguf", models)
    assert target.name == first.name and target.parent.name == "Big-GGUF"
    assert sorted(p.name for p in target.parent.iterdir()) == [
        f"Big-Q8_0-0000{i}-of-00003.gguf" for i in (1, 2, 3)
    ]
    (model,) = ModelCatalog(models).scan()
    assert model.key == "big" and len(model.shard_paths) == 3 and model.loadable


def test_split_model_with_a_missing_shard_is_refused(tmp_path: Path, models: Path) -> None:
    first = write_tiny_llama_gguf(tmp_path / "dl" / "Big.gguf", split_max_tensors=8)
    (first.parent / "Big-00003-of-00003.gguf").unlink()
    with pytest.raises(ModelImportError, match="missing shard"):
        import_model(first, models)


def test_bert_folder_is_converted(bert_folder: Path, models: Path) -> None:
    target = import_model(bert_folder, models, publisher="sentence-transformers")
    assert target.relative_to(models).as_posix() == "sentence-transformers/tiny-bert-GGUF/tiny-bert-F16.gguf"
    (model,) = ModelCatalog(models).scan()
    assert (model.key, model.kind, model.quantization) == (
        "text-embedding-tiny-bert",
        ModelKind.EMBEDDING,
        "F16",
    )
    assert no_temp_files(models)
    with pytest.raises(ModelImportError, match="already exists"):
        import_model(bert_folder, models, publisher="sentence-transformers")


def test_generic_model_folder_takes_its_parents_name(tmp_path: Path, models: Path) -> None:
    from tests.support.tiny_gguf import make_tiny_bert_folder

    folder = make_tiny_bert_folder(tmp_path / "my-embedder" / "model")
    assert import_model(folder, models).name == "my-embedder-F16.gguf"


def test_folder_rules(bert_folder: Path, tmp_path: Path, models: Path) -> None:
    with pytest.raises(ModelImportError, match="does not apply"):
        import_model(bert_folder, models, mode="symlink")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelImportError, match="no config.json"):
        import_model(tmp_path / "empty", models)
