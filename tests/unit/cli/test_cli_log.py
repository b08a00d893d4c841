"""`lms log stream`: LM Studio's output format, filters, JSON, and how it finds (never starts) a server."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta, timezone
from typing import Any

import click.testing
import httpx
import pytest
from cli_fakes import write_server_file

from openlms.cli.app import CliApp
from openlms.cli.commands.log import (
    HEADER,
    format_model_event,
    format_server_event,
    format_timestamp,
    parse_filter,
)
from openlms.cli.main import cli

T = 1731490515000  # 11/13/2024, 9:35:15 AM UTC
INPUT: dict[str, Any] = {
    "timestamp": T,
    "type": "llm.prediction.input",
    "modelIdentifier": "gemma-2-2b-it",
    "modelPath": "lmstudio-community/gemma-2-2b-it-GGUF/gemma-2-2b-it-Q4_K_M.gguf",
    "input": "<start_of_turn>user\nGet me delivery date for order 123<end_of_turn>\n<start_of_turn>model\n",
}
STATS = {
    "tokensPerSecond": 55.1234,
    "timeToFirstTokenSec": 0.05,
    "promptTokensCount": 20,
    "predictedTokensCount": 9,
    "totalTokensCount": 29,
    "stopReason": "eosFound",
}
OUTPUT: dict[str, Any] = {
    "timestamp": T + 1000,
    "type": "llm.prediction.output",
    "modelIdentifier": "gemma-2-2b-it",
    "modelPath": INPUT["modelPath"],
    "output": "Hello! 👋 How can I assist you today?",
    "stats": STATS,
}
SERVER = {
    "timestamp": T,
    "level": "INFO",
    "logger": "uvicorn.access",
    "message": '127.0.0.1:5000 - "GET /v1/models HTTP/1.1" 200',
}
LOCAL_TIME = re.compile(r"^timestamp: \d{1,2}/\d{1,2}/\d{4}, \d{1,2}:\d{2}:\d{2} [AP]M$", re.M)


def sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    blocks = [": ping\n\n"] + [
        (f"event: {name}\n" if name != "message" else "") + f"data: {json.dumps(data)}\n\n"
        for name, data in events
    ]
    return "".join(blocks).encode()


class Interrupted(httpx.SyncByteStream):
    """A body that ends with `error`: by default Ctrl+C, as when the user stops `lms log stream`."""

    def __init__(self, body: bytes, error: BaseException | None = None) -> None:
        self.body, self.error = body, error or KeyboardInterrupt()

    def __iter__(self) -> Iterator[bytes]:
        yield self.body
        raise self.error


class LogServer:
    def __init__(self, body: bytes = b"", *, status: int = 200, interrupt: bool = True) -> None:
        self.body, self.status, self.interrupt = body, status, interrupt
        self.urls: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        if self.status != 200:
            error = {
                "message": "Streaming logs is allowed from the local machine only.",
                "type": "permission_error",
            }
            return httpx.Response(self.status, json={"error": error})
        headers = {"content-type": "text/event-stream"}
        if self.interrupt:
            return httpx.Response(200, headers=headers, stream=Interrupted(self.body))
        return httpx.Response(200, headers=headers, content=self.body)


Run = Callable[..., click.testing.Result]


@pytest.fixture
def run() -> Run:
    def invoke(
        args: list[str], server: LogServer | None = None, transport: Any = None
    ) -> click.testing.Result:
        transport = transport or httpx.MockTransport((server or LogServer()).handle)
        return click.testing.CliRunner().invoke(
            cli, ["log", "stream", *args], obj=CliApp(transport=transport)
        )

    return invoke


# -- formatting -------------------------------------------------------------------------------------


def test_timestamps_read_like_lm_studios() -> None:
    assert format_timestamp(T, UTC) == "11/13/2024, 9:35:15 AM"
    assert format_timestamp(T, timezone(timedelta(hours=6))) == "11/13/2024, 3:35:15 PM"
    assert format_timestamp(T - 9 * 3600_000, UTC) == "11/13/2024, 12:35:15 AM"
    assert format_timestamp(T + 3 * 3600_000, UTC) == "11/13/2024, 12:35:15 PM"


def test_model_input_and_output_blocks() -> None:
    assert format_model_event(INPUT, tz=UTC) == "\n".join(
        [
            "",
            "timestamp: 11/13/2024, 9:35:15 AM",
            "type: llm.prediction.input",
            "modelIdentifier: gemma-2-2b-it",
            "modelPath: lmstudio-community/gemma-2-2b-it-GGUF/gemma-2-2b-it-Q4_K_M.gguf",
            "input:",
            INPUT["input"],
        ]
    )
    plain = format_model_event(OUTPUT, tz=UTC)
    assert plain == "\n".join(
        [
            "",
            "timestamp: 11/13/2024, 9:35:16 AM",
            "type: llm.prediction.output",
            "modelIdentifier: gemma-2-2b-it",
            "output:",
            "Hello! 👋 How can I assist you today?",
        ]
    )
    assert format_model_event(OUTPUT, stats=True, tz=UTC) == plain + "\n" + "\n".join(
        [
            "stats:",
            "  tokens/s: 55.12",
            "  time to first token: 0.05 s",
            "  prompt tokens: 20",
            "  predicted tokens: 9",
            "  stop reason: eosFound",
        ]
    )


def test_server_lines() -> None:
    assert (
        format_server_event(SERVER, UTC)
        == '[2024-11-13 09:35:15] [INFO] 127.0.0.1:5000 - "GET /v1/models HTTP/1.1" 200'
    )


def test_filters() -> None:
    assert parse_filter("input") == {"llm.prediction.input"}
    assert parse_filter(" Output , input ") == {"llm.prediction.input", "llm.prediction.output"}
    for bad in ("", "inputs", "input,stats", ","):
        with pytest.raises(ValueError):
            parse_filter(bad)


# -- the command ------------------------------------------------------------------------------------


@pytest.fixture
def running(home: Any) -> None:
    write_server_file(home, port=4321)


@pytest.mark.usefixtures("running")
def test_default_shows_inputs_only_and_ctrl_c_exits_quietly(run: Run) -> None:
    server = LogServer(sse(("ready", {"source": "model"}), ("message", INPUT), ("message", OUTPUT)))
    result = run([], server)
    assert (result.exit_code, result.stderr) == (0, "")
    assert server.urls == ["http://127.0.0.1:4321/api/v1/logs/stream?source=model"]
    lines = result.stdout.splitlines()
    assert lines[:2] == [HEADER, ""] and LOCAL_TIME.match(lines[2])
    assert lines[3:] == [
        "type: llm.prediction.input",
        "modelIdentifier: gemma-2-2b-it",
        f"modelPath: {INPUT['modelPath']}",
        "input:",
        *INPUT["input"].split("\n"),  # the exact text: its final newline shows as an empty line
    ]


@pytest.mark.usefixtures("running")
def test_input_and_output_with_stats(run: Run) -> None:
    body = sse(("ready", {"source": "model"}), ("message", INPUT), ("message", OUTPUT))
    result = run(["--source", "model", "--filter", "input,output", "--stats"], LogServer(body))
    assert result.exit_code == 0
    assert len(LOCAL_TIME.findall(result.stdout)) == 2
    assert result.stdout.endswith(
        "output:\nHello! 👋 How can I assist you today?\nstats:\n  tokens/s: 55.12\n"
        "  time to first token: 0.05 s\n  prompt tokens: 20\n  predicted tokens: 9\n"
        "  stop reason: eosFound\n"
    )


@pytest.mark.usefixtures("running")
def test_json_lines(run: Run) -> None:
    body = sse(("ready", {"source": "model"}), ("message", INPUT), ("message", OUTPUT))
    result = run(["--filter", "output", "--json"], LogServer(body))
    assert result.stderr == HEADER + "\n"  # stdout stays pure JSON lines
    [line] = result.stdout.splitlines()
    assert json.loads(line) == {k: v for k, v in OUTPUT.items() if k != "stats"}
    with_stats = run(["--filter", "output", "--json", "--stats"], LogServer(body))
    assert json.loads(with_stats.stdout)["stats"] == STATS


@pytest.mark.usefixtures("running")
def test_server_source(run: Run) -> None:
    server = LogServer(sse(("ready", {"source": "server"}), ("message", SERVER)))
    text = run(["--source", "server"], server)
    assert server.urls == ["http://127.0.0.1:4321/api/v1/logs/stream?source=server"]
    header, line = text.stdout.splitlines()
    assert header == HEADER
    assert re.fullmatch(
        r'\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[INFO\] 127\.0\.0\.1:5000 - "GET /v1/models HTTP/1\.1" 200',
        line,
    )
    as_json = run(["--source", "server", "--json"], LogServer(sse(("message", SERVER))))
    assert json.loads(as_json.stdout) == SERVER
    misuse = run(["--source", "server", "--filter", "input"])
    assert misuse.exit_code == 2 and "apply to --source model only" in misuse.stderr


@pytest.mark.usefixtures("running")
def test_drops_are_reported_on_stderr(run: Run) -> None:
    body = sse(
        ("ready", {"source": "model"}),
        ("dropped", {"dropped": 3}),
        ("message", INPUT),
        ("dropped", {"dropped": 5}),
    )
    result = run([], LogServer(body))
    assert result.stderr.splitlines() == [
        "Warning: 3 log event(s) dropped: this client is reading too slowly.",
        "Warning: 2 log event(s) dropped: this client is reading too slowly.",
    ]


@pytest.mark.usefixtures("running")
def test_the_end_of_the_stream_and_refusals_are_errors(run: Run) -> None:
    closed = run([], LogServer(sse(("ready", {"source": "model"})), interrupt=False))
    assert (
        closed.exit_code == 1
        and closed.stderr == "Error: The server closed the log stream (was it stopped?).\n"
    )
    refused = run([], LogServer(status=403))
    assert refused.exit_code == 1
    assert refused.stderr == "Error: Streaming logs is allowed from the local machine only.\n"
    assert HEADER not in refused.stdout


@pytest.mark.usefixtures("running")
def test_a_connection_lost_mid_stream(run: Run) -> None:
    def cut(error: Exception) -> httpx.MockTransport:
        body = Interrupted(sse(("ready", {"source": "model"})), error)
        return httpx.MockTransport(lambda request: httpx.Response(200, stream=body))

    stopped = run([], transport=cut(httpx.RemoteProtocolError("peer closed connection")))
    assert stopped.exit_code == 1 and stopped.stdout == HEADER + "\n"
    assert stopped.stderr == "Error: The server closed the log stream (was it stopped?).\n"
    hung = run([], transport=cut(httpx.ReadTimeout("timed out")))
    assert hung.stderr == "Error: The log stream broke off (timed out).\n"


def test_no_server_no_start(run: Run) -> None:
    server = LogServer()
    result = run([], server)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "Error: The openlms server is not running. Start it with `lms server start`.\n"
    assert server.urls == []


def test_host_and_port(run: Run) -> None:
    server = LogServer(sse())
    run(["--port", "5555"], server)
    run(["--host", "box.local", "--port", "5556"], server)
    run(["--host", "http://[::1]:7000"], server)
    assert [url.split("/api/")[0] for url in server.urls] == [
        "http://127.0.0.1:5555",
        "http://box.local:5556",
        "http://[::1]:7000",
    ]

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    nobody = run(["--port", "5555"], transport=httpx.MockTransport(refuse))
    assert nobody.exit_code == 1
    assert (
        nobody.stderr
        == "Error: No openlms server is running on port 5555. Start it with `lms server start`.\n"
    )
    remote = run(["--host", "box.local"], transport=httpx.MockTransport(refuse))
    assert remote.stderr.startswith(
        "Error: cannot reach the openlms server at http://box.local:1234 (connection refused)."
    )


def test_listed_in_help() -> None:
    runner = click.testing.CliRunner()
    assert "- log - Log operations." in runner.invoke(cli, ["--help"]).stdout
    help_text = runner.invoke(cli, ["log", "stream", "--help"]).stdout
    for flag in ("--source", "--filter", "--json", "--stats", "--host", "--port"):
        assert flag in help_text
