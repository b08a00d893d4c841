"""model.yaml end to end: the real server (`lms server start`) on a temporary models folder holding the
real SmolLM2 GGUF (linked, twice: two Hugging Face sources of one model), virtual models in the home's
`hub/models`, driven with `lms` and the `openai` client.

- a virtual model (key = its `model`) is listed with its metadataOverrides and its two variants, loads
  its file with the model.yaml's load config (contextLength), and its operation config
  (maxPredictedTokens) applies below the request;
- the curated `smollm2-135m-instruct` entry, installed as LM Studio installs catalog models, resolves too;
- a curated model that is not downloaded says how to get it; a malformed model.yaml is listed with its
  error; a model.yaml beside a concrete file still applies to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from openlms.store.curated import find_curated, install_virtual_model
from tests.support.server import NEVER_ENDS, Server, free_port, start_server

SMOL_REL = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf"
MIRROR_REL = "bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf"
PIRATE = """\
model: openlms-test/smol-pirate
base:
  - key: huggingfacetb/smollm2-135m-instruct-gguf
    sources:
      - type: huggingface
        user: HuggingFaceTB
        repo: SmolLM2-135M-Instruct-GGUF
  - key: bartowski/smollm2-135m-instruct-gguf
    sources:
      - type: huggingface
        user: bartowski
        repo: SmolLM2-135M-Instruct-GGUF
metadataOverrides:
  domain: llm
  architectures: [llama]
  paramsStrings: [135M]
  contextLengths: [8192]
  vision: false
  reasoning: false
  trainedForToolUse: mixed
config:
  operation:
    fields:
      - key: llm.prediction.maxPredictedTokens
        value: {checked: true, value: 3}
      - key: llm.prediction.temperature
        value: 0
  load:
    fields:
      - key: llm.load.contextLength
        value: 1024
"""


@pytest.fixture(scope="module")
def yaml_server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("model-yaml")
    models = root / "models"
    for rel in (SMOL_REL, MIRROR_REL):
        (models / rel).parent.mkdir(parents=True)
        (models / rel).symlink_to(models_dir / SMOL_REL)
    gemma = next(models_dir.glob("ggml-org/gemma-3-270m-GGUF/*.gguf"))
    (models / "ggml-org" / "gemma-3-270m-GGUF").mkdir(parents=True)
    (models / "ggml-org" / "gemma-3-270m-GGUF" / gemma.name).symlink_to(gemma)
    (models / "ggml-org" / "gemma-3-270m-GGUF" / "model.yaml").write_text(
        "metadataOverrides:\n  paramsStrings: [270M-yaml]\n  reasoning: true\n"
    )
    srv = start_server(root, models, free_port())
    hub = srv.home / "hub" / "models"
    for key, text in (("openlms-test/smol-pirate", PIRATE), ("openlms-test/broken", "model: [oops\n")):
        (hub / key).mkdir(parents=True)
        (hub / key / "model.yaml").write_text(text)
    for name in ("smollm2-135m-instruct", "qwen3-8b"):
        entry = find_curated(name)
        assert entry is not None
        install_virtual_model(entry, srv.home)
    yield srv
    srv.lms("server", "stop", check=False)


def _listed(server: Server) -> dict[str, dict[str, Any]]:
    listing = server.lms_json("ls")
    assert isinstance(listing, list)
    return {m["key"]: m for m in listing}


def test_lms_ls_shows_virtual_models_with_their_overrides(yaml_server: Server) -> None:
    models = _listed(yaml_server)
    pirate = models["openlms-test/smol-pirate"]
    assert pirate["virtual"] is True and pirate["error"] is None
    assert pirate["params_string"] == "135M" and pirate["max_context_length"] == 8192
    assert pirate["capabilities"]["trained_for_tool_use"] is True  # "mixed"
    assert len(pirate["variants"]) == 2 and pirate["selected_variant"] in pirate["variants"]
    assert pirate["path"] == SMOL_REL  # the first base entry's file
    curated = models["huggingfacetb/smollm2-135m-instruct"]
    assert curated["virtual"] is True and curated["capabilities"]["trained_for_tool_use"] is False
    assert "qwen/qwen3-8b" not in models  # nothing downloaded for it
    assert "model.yaml" in models["openlms-test/broken"]["error"]
    gemma = next(m for m in models.values() if m["path"].startswith("ggml-org/"))
    assert gemma["params_string"] == "270M-yaml" and gemma["capabilities"]["reasoning"] is True
    text = yaml_server.lms("ls", "--variants").stdout
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("openlms-test/smol-pirate "))
    assert all(
        lines[row + k].lstrip().startswith(("* openlms-test/smol-pirate@", "- openlms-test/smol-pirate@"))
        for k in (1, 2)
    )
    assert "cannot be loaded" in next(line for line in lines if line.startswith("openlms-test/broken"))


def test_a_virtual_model_loads_with_its_model_yaml_config(yaml_server: Server) -> None:
    yaml_server.unload_all()
    yaml_server.lms("load", "openlms-test/smol-pirate")
    with yaml_server.http() as http:
        v0 = {m["id"]: m for m in http.get("/api/v0/models").json()["data"]}
    assert v0["openlms-test/smol-pirate"]["state"] == "loaded"
    assert v0["openlms-test/smol-pirate"]["loaded_context_length"] == 1024  # config.load
    client = OpenAI(base_url=f"{yaml_server.url}/v1", api_key="lm-studio")
    messages: Any = [{"role": "user", "content": "Tell me a story."}]
    extra = {"logit_bias": NEVER_ENDS}
    answer = client.chat.completions.create(model="openlms-test/smol-pirate", messages=messages, **extra)
    assert answer.usage is not None and answer.usage.completion_tokens == 3  # config.operation
    longer = client.chat.completions.create(
        model="openlms-test/smol-pirate", messages=messages, max_tokens=6, **extra
    )
    assert longer.usage is not None and longer.usage.completion_tokens == 6  # the request wins
    yaml_server.unload_all()


def test_the_installed_curated_entry_chats(yaml_server: Server) -> None:
    client = OpenAI(base_url=f"{yaml_server.url}/v1", api_key="lm-studio")
    answer = client.chat.completions.create(
        model="huggingfacetb/smollm2-135m-instruct",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=4,
    )
    assert answer.model == "huggingfacetb/smollm2-135m-instruct" and answer.choices[0].message.content
    yaml_server.unload_all()


def test_a_model_that_is_not_downloaded_says_how_to_get_it(yaml_server: Server) -> None:
    failed = yaml_server.lms("load", "qwen/qwen3-8b", check=False)
    assert failed.returncode != 0
    assert "lms get qwen/qwen3-8b" in failed.stdout + failed.stderr
    with yaml_server.http() as http:
        answer = http.post("/api/v1/models/load", json={"model": "llama-3.1-8b"})
        broken = http.post("/api/v1/models/load", json={"model": "openlms-test/broken"})
    assert answer.status_code == 404 and "lms get llama-3.1-8b" in answer.json()["error"]["message"]
    assert broken.status_code == 422 and "model.yaml" in json.dumps(broken.json())
