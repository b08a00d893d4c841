"""`lms chat` against the in-memory server: one-shot (`-p`, piped stdin), the interactive loop's slash
commands, Ctrl+C, model choice and errors; the terminal view's markdown blocks."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from cli_fakes import NOMIC, QWEN, SMOLLM, FakeServer, Invoke, api_error, instance

from openlms.cli.app import CliApp
from openlms.cli.chat.interrupts import Interrupts
from openlms.cli.chat.loop import AGAIN_TO_LEAVE, ChatLoop
from openlms.cli.chat.session import DEFAULT_SYSTEM_PROMPT, ChatSession, Stats
from openlms.cli.chat.slash import help_text, message_text, parse_slash
from openlms.cli.chat.view import PlainView, RichView, stable_cut
from openlms.cli.client import ApiClient
from openlms.cli.commands.chat import _first_message

pytestmark = pytest.mark.usefixtures("running")

FINAL = {
    "stats": {"tokens_per_second": 42.5, "time_to_first_token": 0.125, "stop_reason": "eosFound"},
    "usage": {"prompt_tokens": 30, "completion_tokens": 3, "total_tokens": 33},
}


def chunk(content: str | None = None, **delta: Any) -> dict[str, Any]:
    if content is not None:
        delta["content"] = content
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def sse(chunks: Sequence[dict[str, Any]]) -> bytes:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"


class Interrupted(httpx.SyncByteStream):
    """A stream that sends its first bytes, then is 'interrupted' (Ctrl+C) while waiting for more."""

    def __init__(self, first: bytes) -> None:
        self.first = first
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise KeyboardInterrupt

    def close(self) -> None:
        self.closed = True


class ChatServer(FakeServer):
    """The fake server plus `/api/v0/chat/completions`, answering from `script` (one entry per request):
    a list of chunks, an httpx.Response, or a byte stream."""

    def __init__(self) -> None:
        super().__init__((SMOLLM, QWEN, NOMIC))
        self.script: list[Any] = []
        self.chats: list[dict[str, Any]] = []
        self.down = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if request.url.path != "/api/v0/chat/completions":
            return super().handle(request)
        self.chats.append(json.loads(request.content))
        answer = (
            self.script.pop(0) if self.script else [chunk("Hello"), chunk(" there."), {**chunk(), **FINAL}]
        )
        if isinstance(answer, httpx.Response):
            return answer
        stream = answer if isinstance(answer, httpx.SyncByteStream) else httpx.ByteStream(sse(answer))
        return httpx.Response(200, stream=stream, headers={"content-type": "text/event-stream"})


@pytest.fixture
def server() -> ChatServer:
    chat = ChatServer()
    chat.models[0]["loaded_instances"].append(instance("smollm2-135m-instruct"))
    return chat


# -- one answer: -p, stdin, -s, --stats ----------------------------------------------------------------


def test_prompt_prints_the_streamed_answer(invoke: Invoke, server: ChatServer) -> None:
    result = invoke(["chat", "-p", "Say hello"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "Hello there.\n"
    [body] = server.chats
    assert body["model"] == "smollm2-135m-instruct" and body["stream"] is True
    assert body["messages"] == [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": "Say hello"},
    ]
    assert "Prediction Stats" not in result.stderr


def test_piped_stdin_follows_the_prompt_after_a_blank_line(invoke: Invoke, server: ChatServer) -> None:
    assert invoke(["chat", "-p", "Summarise", "-s", "Be brief."], input="a long text\n").exit_code == 0
    assert invoke(["chat"], input="  just stdin \n").exit_code == 0
    first, second = (body["messages"] for body in server.chats)
    assert first == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarise\n\na long text"},
    ]
    assert second[-1] == {"role": "user", "content": "just stdin"}


def test_an_empty_system_prompt_sends_none(invoke: Invoke, server: ChatServer) -> None:
    assert invoke(["chat", "-p", "hi", "-s", ""]).exit_code == 0
    assert server.chats[0]["messages"] == [{"role": "user", "content": "hi"}]


def test_empty_stdin_is_an_error(invoke: Invoke, server: ChatServer) -> None:
    result = invoke(["chat"], input="")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Nothing to answer: stdin was empty.")
    assert server.chats == []


def test_stats_after_the_answer(invoke: Invoke) -> None:
    result = invoke(["chat", "-p", "hi", "--stats"])
    assert result.exit_code == 0
    assert result.stdout == "Hello there.\n"  # the stats go to stderr: a pipe gets the answer only
    assert result.stderr.splitlines() == [
        "Prediction Stats:",
        "  Stop Reason: eosFound",
        "  Tokens/Second: 42.50",
        "  Time to First Token: 0.125s",
        "  Prompt Tokens: 30",
        "  Predicted Tokens: 3",
        "  Total Tokens: 33",
    ]


def test_reasoning_stays_out_of_a_pipe(invoke: Invoke, server: ChatServer) -> None:
    server.script.append([chunk(reasoning_content="hmm, "), chunk(reasoning="let me see"), chunk("42")])
    assert invoke(["chat", "-p", "?"]).stdout == "42\n"


def test_request_json_adds_fields_and_is_checked(invoke: Invoke, server: ChatServer) -> None:
    assert invoke(["chat", "-p", "hi", "--request-json", '{"max_tokens": 5}']).exit_code == 0
    assert server.chats[0]["max_tokens"] == 5
    bad = invoke(["chat", "-p", "hi", "--request-json", "[1]"])
    assert bad.exit_code == 2 and "must be a JSON object" in bad.stderr


# -- errors ------------------------------------------------------------------------------------------


def test_an_http_error_is_one_line(invoke: Invoke, server: ChatServer) -> None:
    server.script.append(api_error(400, "The prompt (5000 tokens) does not fit the context (4096)."))
    result = invoke(["chat", "-p", "hi"])
    assert result.exit_code == 1
    assert result.stderr == "Error: The prompt (5000 tokens) does not fit the context (4096).\n"


def test_an_error_mid_stream_is_one_line(invoke: Invoke, server: ChatServer) -> None:
    server.script.append([chunk("Hel"), {"error": {"message": "model crashed", "type": "server_error"}}])
    result = invoke(["chat", "-p", "hi"])
    assert result.exit_code == 1
    assert result.stdout == "Hel\n"
    assert result.stderr == "Error: The server stopped the answer: model crashed\n"


def test_an_unknown_model_gives_the_servers_message_and_the_ls_hint(
    invoke: Invoke, server: ChatServer
) -> None:
    result = invoke(["chat", "nosuchmodel", "-p", "hi"])
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: No model matching 'nosuchmodel' was found. Run `lms ls` to see your models.\n"
    )
    assert server.chats == []


def test_an_embedding_model_is_refused(invoke: Invoke, server: ChatServer) -> None:
    result = invoke(["chat", "nomic", "-p", "hi"])
    assert result.exit_code == 1 and "is not a language model (embedding)" in result.stderr
    assert server.chats == []


def test_server_down_is_one_line(invoke: Invoke, server: ChatServer) -> None:
    server.down = True
    result = invoke(["chat", "-p", "hi", "--host", "127.0.0.1:9"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot reach the openlms server at http://127.0.0.1:9")
    assert "Traceback" not in result.output


# -- which model ---------------------------------------------------------------------------------------


def test_a_model_not_loaded_is_loaded_first_with_the_ttl(invoke: Invoke, server: ChatServer) -> None:
    result = invoke(["chat", "qwen2.5-0.5b-instruct", "-p", "hi", "--ttl", "120"])
    assert result.exit_code == 0, result.output
    loads = [body for method, path, body in server.requests if path == "/api/v1/models/load"]
    assert loads == [{"model": "qwen2.5-0.5b-instruct", "ttl": 120, "stream": True}]
    assert 'Loading model "qwen2.5-0.5b-instruct"...' in result.stderr
    assert server.chats[0]["model"] == "qwen2.5-0.5b-instruct"


def test_a_loaded_model_is_used_as_it_is(invoke: Invoke, server: ChatServer) -> None:
    assert invoke(["chat", "smollm2", "-p", "hi", "--ttl", "120"]).exit_code == 0
    assert not [p for _, p, _ in server.requests if p == "/api/v1/models/load"]
    assert server.chats[0]["model"] == "smollm2-135m-instruct"


def test_no_model_and_none_loaded(invoke: Invoke, server: ChatServer) -> None:
    server.models[0]["loaded_instances"].clear()
    result = invoke(["chat", "-p", "hi"])
    assert result.exit_code == 1 and result.stderr.startswith("Error: No model is loaded.")
    picked = invoke(["chat", "-p", "hi"], tty=True, input="2\n")  # a picker of the LLMs on a terminal
    assert picked.exit_code == 0, picked.output
    assert "Select a model to chat with:" in picked.stdout
    assert server.chats[0]["model"] == "qwen2.5-0.5b-instruct"


def test_several_loaded_models(invoke: Invoke, server: ChatServer) -> None:
    server.models[1]["loaded_instances"].append(instance("qwen-a"))
    result = invoke(["chat", "-p", "hi"])
    assert result.exit_code == 1
    assert "Several models are loaded (smollm2-135m-instruct, qwen-a)" in result.stderr
    assert invoke(["chat", "-p", "hi"], tty=True, input="2\n").exit_code == 0
    assert server.chats[0]["model"] == "qwen-a"


# -- the interactive chat --------------------------------------------------------------------------------


def test_interactive_session_with_slash_commands(invoke: Invoke, server: ChatServer) -> None:
    lines = [
        "/stats",
        "first question",
        "/stats",
        "second question",
        "/system-prompt",
        "/system-prompt Answer in French.",
        "/clear",
        "third question",
        "/model",
        "/model qwen2.5-0.5b-instruct",
        "fourth",
        "//slash text",
        "/help",
        "/frobnicate",
        "",
        "/exit",
        "never sent",
    ]
    result = invoke(["chat"], tty=True, input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert "Chatting with smollm2-135m-instruct." in result.stderr
    assert "No answer yet: nothing to show." in result.stdout
    assert result.stderr.count("Stop Reason: eosFound") == 1  # /stats after the first answer
    assert f"System prompt: {DEFAULT_SYSTEM_PROMPT}" in result.stdout
    assert "Now chatting with qwen2.5-0.5b-instruct." in result.stdout
    assert "  smollm2-135m-instruct  (loaded)\n  qwen2.5-0.5b-instruct\n" in result.stdout  # /model alone
    assert NOMIC["key"] not in result.stdout  # embedding models are not offered
    assert "/system-prompt [text]" in result.stdout  # the help
    assert "Error: Unknown command /frobnicate. Type /help to see the commands." in result.stderr
    history = [[m["content"] for m in body["messages"]] for body in server.chats]
    assert history == [
        [DEFAULT_SYSTEM_PROMPT, "first question"],
        [DEFAULT_SYSTEM_PROMPT, "first question", "Hello there.", "second question"],
        ["Answer in French.", "third question"],  # cleared, new system prompt
        ["Answer in French.", "third question", "Hello there.", "fourth"],
        ["Answer in French.", "third question", "Hello there.", "fourth", "Hello there.", "/slash text"],
    ]
    assert [body["model"] for body in server.chats][-2:] == ["qwen2.5-0.5b-instruct"] * 2


def test_an_error_in_the_chat_forgets_the_question_and_goes_on(invoke: Invoke, server: ChatServer) -> None:
    server.script.append(api_error(400, "too long"))
    result = invoke(["chat"], tty=True, input="big question\nsmall one\n")
    assert result.exit_code == 0  # Ctrl+D (the end of the input) leaves
    assert "Error: too long" in result.stderr
    assert [m["content"] for m in server.chats[1]["messages"]][1:] == ["small one"]


def loop_with(server: ChatServer, reads: Sequence[str | type[BaseException]]) -> tuple[ChatLoop, list[str]]:
    """A ChatLoop whose prompt returns `reads` in turn (an exception class is raised, as a key would)."""
    pending = list(reads)
    prompts: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        item = pending.pop(0)
        if isinstance(item, str):
            return item
        raise item

    out = io.StringIO()
    client = ApiClient("http://127.0.0.1:1234", transport=server.transport)
    loop = ChatLoop(
        CliApp(), client, ChatSession("smollm2-135m-instruct"), lambda: PlainView(out, out), read=read
    )
    return loop, prompts


def test_ctrl_c_stops_the_answer_keeps_what_came_and_a_second_one_leaves(
    server: ChatServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = Interrupted(sse([chunk("Once upon")])[: -len(b"data: [DONE]\n\n")])
    server.script.append(stream)
    loop, prompts = loop_with(server, ["tell a long story", KeyboardInterrupt, "never read"])
    loop.run()
    assert stream.closed  # the request was given up: the server stops generating
    assert len(prompts) == 2  # the Ctrl+C right after the stopped answer left the chat
    assert loop.session.messages[-1] == {"role": "assistant", "content": "Once upon"}
    assert loop.session.last_stats is not None and loop.session.last_stats.stop_reason == "userStopped"


def test_one_ctrl_c_at_the_prompt_warns_two_leave(
    server: ChatServer, capsys: pytest.CaptureFixture[str]
) -> None:
    loop, prompts = loop_with(server, [KeyboardInterrupt, "hi", KeyboardInterrupt, KeyboardInterrupt, "x"])
    loop.run()
    assert len(prompts) == 4
    assert capsys.readouterr().err.count(AGAIN_TO_LEAVE) == 2
    assert len(server.chats) == 1


def test_ctrl_d_leaves(server: ChatServer) -> None:
    loop, prompts = loop_with(server, [EOFError, "x"])
    loop.run()
    assert prompts == ["> "] or prompts == ["› "]


# -- pieces ----------------------------------------------------------------------------------------------


def test_first_message_rules() -> None:
    assert _first_message("p", None) is not None and _first_message("p", None) == "p"
    assert _first_message("p", " in \n") == "p\n\nin"
    assert _first_message(None, "in") == "in"
    assert _first_message(None, " \n") is None
    assert _first_message("p", "") == "p"


def test_parse_slash() -> None:
    assert parse_slash("hello") is None
    assert parse_slash("//not a command") is None and message_text("//not a command") == "/not a command"
    slash = parse_slash("  /System-Prompt  Be   brief ")
    assert slash is not None and slash.known and (slash.name, slash.arg) == ("system-prompt", "Be   brief")
    quit_ = parse_slash("/quit")
    assert quit_ is not None and quit_.name == "exit"
    unknown = parse_slash("/nope x")
    assert unknown is not None and not unknown.known
    assert all(
        f"/{name}" in help_text() for name in ("help", "clear", "system-prompt", "model", "stats", "exit")
    )


def test_stats_from_a_chunk_are_lenient() -> None:
    stats = Stats.from_chunk(
        {"stats": {"stop_reason": "maxPredictedTokensReached", "tokens_per_second": "x"}}
    )
    assert stats.lines() == ["Prediction Stats:", "  Stop Reason: maxPredictedTokensReached"]
    assert Stats.from_chunk({}).stop_reason == "unknown"


def test_stable_cut_never_splits_a_code_fence() -> None:
    assert stable_cut("no blank line yet") == 0
    text = "para one\n\npara two\n\nstill"
    assert text[stable_cut(text) :] == "still"
    fenced = "intro\n\n```py\nx = 1\n\ny = 2"
    assert fenced[: stable_cut(fenced)] == "intro\n\n"  # the open fence's blank line is not a cut
    closed = fenced + "\n```\n\nafter"
    assert closed[stable_cut(closed) :] == "after"


def test_rich_view_prints_each_block_once_as_markdown() -> None:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=60, color_system=None)
    with RichView(console) as view:
        view.reasoning("Let me think")
        for piece in ["# Fruit\n\n", "Some **bold", "** text.\n\n", "```\ncode\n\nmore\n```", "\n\nEnd."]:
            view.content(piece)
    text = buffer.getvalue()
    assert "Thought for" in text
    assert "**" not in text and "```" not in text  # rendered, not raw markdown
    assert text.count("Some bold text.") == 1 and text.count("Fruit") == 1  # finished blocks: once
    assert text.count("Thinking… Let me think") == 1  # collapsed once the answer starts
    final = text.rsplit("\x1b[2K", 1)[-1]  # after the live region's last erase: the printed blocks
    assert "End." in final


def test_interrupts_are_held_while_drawing() -> None:
    interrupts = Interrupts()
    with pytest.raises(KeyboardInterrupt), interrupts.shielded():
        interrupts._handler(2, None)  # a Ctrl+C arriving mid-draw
        drawn = True
    assert drawn
    with pytest.raises(KeyboardInterrupt):
        interrupts._handler(2, None)  # outside a draw: at once


def test_ctrl_c_during_a_model_switch_cancels_it_and_stays(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted_load(body: dict[str, Any]) -> httpx.Response:
        raise KeyboardInterrupt

    monkeypatch.setattr(server, "_load", interrupted_load)
    loop, prompts = loop_with(server, ["/model qwen2.5-0.5b-instruct", "/model", EOFError])
    loop.run()
    assert len(prompts) == 3
    assert "(cancelled)" in capsys.readouterr().err
    assert loop.session.model == "smollm2-135m-instruct"
