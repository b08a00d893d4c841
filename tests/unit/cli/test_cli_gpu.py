"""`lms load --gpu` and `lms ps` report the GPU offload the server says is real."""

from __future__ import annotations

import json

import pytest
from cli_fakes import FakeServer, Invoke, instance

from openlms.cli.commands.load import parse_gpu
from openlms.cli.render import gpu_offload_label


def test_parse_gpu_accepts_max_off_auto_and_ratios() -> None:
    assert parse_gpu("max") == "max" and parse_gpu(" OFF ") == "off" and parse_gpu("auto") is None
    assert parse_gpu("0.25") == 0.25 and parse_gpu("1") == 1.0 and parse_gpu("0") == 0.0
    for bad in ("1.5", "-0.1", "half", "nan"):
        with pytest.raises(ValueError, match="'max', 'off'"):
            parse_gpu(bad)


def test_gpu_offload_label() -> None:
    assert gpu_offload_label("off", 0) == "off (CPU only)"
    assert gpu_offload_label("max", 0) == "off (CPU only)"  # asked for, but nothing is on a GPU
    assert gpu_offload_label("max", 31) == "max (31 layers)"
    assert gpu_offload_label(0.5, 16) == "0.5 (16 layers)"
    assert gpu_offload_label("max", None) == "max"


def test_ps_shows_the_servers_offload(invoke: Invoke, server: FakeServer) -> None:
    cpu = instance("smollm2-135m-instruct")
    cpu["config"] |= {"gpu": "off", "gpu_layers": 0}
    server.models[0]["loaded_instances"].append(cpu)
    assert "GPU offload" not in invoke(["ps"]).stdout  # LM Studio's text shape on a CPU-only machine
    [entry] = json.loads(invoke(["ps", "--json"]).stdout)
    assert entry["gpu"] == "off" and entry["gpuLayers"] == 0

    cpu["config"] |= {"gpu": 0.5, "gpu_layers": 16}
    assert "  • GPU offload: 0.5 (16 layers)\n" in invoke(["ps"]).stdout
    [entry] = json.loads(invoke(["ps", "--json"]).stdout)
    assert entry["gpu"] == 0.5 and entry["gpuLayers"] == 16


def test_load_rejects_a_bad_gpu_value_before_calling_the_server(invoke: Invoke, server: FakeServer) -> None:
    result = invoke(["load", "smollm2-135m-instruct", "--gpu", "2"])
    assert result.exit_code != 0 and "--gpu" in result.output
    assert not any(path == "/api/v1/models/load" for _, path, *_ in server.requests)
