"""The HTTP client: SSE parsing, load streams, error messages, connection failures."""

from __future__ import annotations

import httpx
import pytest
from cli_fakes import FakeServer, api_error

from openlms.cli.client import ApiClient, iter_sse
from openlms.cli.errors import CliError


def client_for(handler: httpx.MockTransport | FakeServer, hint: str | None = None) -> ApiClient:
    transport = handler.transport if isinstance(handler, FakeServer) else handler
    return ApiClient("http://127.0.0.1:1234", transport=transport, hint=hint)


def test_iter_sse() -> None:
    lines = [
        "event: progress",
        'data: {"progress": 0.5}',
        "",
        ": comment",
        "data: a",
        "data: b",
        "",
        "data: c",
    ]
    assert list(iter_sse(lines)) == [("progress", '{"progress": 0.5}'), ("message", "a\nb"), ("message", "c")]


def test_load_stream_reports_progress() -> None:
    server = FakeServer()
    seen: list[float] = []
    with client_for(server) as client:
        result = client.load(
            {"model": "smollm2-135m-instruct", "identifier": "mine"}, on_progress=seen.append
        )
    assert seen == [0.0, 0.5, 1.0]
    assert (result.identifier, result.load_time_seconds, result.type) == ("mine", 0.31, "llm")
    assert server.requests[-1][2] == {"model": "smollm2-135m-instruct", "identifier": "mine", "stream": True}


def test_load_accepts_a_plain_json_answer() -> None:
    server = FakeServer()
    server.stream_load = False
    with client_for(server) as client:
        assert client.load({"model": "smollm2-135m-instruct"}).identifier == "smollm2-135m-instruct"


def sse(text: str) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
    )


def test_load_error_event() -> None:
    stream = (
        'event: progress\ndata: {"progress": 0.1}\n\n'
        'event: error\ndata: {"error": {"message": "out of memory"}}\n\n'
    )
    with client_for(sse(stream)) as client, pytest.raises(CliError, match="^out of memory$"):
        client.load({"model": "x"})


def test_load_stream_that_ends_early() -> None:
    stream = 'event: progress\ndata: {"progress": 0.1}\n\n'
    with client_for(sse(stream)) as client, pytest.raises(CliError, match="closed the load stream"):
        client.load({"model": "x"})


def test_http_errors_carry_the_server_message() -> None:
    with client_for(FakeServer()) as client, pytest.raises(CliError) as caught:
        client.load({"model": "nope"})
    assert caught.value.message == "No model matching 'nope' was found."


def test_non_json_errors_are_summarised() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="Bad gateway\n<html>"))
    with client_for(transport) as client, pytest.raises(CliError) as caught:
        client.list_models()
    assert caught.value.message == "The server answered HTTP 502: Bad gateway <html>"


def test_unexpected_shapes() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"data": []}))
    with client_for(transport) as client, pytest.raises(CliError, match="no 'models' list"):
        client.list_models()


def test_connection_refused_is_one_line() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with client_for(httpx.MockTransport(refuse), hint="Start it with `lms server start`.") as client:
        with pytest.raises(CliError) as caught:
            client.list_models()
        assert not client.is_alive()
    assert caught.value.message == (
        "cannot reach the openlms server at http://127.0.0.1:1234 (connection refused). "
        "Start it with `lms server start`."
    )


def test_unload_and_errors() -> None:
    server = FakeServer()
    with client_for(server) as client:
        client.load({"model": "smollm2-135m-instruct"})
        assert client.unload("smollm2-135m-instruct") == "smollm2-135m-instruct"
        with pytest.raises(CliError, match="No loaded model instance 'smollm2-135m-instruct'"):
            client.unload("smollm2-135m-instruct")
    assert api_error(409, "x").status_code == 409
