"""LM Studio's KV configs (SDK config stacks, presets) read into openlms's types and written back (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from openlms.core.errors import InvalidRequestError
from openlms.core.kvconfig import load_config, load_fields, merge_layers
from openlms.core.settings import Settings
from openlms.core.types import ContextOverflowPolicy, LoadConfig, ModelKind
from openlms.server.sdk.kvconfig import COMPLETION_TEMPLATE, client_config
from openlms.services.kvconfig import prediction_fields, read_prediction
from openlms.services.params import PredictionParams, ResolvedParams, resolve


def prediction_settings(fields: dict[str, Any], *, strict: bool = True) -> PredictionParams:
    return read_prediction(fields, strict=strict)


def resolved(params: PredictionParams) -> ResolvedParams:
    """The settings used when the request's layer is the only one (server defaults below it)."""
    return resolve(params, None, PredictionParams(), Settings())


def stack(*layers: dict[str, Any]) -> dict[str, Any]:
    return {
        "layers": [
            {
                "layerName": f"layer{i}",
                "config": {"fields": [{"key": k, "value": v} for k, v in layer.items()]},
            }
            for i, layer in enumerate(layers)
        ]
    }


def test_first_layer_wins() -> None:
    merged = merge_layers(stack({"a": 1}, {"a": 2, "b": 3}))
    assert merged == {"a": 1, "b": 3}


def test_prediction_fields_map_to_sampling_and_limits() -> None:
    settings = prediction_settings(
        {
            "llm.prediction.temperature": 0.2,
            "llm.prediction.topKSampling": 7,
            "llm.prediction.topPSampling": {"checked": True, "value": 0.5},
            "llm.prediction.minPSampling": {"checked": False, "value": 0.9},
            "llm.prediction.maxPredictedTokens": {"checked": True, "value": 12},
            "llm.prediction.stopStrings": ["END", ""],
            "llm.prediction.contextOverflowPolicy": "rollingWindow",
        }
    )
    assert settings.min_p is None  # unchecked: unset
    used_settings = resolved(settings)
    assert used_settings.sampling.temperature == 0.2 and used_settings.sampling.top_k == 7
    assert used_settings.sampling.top_p == 0.5 and used_settings.sampling.min_p == 0.05  # the default
    assert used_settings.max_tokens == 12 and used_settings.stop == ("END",)
    assert used_settings.overflow is ContextOverflowPolicy.ROLLING_WINDOW
    used = {f["key"]: f["value"] for f in prediction_fields(used_settings, {})}
    assert used["llm.prediction.maxPredictedTokens"] == {"checked": True, "value": 12}


def test_unchecked_max_tokens_means_no_limit() -> None:
    assert (
        prediction_settings({"llm.prediction.maxPredictedTokens": {"checked": False, "value": 5}}).max_tokens
        is None
    )


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("llm.prediction.somethingNew", 1, "llm.prediction.somethingNew"),
        ("llm.prediction.temperature", "hot", "llm.prediction.temperature"),
        ("llm.prediction.contextOverflowPolicy", "sideways", "llm.prediction.contextOverflowPolicy"),
        ("llm.prediction.structured", {"type": "xml"}, "llm.prediction.structured"),
        ("llm.prediction.reasoning.parsing", {"enabled": True, "startString": "<r>"}, "startString"),
    ],
)
def test_bad_or_unknown_fields_are_named(key: str, value: Any, named: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        prediction_settings({key: value})
    assert named in err.value.message


def test_presets_skip_unknown_fields() -> None:
    settings = prediction_settings(
        {"llm.prediction.somethingNew": 1, "llm.prediction.temperature": 0}, strict=False
    )
    assert settings.temperature == 0


def test_completion_layer_and_structured_output() -> None:
    template = {"type": "jinja", "jinjaPromptTemplate": {"template": COMPLETION_TEMPLATE}, "stopStrings": []}
    stack = {
        "layers": [{"config": {"fields": [{"key": "llm.prediction.promptTemplate", "value": template}]}}]
    }
    assert client_config(stack).completion_mode
    assert not client_config({"layers": []}).completion_mode
    schema = {"type": "object", "properties": {"x": {"type": "string"}}}
    structured = prediction_settings({"llm.prediction.structured": {"type": "json", "jsonSchema": schema}})
    assert structured.structured and "root" in structured.structured


def test_draft_settings() -> None:
    settings = prediction_settings(
        {
            "llm.prediction.speculativeDecoding.draftModel": "small",
            "llm.prediction.speculativeDecoding.numDraftTokensExact": 4,
        }
    )
    assert settings.draft_model == "small" and settings.num_draft_tokens == 4


def test_load_config_reads_llm_keys_and_refuses_others() -> None:
    config = load_config(
        {
            "llm.load.contextLength": 2048,
            "llm.load.seed": {"checked": True, "value": 7},
            "llm.load.llama.acceleration.offloadRatio": 1,
            "llm.load.llama.kCacheQuantizationType": {"checked": True, "value": "q8_0"},
            "load.gpuSplitConfig": {"strategy": "evenly"},
        },
        ModelKind.LLM,
    )
    assert config == LoadConfig(context_length=2048, seed=7, gpu="max", k_cache_type="q8_0")
    with pytest.raises(InvalidRequestError, match="llm.load.contextLength"):
        load_config({"llm.load.contextLength": 512}, ModelKind.EMBEDDING)
    assert load_config({"embedding.load.contextLength": 256}, ModelKind.EMBEDDING).context_length == 256


def test_load_fields_report_the_context_length() -> None:
    fields = {f["key"]: f["value"] for f in load_fields(LoadConfig(seed=3), 4096, ModelKind.LLM)}
    assert fields["llm.load.contextLength"] == 4096
    assert fields["llm.load.seed"] == {"checked": True, "value": 3}
    embedding = {f["key"] for f in load_fields(LoadConfig(), 512, ModelKind.EMBEDDING)}
    assert "embedding.load.contextLength" in embedding and not any(k.startswith("llm.") for k in embedding)
