from __future__ import annotations

import pytest

from openlms.core.display import architecture_display
from openlms.store import naming
from openlms.store.naming import KeyRequest, SplitName


@pytest.mark.parametrize(
    ("file_name", "embedding", "key"),
    [
        ("SmolLM2-135M-Instruct-Q4_1.gguf", False, "smollm2-135m-instruct"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", False, "smollm2-135m-instruct"),
        ("gemma-3-270m-Q4_K_M.gguf", False, "gemma-3-270m"),
        ("gemma-3-270m-q4_k_m.gguf", False, "gemma-3-270m"),
        ("Meta-Llama-3.1-8B-Instruct-IQ4_XS.gguf", False, "meta-llama-3.1-8b-instruct"),
        ("qwen2.5-7b-instruct_q8_0.gguf", False, "qwen2.5-7b-instruct"),
        ("Qwen2.5-7B-Instruct-1M-Q4_K_M-00001-of-00003.gguf", False, "qwen2.5-7b-instruct-1m"),
        ("mistral-7b-instruct-v0.3.BF16.gguf", False, "mistral-7b-instruct-v0.3"),
        ("phi-2.F32.GGUF", False, "phi-2"),
        ("model-Q5_K_S.gguf", False, "model"),
        ("tinyllama-1.1b-chat-v1.0.Q2_K.gguf", False, "tinyllama-1.1b-chat-v1.0"),
        ("plain-model.gguf", False, "plain-model"),
        ("Q8_0.gguf", False, "q8_0"),  # nothing left without the token: keep it
        ("all-MiniLM-L6-v2-F16.gguf", True, "text-embedding-all-minilm-l6-v2"),
        ("nomic-embed-text-v1.5.Q4_K_M.gguf", True, "text-embedding-nomic-embed-text-v1.5"),
        ("bge-small-en-v1.5-f16.gguf", True, "text-embedding-bge-small-en-v1.5"),
        ("text-embedding-foo-F16.gguf", True, "text-embedding-foo"),
    ],
)
def test_model_key(file_name: str, embedding: bool, key: str) -> None:
    assert naming.model_key(file_name, embedding=embedding) == key


@pytest.mark.parametrize(
    ("file_name", "quant"),
    [
        ("a-Q4_K_M.gguf", "Q4_K_M"),
        ("a.q8_0.gguf", "Q8_0"),
        ("a_iq4_xs.gguf", "IQ4_XS"),
        ("a-f16.gguf", "F16"),
        ("a-bf16-00002-of-00002.gguf", "BF16"),
        ("a-TQ1_0.gguf", "TQ1_0"),
        ("a-MXFP4_MOE.gguf", "MXFP4_MOE"),
        ("plain.gguf", None),
        ("qwen2.5-7b.gguf", None),
    ],
)
def test_quantization_from_name(file_name: str, quant: str | None) -> None:
    assert naming.quantization_from_name(file_name) == quant


def test_split_names() -> None:
    split = naming.parse_split_name("Big-Q4_K_M-00002-of-00003.gguf")
    assert split == SplitName("Big-Q4_K_M", 2, 3)
    assert naming.shard_file_name(split, 1) == "Big-Q4_K_M-00001-of-00003.gguf"
    assert naming.parse_split_name("model.gguf") is None
    assert naming.parse_split_name("model-1-of-3.gguf") is None


@pytest.mark.parametrize(
    ("size_label", "n_params", "expected"),
    [
        ("135M", 134_515_008, "135M"),
        (None, 33_400_000, "33M"),
        (None, 22_713_216, "23M"),
        (None, 1_540_000_000, "1.5B"),
        (None, 7_000_000_000, "7B"),
        (None, 7_241_000_000, "7.2B"),
        (None, 70_550_000_000, "71B"),
        (None, 712_000, "712K"),
        (None, 999, "999"),
        (None, 0, None),
        (None, None, None),
        ("8x7B", 46_700_000_000, "8x7B"),
    ],
)
def test_params_string(size_label: str | None, n_params: int | None, expected: str | None) -> None:
    assert naming.params_string(size_label, n_params) == expected


def test_display_name() -> None:
    assert naming.display_name("Gemma 3 270m", "gemma-3-270m-Q4_K_M.gguf") == "Gemma 3 270m"
    assert naming.display_name(None, "my_cool-model-Q4_K_M.gguf") == "my cool model"
    assert naming.display_name("  ", "x-y.gguf") == "x y"


@pytest.mark.parametrize(
    ("general_name", "file_name", "basename", "shown"),
    [
        # a general.name naming the training run, not the model: the file's words (its casing)
        (
            "Smollm2 135M 8k Lc100K Mix1 Ep2",
            "SmolLM2-135M-Instruct-Q4_1.gguf",
            "smollm2",
            "SmolLM2 135M Instruct",
        ),
        # words the file lacks (AWQ, GGUF) dropped; a lowercase file cased as general.name writes it
        (
            "Qwen2.5 Coder 0.5B Instruct AWQ",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            "Qwen2.5-Coder",
            "Qwen2.5 Coder 0.5B Instruct",
        ),
        (
            "Qwen2.5 Coder 1.5B Instruct GGUF",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            "Qwen2.5-Coder",
            "Qwen2.5 Coder 1.5B Instruct",
        ),
        # the same words: general.name as it is
        ("Gemma 3 270m", "gemma-3-270m-Q4_K_M.gguf", "gemma-3", "Gemma 3 270m"),
        ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2-F16.gguf", None, "all-MiniLM-L6-v2"),
        # a file not named after the model (or no basename to tell): general.name
        ("Llama 2 7B Chat", "ggml-model-q4_0.gguf", "Llama-2", "Llama 2 7B Chat"),
        ("Changed", "a.gguf", None, "Changed"),
    ],
)
def test_display_name_prefers_a_file_named_after_the_model(
    general_name: str, file_name: str, basename: str | None, shown: str
) -> None:
    assert naming.display_name(general_name, file_name, basename) == shown


@pytest.mark.parametrize(
    ("arch", "shown"),
    [
        ("llama", "Llama"),
        ("gemma3", "Gemma3"),
        ("bert", "BERT"),
        ("qwen2", "Qwen2"),
        ("nomic-bert", "Nomic BERT"),
        ("brand-new_arch", "Brand New Arch"),
        (None, None),
        ("", None),
    ],
)
def test_architecture_display(arch: str | None, shown: str | None) -> None:
    assert architecture_display(arch) == shown


def test_is_embedding_model() -> None:
    assert naming.is_embedding_model("bert", pooling_type=None, causal_attention=None)
    assert naming.is_embedding_model("nomic-bert", pooling_type=1, causal_attention=False)
    assert naming.is_embedding_model("qwen3", pooling_type=3, causal_attention=False)
    assert not naming.is_embedding_model("qwen3", pooling_type=3, causal_attention=None)
    assert not naming.is_embedding_model("llama", pooling_type=None, causal_attention=None)
    assert not naming.is_embedding_model(None, pooling_type=None, causal_attention=None)


def test_trained_for_tool_use() -> None:
    assert naming.trained_for_tool_use(
        "{% if tools %}{% for tool in tools %}{{ tool }}{% endfor %}{% endif %}"
    )
    assert not naming.trained_for_tool_use("{{ messages }}")
    assert not naming.trained_for_tool_use(None)
    assert not naming.trained_for_tool_use("{{ toolset }}")


def test_vision_projector_siblings() -> None:
    assert naming.has_vision_projector(["model-Q4_K_M.gguf", "mmproj-model-f16.gguf"])
    assert naming.has_vision_projector(["MMPROJ.gguf"])
    assert not naming.has_vision_projector(["model.gguf", "mmproj.txt"])


def test_default_repo_name() -> None:
    assert naming.default_repo_name("Foo-7B-Q4_K_M.gguf") == "Foo-7B-GGUF"
    assert naming.default_repo_name("Big-Q8_0-00001-of-00002.gguf") == "Big-GGUF"


def _req(key: str, quant: str | None, publisher: str, rel: str) -> KeyRequest:
    return KeyRequest(key, quant, publisher, rel)


def test_assign_keys_unique_keys_stay_plain() -> None:
    keys, aliases = naming.assign_keys(
        [_req("a", "Q4_0", "p", "p/r/a.gguf"), _req("b", "Q4_0", "p", "p/r/b.gguf")]
    )
    assert (keys, aliases) == (["a", "b"], {})


def test_assign_keys_collisions_get_quant_and_alias_to_first_sorted() -> None:
    requests = [
        _req("gemma", "Q8_0", "pub", "pub/gemma/gemma-Q8_0.gguf"),
        _req("gemma", "Q4_K_M", "pub", "pub/gemma/gemma-Q4_K_M.gguf"),
        _req("other", "F16", "pub", "pub/other/other.gguf"),
    ]
    keys, aliases = naming.assign_keys(requests)
    assert keys == ["gemma@q8_0", "gemma@q4_k_m", "other"]
    assert aliases == {"gemma": 1}  # "pub/gemma/gemma-Q4_K_M.gguf" sorts first


def test_assign_keys_same_quant_in_two_repos() -> None:
    requests = [
        _req("m", "Q4_0", "alice", "alice/m/m-Q4_0.gguf"),
        _req("m", "Q4_0", "bob", "bob/m/m-Q4_0.gguf"),
        _req("m", "Q4_0", "bob", "bob/m2/m-Q4_0.gguf"),
    ]
    keys, aliases = naming.assign_keys(requests)
    assert keys == ["alice/m@q4_0", "bob/m/m-Q4_0", "bob/m2/m-Q4_0"]
    assert len(set(keys)) == 3
    assert aliases["m"] == 0 and aliases["m@q4_0"] == 0
