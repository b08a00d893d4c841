"""Every Python snippet of the SDK's docs (`1_python/**.md`, draft `_` pages included) runs against openlms
with the official `lmstudio` SDK, unchanged but for model keys (see tests/support/sdk_snippets.py).

Each snippet runs in its own `python -c` (top-level `await` as in `python -m asyncio`), cwd a temporary
directory, against one server on port 1234 (where project-setup.md points) that also listens on the
SDK's default port 41343 (`lms.llm()` with no host). Before a snippet runs, the models it expects are
loaded (`lms.llm()` with no key takes any loaded LLM, as in LM Studio). Model keys are replaced by the
defaults: chat `smollm2-135m-instruct` (qwen2.5-7b-instruct, llama-3.2-1b-instruct, qwen2-vl-2b-instruct),
base `gemma-3-270m` (completion.md's model), embedding `text-embedding-all-minilm-l6-v2`.

Fragments (e.g. `result = model.respond(chat)`) run after the blocks the docs show before them (`before`
in the data file); the few lines the docs never show (a page's `llm`, completion.md's `initial_text`,
imports) are added and listed per snippet in the data file. Snippets that print nothing get a line
printing their result (`extra_after`) so that the test has something to check.

Tool use: SmolLM2 never calls a tool on its own, so act.md's agent snippets run with openlms's per-model
setting `toolChoice: required` (PUT /api/v1/models/config). Every round is then a forced tool call and
`.act()` never ends, so act-0/act-1 are stopped once a tool's result is printed. The create_file ones
(act-2, tools-4) and tools-5 run with `toolChoice: none`: forced, SmolLM2 names the file '' round after
round; left to choose, how many rounds act() takes would be up to its sampled words.

What the model writes differs from one CPU to another, so answers are never checked for words: a
snippet whose case `shows` its answer must print exactly what the model wrote, as `lms log stream`
reports it (tests/support/model_log.py).

Not run (the test checks that the failure is the docs' own, in the client, before any server is asked):

| snippet | why |
|---|---|
| project-setup-2 | iterates an AsyncPredictionStream with a plain `for` (TypeError) |
| project-setup-5, -6 | `else:` indented by two spaces (IndentationError) |
| image-input-8 | AsyncClient's `files.prepare_image(...)` not awaited (a coroutine in the chat) |
| parameters-1 | passes a Chat to `complete()`, which takes a prompt string |
| structured-response-7 | iterates `prediction`, undefined (the stream is `prediction_stream`) |
| list-loaded-1 | `import lms` (the package is `lmstudio`) |
| get-load-config-2 | `async with lms.Client()` (the synchronous client) |
| tools-5 | runs after adding its missing imports and `llm = model` (NameErrors as written) |

Cannot be served by a small local model offline: image-input's vision model (qwen2-vl-2b-instruct; none
of the defaults has vision, a download needs the internet): image-input-6/-7 run with the chat model and
a real image and must fail with the server's clear error (LMStudioServerError), not a protocol error.
_download-models.md (a draft) searches and downloads from the hub (needs the internet) and is TypeScript
or a SyntaxError anyway. Not code: output shown as python blocks (list-downloaded-3, get-model-info-3), the
SDK's ModelSchema protocol (structured-response-0), TypeScript labelled Python (structured-response-8,
_download-models-0/1, _apply-prompt-template-0/1). The `_7_api-reference` pages hold no Python blocks
(only `lms_params` tables); a snippet added anywhere fails `test_every_snippet_is_classified`.

Slow ones (SmolLM2 answering "What is the meaning of life?" unbounded, a few hundred tokens, about 3 s
on 2 cores) are most of the chat-completion.md runs.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.model_log import ModelLog, printed
from tests.support.sdk_snippets import (
    CASES,
    DOCS_BUG,
    ERROR,
    NOT_CODE,
    RUN,
    TEXT,
    Case,
    Snippet,
    all_snippets,
    repl_source,
)
from tests.support.server import (
    CHAT_MODEL,
    SDK_PORT,
    Server,
    free_port,
    port_is_free,
    sdk_port_held,
    start_server,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT = 240  # seconds for one snippet (an unbounded answer may run to the end of the context)
ENDED = ("eosFound", "maxPredictedTokensReached", "stopStringFound", "contextLengthReached")
UNTIL_TIMEOUT = 120  # seconds for a tool loop to show its first result


def _collect() -> list[Snippet]:
    try:
        return all_snippets()
    except pytest.skip.Exception:
        return []


SNIPPETS = _collect()
BY_ID = {s.id: s for s in SNIPPETS}
RUNNABLE = [s.id for s in SNIPPETS if CASES.get(s.id, Case(NOT_CODE)).kind in (RUN, ERROR)]
DOCS_BUGS = [s.id for s in SNIPPETS if CASES.get(s.id, Case(NOT_CODE)).kind == DOCS_BUG]

ASYNC_RUNNER = """\
import ast, asyncio, inspect, sys
code = compile(sys.argv[1], "<snippet>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
namespace = {"__name__": "__main__"}
result = eval(code, namespace)
if inspect.iscoroutine(result):
    asyncio.run(result)
"""


# -- the server ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    """The `sdk_server` fixture's server, on 1234 when free (project-setup.md hard-codes localhost:1234)."""
    with sdk_port_held():
        port = 1234 if port_is_free(1234) else free_port()
        srv = start_server(tmp_path_factory.mktemp("sdkdocs"), models_dir, port, sdk_port=SDK_PORT)
        try:
            yield srv
        finally:
            srv.lms("server", "stop", check=False)


def _loaded(http: httpx.Client) -> list[tuple[str, str]]:
    """(instance id, model key) of every loaded instance."""
    models = http.get("/api/v1/models").raise_for_status().json()["models"]
    return [(i["id"], m["key"]) for m in models for i in m["loaded_instances"]]


def ensure_loaded(server: Server, keys: tuple[str, ...]) -> None:
    """Exactly these models loaded, one instance each, in this order (`lms.llm()` takes the first)."""
    with server.http() as http:
        if [key for _, key in _loaded(http)] == list(keys):
            return
        for instance, _ in _loaded(http):
            http.post("/api/v1/models/unload", json={"instance_id": instance}).raise_for_status()
        for key in keys:
            response = http.post("/api/v1/models/load", json={"model": key})
            assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def docs_log(docs_server: Server) -> Iterator[ModelLog]:
    """What the model got and wrote, as the server logs them."""
    with ModelLog(docs_server) as log:
        yield log


@contextlib.contextmanager
def tool_choice(server: Server, choice: str | None) -> Iterator[None]:
    """openlms's per-model `toolChoice` on the chat model while a snippet runs: "required", SmolLM2 calls
    a tool whenever a request offers tools; "none", it never does."""
    if choice is None:
        yield
        return
    with server.http() as http:
        config = {"prediction": {"toolChoice": choice}}
        response = http.put("/api/v1/models/config", params={"model": CHAT_MODEL}, json=config)
        assert response.status_code == 200, response.text
        try:
            yield
        finally:
            http.delete("/api/v1/models/config", params={"model": CHAT_MODEL})


# -- composing and running a snippet ---------------------------------------------------------------------


def compose(snippet: Snippet, case: Case, port: int) -> str:
    """The snippet as it runs: the blocks it follows, its own code, the model keys replaced."""
    body = repl_source(snippet.code) if case.repl else textwrap.dedent(snippet.code)
    body += case.extra_after
    if case.nest:
        body = textwrap.indent(body, "    ")
    parts = [case.extra_before, *(textwrap.dedent(BY_ID[b].code) for b in case.before), body]
    code = "\n".join(p for p in parts if p)
    if case.replace:
        assert any(old in code for old in case.replace), (
            f"{snippet.id}: none of {list(case.replace)} is in it"
        )
    for old, new in case.replace.items():
        code = code.replace(old, new)
    for old, new in case.bounds.items():
        assert old in code, f"{snippet.id}: {old!r} is not in it"
        code = code.replace(old, new)
    if port != 1234:
        code = code.replace('"localhost:1234"', f'"localhost:{port}"')
    return code


def command(code: str) -> list[str]:
    try:
        compiled = compile(code, "<snippet>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    except SyntaxError:
        return [sys.executable, "-c", code]  # Python itself reports the error
    if compiled.co_flags & inspect.CO_COROUTINE:
        return [sys.executable, "-c", ASYNC_RUNNER, code]
    return [sys.executable, "-c", code]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLMS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(code: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(code),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env=environment(),
    )


def run_until(code: str, cwd: Path, case: Case) -> tuple[bool, str, str]:
    """Run a snippet that never ends on its own until its output matches `until_output`, then stop it.
    Returns (seen, stdout, stderr)."""
    proc = subprocess.Popen(
        command(code),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=environment(),
    )
    out: list[str] = []
    err: list[str] = []
    readers = [
        threading.Thread(target=lambda: out.extend(iter(proc.stdout.readline, "")), daemon=True),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")), daemon=True),  # type: ignore[union-attr]
    ]
    for reader in readers:
        reader.start()
    assert proc.stdin is not None
    proc.stdin.write(case.stdin)
    proc.stdin.close()

    def seen() -> bool:
        return re.search(str(case.until_output), "".join(out)) is not None

    deadline = time.monotonic() + UNTIL_TIMEOUT
    while not seen() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    done = seen()
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    for reader in readers:
        reader.join(timeout=10)
    return done, "".join(out), "".join(err)


def missing_answer(kind: str, logged: list[dict[str, Any]], stdout: str) -> str | None:
    """Why `stdout` does not show the predictions the server logged (None when it does): their text
    (TEXT), or their JSON as Python prints the parsed dict (PARSED)."""
    answers = [e["output"] for e in logged if (e.get("stats") or {}).get("stopReason") in ENDED]
    if not answers:
        return "the server logged no finished prediction"
    for answer in answers:
        shown = printed(answer) if kind == TEXT else repr(json.loads(answer))
        if shown not in stdout:
            return f"the model's answer {shown!r} is not in stdout"
    return None


def report(result: subprocess.CompletedProcess[str] | tuple[bool, str, str], code: str) -> str:
    stdout, stderr = (
        (result.stdout, result.stderr) if isinstance(result, subprocess.CompletedProcess) else result[1:]
    )
    return f"--- code:\n{code}\n--- stdout:\n{stdout[-3000:]}\n--- stderr:\n{stderr[-3000:]}"


def png(path: Path) -> None:
    """A 2x2 RGB PNG (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def prepare_cwd(tmp_path: Path, snippet: Snippet, case: Case) -> Path:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    if '"image.png"' in case.replace.values():
        png(cwd / "image.png")
    for other in SNIPPETS:  # files the docs name (tools.md's create_file_tool.py), beside the snippet
        if (
            other.page == snippet.page
            and other.title
            and other.title != "example.py"
            and other is not snippet
        ):
            (cwd / other.title).write_text(textwrap.dedent(other.code), encoding="utf-8")
    return cwd


# -- the tests -------------------------------------------------------------------------------------------


def test_every_snippet_is_classified() -> None:
    if not SNIPPETS:
        pytest.skip("the SDK docs are not beside this checkout")
    ids = [s.id for s in SNIPPETS]
    assert len(ids) == len(set(ids))
    assert sorted(set(ids) - set(CASES)) == [], "snippets without a case in tests/support/sdk_snippets.py"
    assert sorted(set(CASES) - set(ids)) == [], "cases for snippets the docs no longer have"
    for case in CASES.values():
        assert all(b in BY_ID for b in case.before)


@pytest.mark.parametrize("snippet_id", RUNNABLE)
def test_snippet(
    snippet_id: str, docs_server: Server, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    snippet, case = BY_ID[snippet_id], CASES[snippet_id]
    code = compose(snippet, case, docs_server.port)
    if "localhost:1234" in code and docs_server.port != 1234:
        pytest.skip("port 1234 was in use; the snippet hard-codes it")
    ensure_loaded(docs_server, case.loaded)
    cwd = prepare_cwd(tmp_path, snippet, case)
    log: ModelLog | None = request.getfixturevalue("docs_log") if case.shows else None
    mark = log.mark() if log is not None else 0

    with tool_choice(docs_server, case.tool_choice):
        if case.until_output is not None:
            outcome = run_until(code, cwd, case)
            assert outcome[0], f"the tool was never called and answered\n{report(outcome, code)}"
            assert "LMStudio" not in outcome[2], report(outcome, code)
            return
        result = run(code, cwd, case.stdin)
    if case.kind == ERROR:
        assert result.returncode != 0, report(result, code)
        assert case.error is not None and re.search(case.error, result.stderr, re.S), report(result, code)
        return
    assert result.returncode == 0, report(result, code)
    for pattern in case.expect:
        assert re.search(pattern, result.stdout, re.M), f"no match for {pattern!r}\n{report(result, code)}"
    if log is not None:
        missing = missing_answer(case.shows, log.since(mark), result.stdout)
        assert missing is None, f"{missing}\n{report(result, code)}"


@pytest.mark.parametrize("snippet_id", DOCS_BUGS)
def test_docs_bug_fails_in_the_client(snippet_id: str, docs_server: Server, tmp_path: Path) -> None:
    """The docs' broken snippets fail with their own Python error, never with a server error."""
    snippet, case = BY_ID[snippet_id], CASES[snippet_id]
    code = compose(snippet, case, docs_server.port)
    ensure_loaded(docs_server, case.loaded)
    result = run(code, prepare_cwd(tmp_path, snippet, case), case.stdin)
    output = result.stdout + result.stderr
    assert case.error is not None and re.search(case.error, output, re.S), report(result, code)
    assert "LMStudioServerError" not in result.stderr, report(result, code)
