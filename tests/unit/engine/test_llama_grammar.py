"""Grammar-constrained generation on a random-weight model: whatever the weights say, the output is valid
JSON under the schema and ends by itself; bad grammars fail before decoding; special tokens can show."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest

from openlms.core.errors import InvalidRequestError
from openlms.core.types import GenerationRequest, LoadConfig, SamplingParams, StopReason
from openlms.engine.llama.runtime import LlamaBackend
from openlms.engine.runtime import ModelRuntime
from openlms.parsers.grammar import json_object_grammar, json_schema_grammar
from tests.unit.engine.test_llama_runtime import run

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "color": {"enum": ["red", "green", "blue"]},
        "size": {"type": "integer", "minimum": 1, "maximum": 40},
        "ok": {"type": "boolean"},
        "where": {"$ref": "#/$defs/point"},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 1, "maxItems": 3},
        "note": {  # no additionalProperties: still only the listed properties, so it ends
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 8}, "n": {"type": ["number", "null"]}},
        },
    },
    "required": ["color", "size", "where", "tags"],
    "additionalProperties": False,
    "$defs": {
        "point": {
            "type": "object",
            "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
            "required": ["x", "y"],
            "additionalProperties": False,
        },
        "tag": {"type": "string", "pattern": "^[a-z]{1,6}$"},
    },
}


TINY_CONTEXT = 1024


@pytest.mark.parametrize("seed", range(6))
async def test_random_weights_still_write_valid_json_under_the_schema(llm: ModelRuntime, seed: int) -> None:
    sampling = SamplingParams(temperature=1.0, seed=seed)
    request = GenerationRequest("hello", sampling, max_tokens=900, grammar=json_schema_grammar(SCHEMA))
    text, done, _ = await run(llm, request)
    assert done.stats.stop_reason is StopReason.EOS, text  # the grammar completed, then only EOS was allowed
    jsonschema.validate(json.loads(text), SCHEMA)


async def test_json_object_mode_gives_an_object(llm: ModelRuntime) -> None:
    sampling = SamplingParams(temperature=1.0, seed=3, top_k=0, min_p=0.0)
    request = GenerationRequest("hello", sampling, max_tokens=800, grammar=json_object_grammar())
    text, done, _ = await run(llm, request)
    if done.stats.stop_reason is StopReason.EOS:
        assert isinstance(json.loads(text), dict)
    else:  # an unbounded string may run to max_tokens; what came so far is still an object's start
        assert done.stats.stop_reason is StopReason.MAX_TOKENS and text.startswith("{")


async def test_greedy_sampling_obeys_the_grammar_too(llm: ModelRuntime) -> None:
    grammar = 'root ::= "yes" | "no" | "cat" [0-9]'
    for seed in range(3):
        sampling = SamplingParams(temperature=0.0 if seed == 0 else 1.5, seed=seed, repeat_penalty=1.0)
        text, done, _ = await run(llm, GenerationRequest("the cat", sampling, max_tokens=20, grammar=grammar))
        assert done.stats.stop_reason is StopReason.EOS and text in {"yes", "no"} | {
            f"cat{i}" for i in range(10)
        }


@pytest.mark.parametrize(
    "grammar", ["root ::= undefined-rule", 'main ::= "x"', "root ::= root", "   ", 'root ::= "\\q"']
)
async def test_a_grammar_llama_cpp_refuses_is_an_invalid_request(llm: ModelRuntime, grammar: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await run(llm, GenerationRequest("hello", max_tokens=5, grammar=grammar))
    assert "grammar" in info.value.message and info.value.param == "grammar"
    text, done, _ = await run(llm, GenerationRequest("hello", SamplingParams(temperature=0), max_tokens=3))
    assert done.stats.predicted_tokens == 3  # the runtime still serves
    assert done.stats.cached_prompt_tokens == 0  # the refused request decoded nothing


async def test_render_special_shows_control_tokens(llm: ModelRuntime) -> None:
    im_start = 3  # a control token in the tiny vocabulary; the bias makes greedy pick it every time
    sampling = SamplingParams(temperature=0.0, repeat_penalty=1.0, logit_bias={im_start: 100.0})
    plain, done, _ = await run(llm, GenerationRequest("hello", sampling, max_tokens=2))
    shown, _, _ = await run(llm, GenerationRequest("hello", sampling, max_tokens=2, render_special=True))
    assert plain == "" and done.stats.predicted_tokens == 2
    assert shown == "<|im_start|><|im_start|>"
    eos = SamplingParams(temperature=0.0, logit_bias={4: 100.0})  # <|im_end|>: still ends, never shown
    text, done, _ = await run(llm, GenerationRequest("hello", eos, max_tokens=5, render_special=True))
    assert text == "" and done.stats.stop_reason is StopReason.EOS


@pytest.mark.slow
async def test_the_default_chat_model_writes_schema_valid_json() -> None:
    from openlms.store import ModelCatalog
    from tests.support.server import CHAT_MODEL, default_models_dir

    found = ModelCatalog(default_models_dir()).find(CHAT_MODEL)
    if found is None:
        pytest.skip(f"{CHAT_MODEL} is not installed (run openlms-setup-models)")
    rt = await asyncio.to_thread(LlamaBackend().load, found, LoadConfig(context_length=1024), lambda p: None)
    try:
        prompt = "<|im_start|>user\nDescribe one cat as JSON.<|im_end|>\n<|im_start|>assistant\n"
        for seed in range(3):
            sampling = SamplingParams(temperature=0.8, seed=seed)
            grammar = json_schema_grammar(SCHEMA)
            request = GenerationRequest(prompt, sampling, max_tokens=400, add_bos=False, grammar=grammar)
            text, done, _ = await run(rt, request)
            assert done.stats.stop_reason is StopReason.EOS, text
            jsonschema.validate(json.loads(text), SCHEMA)
    finally:
        await asyncio.to_thread(rt.close)
