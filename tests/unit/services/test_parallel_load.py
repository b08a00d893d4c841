"""The `parallel` load setting below the APIs: LM Studio's KV key (the SDK's config stacks and LM Studio's
per-model files), openlms's per-model defaults, and the one range check every load path goes through."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlms.core.errors import InvalidRequestError
from openlms.core.kvconfig import load_config, load_fields
from openlms.core.types import MAX_PARALLEL, LoadConfig, ModelKind
from openlms.services.load_limits import check_ranges
from openlms.services.models import with_load_defaults
from openlms.store.model_config import LoadDefaults, ModelConfigStore, parse_model_config

KEY = "llm.load.numParallelSessions"


def test_the_sdk_key_sets_parallel() -> None:
    assert load_config({KEY: 2}, ModelKind.LLM) == LoadConfig(parallel=2)
    assert load_config({KEY: MAX_PARALLEL}, ModelKind.LLM).parallel == MAX_PARALLEL
    # the cache is always unified: the key is accepted and changes nothing
    assert load_config({"llm.load.useUnifiedKvCache": True}, ModelKind.LLM) == LoadConfig()


@pytest.mark.parametrize("bad", [0, -1, MAX_PARALLEL + 1, 2.5, "4", True])
def test_the_sdk_key_out_of_range_names_the_key_and_the_range(bad: object) -> None:
    with pytest.raises(InvalidRequestError) as info:
        load_config({KEY: bad}, ModelKind.LLM)
    assert info.value.param == KEY and KEY in info.value.message
    if isinstance(bad, int) and not isinstance(bad, bool):
        assert f"from 1 to {MAX_PARALLEL}" in info.value.message


def test_load_fields_report_parallel_and_a_unified_cache() -> None:
    fields = {f["key"]: f["value"] for f in load_fields(LoadConfig(parallel=3), 4096, ModelKind.LLM)}
    assert fields[KEY] == 3 and fields["llm.load.useUnifiedKvCache"] is True
    embedding = {f["key"] for f in load_fields(LoadConfig(parallel=3), 512, ModelKind.EMBEDDING)}
    assert not any("Parallel" in key or "Unified" in key for key in embedding)


@pytest.mark.parametrize("bad", [0, MAX_PARALLEL + 1])
def test_every_load_path_checks_the_range(bad: int) -> None:
    check_ranges(LoadConfig(parallel=1))
    check_ranges(LoadConfig(parallel=MAX_PARALLEL))
    with pytest.raises(InvalidRequestError) as info:
        check_ranges(LoadConfig(parallel=bad), param="load")
    assert info.value.param == "load.parallel"
    assert f"between 1 and {MAX_PARALLEL}" in info.value.message


def test_a_per_model_default_applies_unless_the_load_sets_it() -> None:
    defaults = parse_model_config({"load": {"parallel": 2, "contextLength": 1024}}).load
    assert with_load_defaults(LoadConfig(), defaults) == LoadConfig(parallel=2, context_length=1024)
    assert with_load_defaults(LoadConfig(parallel=6), defaults).parallel == 6
    assert with_load_defaults(LoadConfig(), LoadDefaults()).parallel is None  # the engine's default


@pytest.mark.parametrize("bad", [0, MAX_PARALLEL + 1, "two"])
def test_a_per_model_default_out_of_range_is_refused(bad: object) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_model_config({"load": {"parallel": bad}})
    assert info.value.param == "load.parallel"


def test_a_per_model_default_is_stored_and_read_back(tmp_path: Path) -> None:
    store = ModelConfigStore(tmp_path)
    store.put("p/r/m.gguf", parse_model_config({"load": {"parallel": 8}}))
    assert store.get("p/r/m.gguf").load.fields_set() == {"parallel": 8}
