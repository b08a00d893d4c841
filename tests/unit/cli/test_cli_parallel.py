"""`lms load --parallel N` sends `config.parallel`; `lms ps` shows parallel, running and queued."""

from __future__ import annotations

import json

from cli_fakes import FakeServer, Invoke, instance


def _load_bodies(server: FakeServer) -> list[dict[str, object]]:
    return [
        body for method, path, body in server.requests if (method, path) == ("POST", "/api/v1/models/load")
    ]


def test_load_sends_parallel_in_the_load_config(invoke: Invoke, server: FakeServer) -> None:
    result = invoke(["load", "smollm2-135m-instruct", "--parallel", "2", "--context-length", "2048"])
    assert result.exit_code == 0, result.output
    [body] = _load_bodies(server)
    assert body["config"] == {"context_length": 2048, "parallel": 2}


def test_load_leaves_parallel_unset_when_not_given(invoke: Invoke, server: FakeServer) -> None:
    assert invoke(["load", "smollm2-135m-instruct"]).exit_code == 0
    [body] = _load_bodies(server)
    assert "config" not in body  # the server (per-model default, else 4) decides


def test_load_refuses_parallel_out_of_range_before_calling_the_server(
    invoke: Invoke, server: FakeServer
) -> None:
    for bad in ("0", "65", "two"):
        result = invoke(["load", "smollm2-135m-instruct", "--parallel", bad])
        assert result.exit_code != 0 and "--parallel" in result.output
    assert _load_bodies(server) == []


def test_ps_shows_parallel_running_and_queued(invoke: Invoke, server: FakeServer) -> None:
    busy = instance("smollm2-135m-instruct", status="generating", active_requests=2, queued_requests=1)
    busy["config"] |= {"parallel": 2}
    server.models[0]["loaded_instances"].append(busy)
    text = invoke(["ps"]).stdout
    assert "  • Parallel: 2\n" in text
    assert "  • Status: generating (2 active requests)\n" in text and "  • Queued requests: 1\n" in text
    [entry] = json.loads(invoke(["ps", "--json"]).stdout)
    assert (entry["parallel"], entry["active"], entry["queued"]) == (2, 2, 1)


def test_ps_from_a_server_without_parallel_leaves_it_out(invoke: Invoke, server: FakeServer) -> None:
    server.models[0]["loaded_instances"].append(instance("smollm2-135m-instruct"))
    assert "Parallel" not in invoke(["ps"]).stdout
    [entry] = json.loads(invoke(["ps", "--json"]).stdout)
    assert entry["parallel"] is None
