"""`lms chat` on the real server and SmolLM2: in pipe mode (`-p`, piped stdin, `-s`, `--stats`, `--ttl`,
a bad model name) and under a real terminal (tmux: type, watch the answer stream, Ctrl+C, /stats, /exit).

Answers are shaped by `--request-json` (`max_tokens`, and NEVER_ENDS's `logit_bias` so that the model
writes until the limit), never by the model's words."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.model_log import INPUT, ModelLog
from tests.support.server import CHAT_MODEL, LMS, NEVER_ENDS, Server

pytestmark = pytest.mark.e2e

SHORT = json.dumps({"max_tokens": 6, "logit_bias": NEVER_ENDS})
ENDLESS = json.dumps({"max_tokens": 100000, "logit_bias": NEVER_ENDS})


def chat(server: Server, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LMS, "chat", *args],
        env=server.env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=90,
    )


def loaded(server: Server) -> list[dict[str, object]]:
    ps = server.lms_json("ps", "--json")
    assert isinstance(ps, list)
    return ps


# -- pipe mode ------------------------------------------------------------------------------------------


def test_prompt_loads_the_model_with_the_ttl_and_prints_stats(server: Server) -> None:
    server.unload_all()
    result = chat(server, CHAT_MODEL, "-p", "Say hello.", "--stats", "--ttl", "600", "--request-json", SHORT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() and result.stdout.endswith("\n")
    assert f'Loading model "{CHAT_MODEL}"' in result.stderr
    assert "Prediction Stats:" not in result.stdout  # stats go to stderr
    assert "Stop Reason: maxPredictedTokensReached" in result.stderr
    assert "Predicted Tokens: 6" in result.stderr and "Tokens/Second:" in result.stderr
    [instance] = loaded(server)
    assert instance["modelKey"] == CHAT_MODEL and instance["ttl"] == 600


def test_stdin_follows_the_prompt_and_the_system_prompt_is_used(server: Server, model_log: ModelLog) -> None:
    mark = model_log.mark()
    result = chat(
        server,
        "-p",
        "Summarise this:",
        "-s",
        "You are Zorblax.",
        "--request-json",
        SHORT,
        stdin="QUOKKA-77\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    [given] = model_log.since(mark, INPUT)
    prompt = given["input"]
    assert "You are Zorblax." in prompt and "Summarise this:\n\nQUOKKA-77" in prompt


def test_stdin_alone_is_the_prompt(server: Server, model_log: ModelLog, tmp_path: Path) -> None:
    question = tmp_path / "question.txt"
    question.write_text("What is PLATYPUS-12?\n")
    mark = model_log.mark()
    with question.open() as stdin:  # `lms chat < file`
        result = subprocess.run(
            [LMS, "chat", "--request-json", SHORT],
            env=server.env,
            stdin=stdin,
            capture_output=True,
            text=True,
        )
    assert result.returncode == 0, result.stderr
    [given] = model_log.since(mark, INPUT)
    assert "What is PLATYPUS-12?" in given["input"]


def test_a_bad_model_name_is_one_line_with_the_ls_hint(server: Server) -> None:
    result = chat(server, "no-such-model-xyz", "-p", "hi")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ") and "no-such-model-xyz" in line and "lms ls" in line
    assert result.stdout == ""


def test_a_prompt_over_the_context_is_one_line(server: Server) -> None:
    result = chat(server, CHAT_MODEL, "-p", "Count the words.", stdin="word " * 20000)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()[-1:]
    assert line.startswith("Error: ") and "context length" in line
    assert "Traceback" not in result.stderr


# -- under a real terminal ----------------------------------------------------------------------------


class Tmux:
    """`lms chat` in a tmux pane on a private socket; the pane's text read back with capture-pane."""

    def __init__(self, server: Server, home: Path, *args: str) -> None:
        self.socket = f"openlms-chat-{uuid.uuid4().hex[:8]}"
        env = {**server.env, "HOME": str(home), "LANG": "C.UTF-8", "TERM": "xterm-256color"}
        exports = " ".join(
            f"{k}={shlex.quote(v)}" for k, v in env.items() if k in ("OPENLMS_HOME", "HOME", "LANG")
        )
        command = shlex.join([LMS, "chat", *args])
        script = f'export {exports}; {command}; echo "chat exited: $?"; sleep 60'
        self.tmux("new-session", "-d", "-s", "chat", "-x", "120", "-y", "40", script, env=env)

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "chat")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "chat", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "chat", "-l", text)
        self.keys("Enter")

    def wait(self, what: str, check: Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"waited for {what}; the terminal shows:\n{text}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def terminal(server: Server, tmp_path: Path) -> Iterator[Callable[..., Tmux]]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    opened: list[Tmux] = []

    def open_chat(*args: str) -> Tmux:
        opened.append(Tmux(server, tmp_path, *args))
        return opened[-1]

    yield open_chat
    for pane in opened:
        pane.close()


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def at_prompt(text: str) -> bool:
    return last_line(text) in ("›", ">")


def after(text: str, marker: str) -> str:
    """What the terminal shows after the last `marker` ("" until it shows the marker)."""
    head, found, tail = text.rpartition(marker)
    return tail if found else ""


def test_terminal_chat_streams_an_answer_then_stats_and_exit(
    server: Server, terminal: Callable[..., Tmux]
) -> None:
    pane = terminal(CHAT_MODEL, "--request-json", json.dumps({"max_tokens": 12, "logit_bias": NEVER_ENDS}))
    pane.wait("the banner and the prompt", lambda s: f"Chatting with {CHAT_MODEL}" in s and at_prompt(s))
    pane.type("Tell me about the sea.")
    screen = pane.wait("the answer", lambda s: at_prompt(after(s, "Tell me about the sea.")))
    answer = after(screen, "Tell me about the sea.").strip().splitlines()[:-1]
    assert any(line.strip() for line in answer), screen
    pane.type("/stats")
    screen = pane.wait("the stats", lambda s: "Total Tokens" in after(s, "/stats") and at_prompt(s))
    assert "Stop Reason: maxPredictedTokensReached" in screen and "Predicted Tokens: 12" in screen
    pane.keys("Up")  # readline's history: the last line back, run again
    pane.keys("Enter")
    pane.wait("/stats again", lambda s: s.count("Total Tokens") == 2 and at_prompt(s))
    pane.type("/exit")
    pane.wait("the chat to end", lambda s: "chat exited: 0" in s)
    history = (server.home / "openlms" / "chat-history").read_text()
    assert "Tell me about the sea." in history and "/stats" in history


def active_requests(server: Server) -> int:
    return sum(int(str(i["active"])) for i in loaded(server))


def test_terminal_ctrl_c_stops_the_answer_and_the_server_then_a_second_one_leaves(
    server: Server, terminal: Callable[..., Tmux]
) -> None:
    pane = terminal(CHAT_MODEL, "--request-json", ENDLESS)
    pane.wait("the prompt", at_prompt)
    pane.type("Write a very long story.")
    # it never ends by itself (only Ctrl+C stops it): wait until some of it is on the screen
    pane.wait(
        "the answer to stream", lambda s: len("".join(after(s, "Write a very long story.").split())) >= 30
    )
    assert active_requests(server) == 1
    pane.keys("C-c")
    screen = pane.wait("the prompt after (stopped)", lambda s: "(stopped)" in s and at_prompt(s))
    assert "chat exited" not in screen
    deadline = time.monotonic() + 15  # the server sees the connection close and stops generating
    while active_requests(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert active_requests(server) == 0
    pane.type("/stats")
    screen = pane.wait("the stats", lambda s: "Stop Reason" in after(s, "/stats") and at_prompt(s))
    assert "Stop Reason: userStopped" in screen
    pane.keys("C-c")
    screen = pane.wait("the hint", lambda s: "Press Ctrl+C again" in s)
    assert "chat exited" not in screen
    pane.keys("C-c")
    pane.wait("the chat to end", lambda s: "chat exited: 0" in s)
