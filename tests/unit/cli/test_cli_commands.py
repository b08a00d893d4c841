"""`lms ls / ps / load / unload / status / version` against the in-memory server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_fakes import QWEN, SMOLLM, FakeServer, Invoke, instance, write_server_file

pytestmark = pytest.mark.usefixtures("running")  # a live server.json on port 1234 unless a test says else


def test_ls_table(invoke: Invoke) -> None:
    result = invoke(["ls"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "You have 3 models, taking up 580.28 MB of disk space."
    assert any(line.startswith("LLMs (Large Language Models)") for line in lines)
    assert any(line.startswith("Embedding Models") for line in lines)


def test_ls_json_is_the_servers_list(invoke: Invoke, server: FakeServer) -> None:
    result = invoke(["ls", "--json", "--llm"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [SMOLLM, QWEN]
    assert json.loads(invoke(["ls", "--json", "--embedding"]).stdout)[0]["type"] == "embedding"


def test_ls_detailed(invoke: Invoke) -> None:
    assert "    Quantization: Q4_1 (5 bits per weight)" in invoke(["ls", "--detailed"]).stdout


def test_ls_uses_the_port_in_server_json(invoke: Invoke, server: FakeServer, home: Path) -> None:
    write_server_file(home, port=4321)
    assert invoke(["ls"]).exit_code == 0
    assert server.urls == ["http://127.0.0.1:4321/api/v1/models"]


def test_ps_empty_and_loaded(invoke: Invoke, server: FakeServer) -> None:
    assert invoke(["ps"]).stdout == "No models are currently loaded.\n"
    assert json.loads(invoke(["ps", "--json"]).stdout) == []
    server.models[0]["loaded_instances"].append(instance("smollm2-135m-instruct", ttl_seconds=600))
    text = invoke(["ps"]).stdout
    assert text.startswith("   LOADED MODELS\n\nIdentifier: smollm2-135m-instruct\n  • Type:  LLM\n")
    assert "  • TTL: 10m (idle 12s)" in text
    [entry] = json.loads(invoke(["ps", "--json"]).stdout)
    assert entry["identifier"] == "smollm2-135m-instruct" and entry["ttl"] == 600


def test_load_success(invoke: Invoke, server: FakeServer) -> None:
    result = invoke(
        [
            "load",
            "smollm2-135m-instruct",
            "--ttl",
            "300",
            "--gpu",
            "0.5",
            "--context-length",
            "2048",
            "--identifier",
            "mine",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        'Loading model "smollm2-135m-instruct"...',
        "Model loaded successfully in 0.31s. (98.36 MB)",
        'To use the model in the API/SDK, use the identifier "mine".',
    ]
    assert server.requests[-1] == (
        "POST",
        "/api/v1/models/load",
        {
            "model": "smollm2-135m-instruct",
            "identifier": "mine",
            "ttl": 300,
            "config": {"context_length": 2048, "gpu": 0.5},
            "stream": True,
        },
    )


def test_load_sends_only_what_was_set(invoke: Invoke, server: FakeServer) -> None:
    assert invoke(["load", "qwen2.5-0.5b-instruct", "--gpu", "max"]).exit_code == 0
    assert server.requests[-1][2] == {
        "model": "qwen2.5-0.5b-instruct",
        "config": {"gpu": "max"},
        "stream": True,
    }
    assert invoke(["load", "smollm2-135m-instruct", "--gpu", "auto"]).exit_code == 0
    assert server.requests[-1][2] == {"model": "smollm2-135m-instruct", "stream": True}


def test_load_with_a_progress_bar(invoke: Invoke) -> None:
    result = invoke(["load", "smollm2-135m-instruct"], show_progress=lambda: True)
    assert result.exit_code == 0, result.output
    assert "Model loaded successfully" in result.stdout


def test_load_fuzzy_and_exact_matches(invoke: Invoke, server: FakeServer) -> None:
    assert invoke(["load", "smollm"]).exit_code == 0  # the only match
    assert server.requests[-1][2]["model"] == "smollm2-135m-instruct"
    assert invoke(["load", "Qwen/qwen2.5-0.5b-instruct"]).exit_code == 0  # publisher/key
    assert server.requests[-1][2]["model"] == "qwen2.5-0.5b-instruct"


def test_load_ambiguous_query(invoke: Invoke, server: FakeServer) -> None:
    result = invoke(["load", "instruct"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: 'instruct' matches several models (smollm2-135m-instruct, ")
    assert invoke(["load", "instruct", "--yes"]).exit_code == 0
    assert server.requests[-1][2]["model"] == "smollm2-135m-instruct"
    assert invoke(["load", "instruct"], tty=True, input="2\n").exit_code == 0
    assert server.requests[-1][2]["model"] == "qwen2.5-0.5b-instruct"


def test_load_unknown_model_shows_the_server_message(invoke: Invoke) -> None:
    result = invoke(["load", "nothing-like-it"])
    assert result.exit_code == 1
    assert result.stderr == "Error: No model matching 'nothing-like-it' was found.\n"


def test_load_identifier_in_use(invoke: Invoke) -> None:
    assert invoke(["load", "smollm2-135m-instruct"]).exit_code == 0
    result = invoke(["load", "qwen2.5-0.5b-instruct", "--identifier", "smollm2-135m-instruct"])
    assert result.exit_code == 1 and "already exists" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "abc"], "Error: Invalid value for '--gpu': 'abc' is not 'max', 'off', 'auto' or a number"),
        (["--gpu", "1.5"], "Error: Invalid value for '--gpu': '1.5' is not"),
        (["--gpu", "nan"], "Error: Invalid value for '--gpu': 'nan' is not"),
        (
            ["--context-length", "0"],
            "Error: Invalid value for '--context-length': 0 is not in the range x>=1.",
        ),
        (["--context-length", "many"], "Error: Invalid value for '--context-length': 'many' is not a valid"),
        (["--ttl", "-5"], "Error: Invalid value for '--ttl': -5 is not in the range x>=1."),
        (["--host", "h:notaport"], "Error: Invalid value for '--host': invalid port in 'h:notaport'"),
    ],
)
def test_load_flag_validation(invoke: Invoke, server: FakeServer, args: list[str], message: str) -> None:
    result = invoke(["load", "smollm2-135m-instruct", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert server.requests == []  # validated before any request


def test_load_without_key_and_without_tty(invoke: Invoke, server: FakeServer) -> None:
    result = invoke(["load"])
    assert result.exit_code == 1
    assert (
        result.stderr == "Error: No model key given. Run `lms ls` to see model keys, then `lms load <key>`.\n"
    )
    assert server.requests == []


def test_load_picker_on_a_tty(invoke: Invoke, server: FakeServer) -> None:
    result = invoke(["load"], tty=True, input="3\n")
    assert result.exit_code == 0, result.output
    assert "Select a model to load:" in result.stdout
    assert server.requests[-1][2]["model"] == "text-embedding-nomic-embed-text-v1.5"


def test_unload(invoke: Invoke, server: FakeServer) -> None:
    assert invoke(["unload", "--all"]).stdout == "No models to unload.\n"
    assert invoke(["unload"]).stdout == "No models to unload.\n"
    invoke(["load", "smollm2-135m-instruct"])
    invoke(["load", "smollm2-135m-instruct", "--identifier", "second"])
    invoke(["load", "qwen2.5-0.5b-instruct"])
    assert invoke(["unload", "second"]).stdout == 'Unloaded "second".\n'
    assert invoke(["unload", "qwen2.5-0.5b-instruct"]).stdout == 'Unloaded "qwen2.5-0.5b-instruct".\n'
    assert server.loaded_ids() == ["smollm2-135m-instruct"]


def test_unload_by_model_key_with_several_instances(invoke: Invoke, server: FakeServer) -> None:
    server.models[0]["loaded_instances"] += [instance("a"), instance("b")]
    result = invoke(["unload", "smollm2-135m-instruct"])
    assert result.exit_code == 1
    assert "is loaded 2 times (a, b)" in result.stderr
    assert invoke(["unload", "smollm2-135m-instruct"], tty=True, input="2\n").stdout.endswith(
        'Unloaded "b".\n'
    )
    assert invoke(["unload", "--all"]).stdout == 'Unloaded "a".\n'


def test_unload_errors(invoke: Invoke, server: FakeServer) -> None:
    server.models[0]["loaded_instances"].append(instance("a"))
    result = invoke(["unload"])
    assert (result.exit_code, result.stderr.startswith("Error: No model given.")) == (1, True)
    assert invoke(["unload"], tty=True, input="1\n").stdout.endswith('Unloaded "a".\n')
    result = invoke(["unload", "ghost"])
    assert (result.exit_code, result.stderr) == (1, "Error: No loaded model instance 'ghost'.\n")
    result = invoke(["unload", "x", "--all"])
    assert (result.exit_code, result.stderr) == (2, "Error: Give a model key or --all, not both.\n")


def test_status(invoke: Invoke, server: FakeServer) -> None:
    server.models[0]["loaded_instances"].append(instance("smollm2-135m-instruct"))
    assert invoke(["status"]).stdout.splitlines()[0] == "Server:  ON  (port: 1234)"
    assert "  · smollm2-135m-instruct - 98.36 MB" in invoke(["status"]).stdout


def test_remote_host_skips_discovery(invoke: Invoke, server: FakeServer, home: Path) -> None:
    (home / "openlms" / "server.json").unlink()
    assert invoke(["ps", "--host", "gpu-box"]).exit_code == 0
    assert server.urls == ["http://gpu-box:1234/api/v1/models"]


def test_an_exact_key_wins_over_a_publisher_and_key_spelling() -> None:
    """`lms get` of a curated model prints `lms load huggingfacetb/smollm2-135m-instruct` (the model.yaml
    model's key); the file it resolves to is `smollm2-135m-instruct` from HuggingFaceTB, whose
    publisher/key spelling is the same text. The key wins; the spelling still finds the file alone."""
    from openlms.cli.commands.load import match_models
    from openlms.cli.schema import ModelInfo

    def model(key: str, publisher: str, *, virtual: bool) -> ModelInfo:
        path = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf"
        return ModelInfo(
            key,
            "llm",
            publisher,
            None,
            None,
            None,
            None,
            None,
            1,
            None,
            path,
            None,
            False,
            False,
            (),
            {},
            virtual=virtual,
        )

    concrete = model("smollm2-135m-instruct", "HuggingFaceTB", virtual=False)
    virtual = model("huggingfacetb/smollm2-135m-instruct", "huggingfacetb", virtual=True)
    assert match_models([concrete, virtual], "huggingfacetb/smollm2-135m-instruct") == [virtual]
    assert match_models([concrete, virtual], "smollm2-135m-instruct") == [concrete]
    assert match_models([concrete], "HuggingFaceTB/smollm2-135m-instruct") == [concrete]
