"""A model.yaml's config is a settings layer: request > preset > per-model > model.yaml > server defaults,
for a prediction key (contextOverflowPolicy) and a load key (contextLength); customFields set Jinja
variables for virtual models; a model.yaml with a bad value fails with a message naming it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openlms.core.errors import InvalidModelFileError, ModelNotFoundError
from openlms.core.settings import Settings
from openlms.core.types import ContextOverflowPolicy, LoadConfig, ModelDescriptor
from openlms.engine.fake import FakeBackend
from openlms.engine.manager import InstanceManager
from openlms.services.models import ModelService
from openlms.services.params import PredictionParams, resolve
from openlms.store.catalog import ModelCatalog
from tests.support.tiny_gguf import write_tiny_llama_gguf

YAML = """\
model: me/tiny
base:
  - key: me/tiny-gguf
    sources: [{type: huggingface, user: me, repo: Tiny-GGUF}]
config:
  operation:
    fields:
      - key: llm.prediction.contextOverflowPolicy
        value: rollingWindow
      - key: llm.prediction.temperature
        value: 0.25
      - key: llm.prediction.someFutureKey
        value: 1
  load:
    fields:
      - key: llm.load.contextLength
        value: 1024
      - key: llm.load.someFutureKey
        value: true
customFields:
  - key: enableThinking
    type: boolean
    defaultValue: true
    effects: [{type: setJinjaVariable, variable: enable_thinking}]
"""
Overflow = ContextOverflowPolicy


@pytest.fixture
def service(tmp_path: Path) -> ModelService:
    write_tiny_llama_gguf(tmp_path / "models" / "me" / "Tiny-GGUF" / "Tiny-Q4_K_M.gguf")
    hub = tmp_path / "hub" / "models"
    (hub / "me" / "tiny").mkdir(parents=True)
    (hub / "me" / "tiny" / "model.yaml").write_text(YAML)
    settings = Settings(home=tmp_path, models_dir=tmp_path / "models")
    return ModelService(
        settings, ModelCatalog(settings.resolved_models_dir, hub), InstanceManager(FakeBackend())
    )


def _virtual(service: ModelService) -> ModelDescriptor:
    return asyncio.run(service.find_downloaded("me/tiny"))


def _overflow(service: ModelService, request: PredictionParams, preset: PredictionParams | None) -> Overflow:
    setup = service.model_setup(_virtual(service))
    return resolve(request, preset, setup.params, service.settings).overflow


def test_prediction_order_request_preset_per_model_model_yaml_server(service: ModelService) -> None:
    none = PredictionParams()
    setup = service.model_setup(_virtual(service))
    resolved = resolve(none, None, setup.params, service.settings)
    assert resolved.sampling.temperature == 0.25  # model.yaml over LM Studio's default (0.8)
    assert resolved.overflow is Overflow.ROLLING_WINDOW  # model.yaml over the server's default
    assert setup.variables == {"enable_thinking": True}
    asyncio.run(
        service.put_model_config("me/tiny", {"prediction": {"contextOverflowPolicy": "truncateMiddle"}})
    )
    assert _overflow(service, none, None) is Overflow.TRUNCATE_MIDDLE  # per-model over model.yaml
    preset = PredictionParams(overflow=Overflow.STOP_AT_LIMIT)
    assert _overflow(service, none, preset) is Overflow.STOP_AT_LIMIT  # preset over per-model
    request = PredictionParams(overflow=Overflow.ROLLING_WINDOW)
    assert _overflow(service, request, preset) is Overflow.ROLLING_WINDOW  # request over preset


def test_without_a_model_yaml_the_server_default_applies(service: ModelService) -> None:
    plain = asyncio.run(service.find_downloaded("tiny"))
    assert plain.model_yaml is None
    resolved = resolve(PredictionParams(), None, service.model_setup(plain).params, service.settings)
    assert resolved.overflow is service.settings.context_overflow_policy
    assert resolved.sampling.temperature == 0.8


def _context(service: ModelService, query: str, config: LoadConfig) -> int:
    async def go() -> int:
        instance = await service.load(query, config)
        await service.unload(instance.identifier)
        return instance.load_config.context_length or 0

    return asyncio.run(go())


def test_load_order_request_per_model_model_yaml_server(service: ModelService) -> None:
    assert _context(service, "tiny", LoadConfig()) != 1024  # the concrete file alone: no model.yaml
    assert _context(service, "me/tiny", LoadConfig()) == 1024  # model.yaml over the server's default
    asyncio.run(service.put_model_config("me/tiny", {"load": {"contextLength": 512}}))
    assert _context(service, "me/tiny", LoadConfig()) == 512  # per-model over model.yaml
    assert _context(service, "me/tiny", LoadConfig(context_length=256)) == 256  # request over per-model


def test_a_bad_config_value_names_the_model_yaml(service: ModelService, tmp_path: Path) -> None:
    path = tmp_path / "hub" / "models" / "me" / "tiny" / "model.yaml"
    path.write_text(YAML.replace("value: 1024", "value: big"))
    with pytest.raises(InvalidModelFileError) as info:
        _context(service, "me/tiny", LoadConfig())
    assert str(path) in info.value.message and "contextLength" in info.value.message


def test_not_downloaded_virtual_and_curated_models_say_how_to_get_them(service: ModelService) -> None:
    hub = service.settings.home / "hub" / "models" / "qwen" / "qwen3-8b"
    hub.mkdir(parents=True)
    (hub / "model.yaml").write_text(
        "model: qwen/qwen3-8b\nbase:\n  - key: lmstudio-community/qwen3-8b-gguf\n"
        "    sources: [{type: huggingface, user: lmstudio-community, repo: Qwen3-8B-GGUF}]\n"
    )
    with pytest.raises(ModelNotFoundError) as info:
        asyncio.run(service.find_downloaded("qwen/qwen3-8b"))
    assert "lms get qwen/qwen3-8b" in info.value.message
    with pytest.raises(ModelNotFoundError) as info:
        asyncio.run(service.find_downloaded("llama-3.1-8b"))
    assert "lms get llama-3.1-8b" in info.value.message and "curated" in info.value.message


def test_every_curated_entrys_config_uses_keys_openlms_implements() -> None:
    from openlms.services.kvconfig import read_prediction
    from openlms.store.curated import curated_models
    from openlms.store.model_yaml import parse_model_yaml

    for entry in curated_models():
        parsed = parse_model_yaml(entry.yaml_text)
        read_prediction(dict(parsed.operation_fields), strict=True)  # an unknown key raises
        assert not parsed.load_fields  # the curated entries leave loads to the user and the server
