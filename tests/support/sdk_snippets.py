"""The Python snippets of the SDK's docs pages (`1_python/**.md`), and what each needs to run.

A page holds snippets two ways: plain ```python blocks and ```lms_code_snippet blocks (YAML: `variants`,
each with a `language` and its `code`, sometimes a `title`, the file name the docs give it). Every snippet
whose language is python is collected, in page order; its id is the page's stem (an `index` page is named
after its folder) and its index among the page's snippets, e.g. `chat-completion-3`.

`CASES` says, for every snippet id, what it is and how it runs. The snippets' code is never edited except
for model keys (`replace`) and bounds on a structured response's schema (`bounds`: unbounded, a small
model may write a string until the context ends); a fragment is completed with the blocks the docs show
before it (`before`, other snippet ids) and, where the docs never show the missing lines, with
`extra_before` (a docs gap, said in `note`).

What the model answers differs from one CPU to another (other numerics, other words and lengths), so no
case looks for words: `shows` checks that the snippet printed what the model wrote, as the server logged
it, whatever it was.
"""

from __future__ import annotations

import doctest
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support.server import BASE_MODEL, CHAT_MODEL, EMBEDDING_MODEL
from tests.support.spec import python_blocks, spec_page

SDK_DOCS = "1_python"


@dataclass(frozen=True)
class Snippet:
    id: str
    page: str  # relative to the docs root, e.g. "1_python/2_agent/act.md"
    label: str  # the variant's name, or "python block"
    title: str | None  # the file name the docs give the snippet
    code: str


def _page_name(path: Path, root: Path) -> str:
    if path.stem in ("index", "_index") and path.parent != root:
        return re.sub(r"^_?\d*_", "", path.parent.name)
    return path.stem


def page_snippets(path: Path, root: Path) -> list[Snippet]:
    rel = path.relative_to(root.parent).as_posix()
    name = _page_name(path, root)
    found: list[Snippet] = []
    for match in re.finditer(r"```(python|lms_code_snippet)[^\n]*\n(.*?)```", path.read_text("utf-8"), re.S):
        kind, body = match.groups()
        if kind == "python":
            found.append(Snippet(f"{name}-{len(found)}", rel, "python block", None, body))
            continue
        block = yaml.safe_load(body)
        for label, variant in block["variants"].items():
            if variant.get("language") == "python":
                found.append(Snippet(f"{name}-{len(found)}", rel, label, block.get("title"), variant["code"]))
    plain = [s.code for s in found if s.label == "python block"]
    assert plain == python_blocks(rel), f"{rel}: the ```python blocks were not all collected"
    return found


def all_snippets() -> list[Snippet]:
    root = spec_page(SDK_DOCS)
    return [s for page in sorted(root.rglob("*.md")) for s in page_snippets(page, root)]


def repl_source(transcript: str) -> str:
    """The statements of an interactive-session transcript (`>>>`/`...` lines), without its outputs."""
    return "".join(example.source for example in doctest.DocTestParser().get_examples(transcript))


# ------------------------------------------------------------------------------------------------------
# What each snippet is

RUN = "run"  # runs; exit status 0
ERROR = "error"  # runs against what openlms cannot serve; must fail with the server's clear error
NOT_CODE = "not-code"  # not runnable Python: output shown as a python block, a signature, TypeScript
DOCS_BUG = "docs-bug"  # Python that fails in any client before reaching a server (the docs' mistake)

QWEN = '"qwen2.5-7b-instruct"'
LLAMA = '"llama-3.2-1b-instruct"'
CHAT = {QWEN: f'"{CHAT_MODEL}"', LLAMA: f'"{CHAT_MODEL}"'}
BASE = {QWEN: f'"{BASE_MODEL}"'}
VISION = {'"qwen2-vl-2b-instruct"': f'"{CHAT_MODEL}"'}
EMBED = {'"nomic-embed-text-v1.5"': f'"{EMBEDDING_MODEL}"'}
IMAGE = {'"/path/to/image.jpg"': '"image.png"'}
SPECULATIVE = {QWEN: f'"{CHAT_MODEL}"', '"qwen2.5-0.5b-instruct"': f'"{CHAT_MODEL}"'}

TEXT = "text"  # `shows`: stdout holds the text of each prediction the snippet made
PARSED = "parsed"  # `shows`: stdout holds each prediction's JSON, as Python prints the parsed dict
STATS = (
    r"Model used: \S",
    r"Predicted tokens: [1-9]\d*",  # the token that ends a prediction counts: never 0
    r"Time to first token \(seconds\): \d",
    # no maxTokens: the model may write until the context is full (stopAtLimit)
    r"Stop reason: (eosFound|maxPredictedTokensReached|stopStringFound|contextLengthReached)",
)
PROGRESS = (r"^100\.0% (complete|processed)$",)
LOADED = rf"LLM\(identifier='{re.escape(CHAT_MODEL)}'\)"
FOUND_HOST = (r"An LM Studio API server instance is available at (localhost|127\.0\.0\.1):(1234|41343)",)
PRINT_HANDLE = "    print(image_handle)\n"
# The parsed dict, in whatever key order the schema gave and with repr's quotes (a title with an apostrophe
# prints in double quotes).
BOOK = (r"'title': ['\"]", r"'author': ['\"]", r"'year': -?\d+")
# structured-response.md's schemas, their shape kept, with bounded strings: any answer then fits in the
# context (two strings of at most 64 characters, at most 6 tokens each as a \uXXXX escape, bounded
# whitespace and at most 16 digits), so it always ends and parses.
BOOK_CLASS_BOUNDS = {
    "from pydantic import BaseModel\n": "from pydantic import BaseModel, Field\n",
    "    title: str\n": "    title: str = Field(max_length=64)\n",
    "    author: str\n": "    author: str = Field(max_length=64)\n",
}
BOOK_SCHEMA_BOUNDS = {'{ "type": "string" }': '{ "type": "string", "maxLength": 64 }'}
VISION_ERROR = r"LMStudioServerError: Chat response error:.*image.png.*no vision support"


@dataclass(frozen=True)
class Case:
    kind: str
    note: str = ""
    replace: dict[str, str] = field(default_factory=dict)  # model keys (quoted literals); image-input's path
    before: tuple[str, ...] = ()  # snippet ids (of the same page) run first, in the same script
    nest: bool = False  # the fragment (and extra_after) go inside the last `before` block's with block
    extra_before: str = ""  # lines the docs never show but the fragment needs (a docs gap)
    extra_after: str = ""  # lines that make the fragment's result visible (it prints nothing)
    expect: tuple[str, ...] = ()  # regexes (re.M) that stdout must match
    shows: str = ""  # TEXT or PARSED: stdout shows the snippet's predictions (as the server logged them)
    bounds: dict[str, str] = field(default_factory=dict)  # bounds for the docs' schema; each must apply
    stdin: str = ""
    loaded: tuple[str, ...] = (CHAT_MODEL,)  # loaded before the snippet runs (lms.llm() takes any)
    repl: bool = False  # an interactive-session transcript: its statements run in order
    tool_choice: str | None = None  # per-model toolChoice on CHAT_MODEL ("required" or "none")
    until_output: str | None = None  # a regex; the snippet loops on forced tool calls: stop it once seen
    error: str | None = None  # ERROR: a regex that stderr must match
    slow: bool = False


CHAT_LINES = (  # chat-completion.md's chat (chat-completion-9)
    "import lmstudio as lms\n"
    'chat = lms.Chat("You are a resident AI philosopher.")\n'
    'chat.add_user_message("What is the meaning of life?")\n'
)

CASES: dict[str, Case] = {
    # -- index.md ------------------------------------------------------------------------------------
    "index-0": Case(RUN, replace=CHAT, shows=TEXT),
    "index-1": Case(RUN, replace=CHAT, shows=TEXT),
    "index-2": Case(RUN, replace=CHAT, shows=TEXT),
    # -- getting-started/project-setup.md --------------------------------------------------------------
    "project-setup-0": Case(
        RUN, "Configures the default client for localhost:1234 (the server's port here)."
    ),
    "project-setup-1": Case(RUN, shows=TEXT),
    "project-setup-2": Case(
        DOCS_BUG,
        "Docs bug: `for fragment in await model.respond_stream(...)` iterates an async stream synchronously "
        "(TypeError in the client); chat-completion-5 is the working form.",
        error=r"TypeError: 'AsyncPredictionStream' object is not iterable",
    ),
    "project-setup-3": Case(RUN, expect=FOUND_HOST),
    "project-setup-4": Case(RUN, expect=FOUND_HOST),
    "project-setup-5": Case(
        DOCS_BUG,
        "Docs bug: the `else:` is indented by two spaces, an IndentationError in any Python.",
        error="IndentationError",
    ),
    "project-setup-6": Case(
        DOCS_BUG, "Docs bug: the same misindented `else:` as project-setup-5.", error="IndentationError"
    ),
    # -- getting-started/repl.md ---------------------------------------------------------------------
    "repl-0": Case(
        RUN, "An interactive session: its `>>>` statements run in order.", repl=True, expect=(r"^  0 LLM\(",)
    ),
    "repl-1": Case(
        RUN,
        "An asynchronous REPL session (python -m asyncio): its statements run in order, top-level await.",
        repl=True,
        expect=(r"^  0 AsyncLLM\(",),
    ),
    # -- llm-prediction/cancelling-predictions.md ------------------------------------------------------
    "cancelling-predictions-0": Case(RUN, "`if ...:` is true: the first fragment cancels the stream."),
    "cancelling-predictions-1": Case(RUN, "As cancelling-predictions-0."),
    "cancelling-predictions-2": Case(RUN, "As cancelling-predictions-0."),
    # -- llm-prediction/chat-completion.md -------------------------------------------------------------
    "chat-completion-0": Case(RUN, shows=TEXT),
    "chat-completion-1": Case(RUN, shows=TEXT),
    "chat-completion-2": Case(RUN, shows=TEXT),
    "chat-completion-3": Case(RUN, shows=TEXT),
    "chat-completion-4": Case(RUN, shows=TEXT),
    "chat-completion-5": Case(
        DOCS_BUG,
        "Docs bug: `async for ... in model.respond_stream(...)` without `await` (AsyncLLM.respond_stream is "
        "a coroutine): TypeError in the client; chat-completion-17 is the working form.",
        error=r"TypeError: 'async for' requires an object with __aiter__ method, got coroutine",
    ),
    "chat-completion-6": Case(RUN, replace=CHAT, extra_after="print(model)\n", expect=(r"LLM\(identifier=",)),
    "chat-completion-7": Case(RUN, replace=CHAT, extra_after="print(model)\n", expect=(r"LLM\(identifier=",)),
    "chat-completion-8": Case(
        RUN, replace=CHAT, extra_after="print(model)\n", expect=(r"AsyncLLM\(identifier=",)
    ),
    "chat-completion-9": Case(RUN, extra_after="print(chat)\n", expect=(r"resident AI philosopher",)),
    "chat-completion-10": Case(
        RUN, replace=CHAT, before=("chat-completion-6", "chat-completion-9"), shows=TEXT
    ),
    "chat-completion-11": Case(
        RUN, replace=CHAT, before=("chat-completion-6", "chat-completion-9"), shows=TEXT
    ),
    "chat-completion-12": Case(
        RUN,
        "Runs inside the async with block of chat-completion-8 (the page's asynchronous model line).",
        nest=True,
        replace=CHAT,
        before=("chat-completion-9", "chat-completion-8"),
        shows=TEXT,
    ),
    "chat-completion-13": Case(
        RUN,
        "As chat-completion-12.",
        nest=True,
        replace=CHAT,
        before=("chat-completion-9", "chat-completion-8"),
        shows=TEXT,
    ),
    "chat-completion-14": Case(
        RUN,
        replace=CHAT,
        before=("chat-completion-6", "chat-completion-9"),
        extra_after="print(result.stats.predicted_tokens_count)\n",
        expect=(r"^([1-9]|[1-4]\d|50)$",),
    ),
    "chat-completion-15": Case(
        RUN,
        replace=CHAT,
        before=("chat-completion-6", "chat-completion-9"),
        extra_after="print(''.join(f.content for f in prediction_stream))\n",
        shows=TEXT,
    ),
    "chat-completion-16": Case(
        RUN,
        "As chat-completion-12.",
        nest=True,
        replace=CHAT,
        before=("chat-completion-9", "chat-completion-8"),
        extra_after="print(result.stats.predicted_tokens_count)\n",
        expect=(r"^([1-9]|[1-4]\d|50)$",),
    ),
    "chat-completion-17": Case(
        RUN,
        "As chat-completion-12.",
        nest=True,
        replace=CHAT,
        before=("chat-completion-9", "chat-completion-8"),
        extra_after="print(''.join([f.content async for f in prediction_stream]))\n",
        shows=TEXT,
    ),
    "chat-completion-18": Case(
        RUN,
        replace=CHAT,
        before=("chat-completion-6", "chat-completion-9", "chat-completion-10"),
        expect=STATS,
    ),
    "chat-completion-19": Case(
        RUN,
        replace=CHAT,
        before=("chat-completion-6", "chat-completion-9", "chat-completion-11"),
        expect=STATS,
    ),
    "chat-completion-20": Case(
        RUN,
        "A chat REPL: one question on stdin, then EOF. One: when the answer to it fills the context (the "
        "model's choice), the history with a second one no longer fits and the server refuses it "
        "(stopAtLimit), as it should.",
        stdin="Hello!\n",
        expect=(r"^You \(leave blank to exit\): Bot: ",),
        shows=TEXT,
    ),
    "chat-completion-21": Case(RUN, expect=PROGRESS),
    "chat-completion-22": Case(RUN, expect=PROGRESS),
    "chat-completion-23": Case(RUN, expect=PROGRESS),
    # -- llm-prediction/completion.md ----------------------------------------------------------------
    "completion-0": Case(RUN, replace=BASE, extra_after="print(model)\n", expect=(r"LLM\(identifier=",)),
    "completion-1": Case(RUN, replace=BASE, extra_after="print(model)\n", expect=(r"LLM\(identifier=",)),
    "completion-2": Case(RUN, replace=BASE, extra_after="print(model)\n", expect=(r"AsyncLLM\(identifier=",)),
    "completion-3": Case(RUN, replace=BASE, before=("completion-0",), shows=TEXT),
    "completion-4": Case(RUN, replace=BASE, before=("completion-0",), shows=TEXT),
    "completion-5": Case(
        RUN,
        "Inside completion-2's async with block.",
        nest=True,
        replace=BASE,
        before=("completion-2",),
        shows=TEXT,
    ),
    "completion-6": Case(
        RUN,
        "Inside completion-2's async with block.",
        nest=True,
        replace=BASE,
        before=("completion-2",),
        shows=TEXT,
    ),
    "completion-7": Case(RUN, replace=BASE, before=("completion-0", "completion-3"), expect=STATS),
    "completion-8": Case(RUN, replace=BASE, before=("completion-0", "completion-4"), expect=STATS),
    "completion-9": Case(
        RUN,
        "A simulated terminal: one command on stdin, then EOF. Runs on the base model (loaded alone). "
        "One command: when the base model's answer to it fills the context (it happens), the history "
        "with a second command no longer fits and the server refuses it (stopAtLimit), as it should.",
        stdin="ls\n",
        loaded=(BASE_MODEL,),
        expect=(r"^\$ ",),
        shows=TEXT,
    ),
    "completion-10": Case(
        RUN,
        "Docs gap: `initial_text` is never defined on the page; it is set to the page's prompt.",
        replace=BASE,
        before=("completion-0",),
        extra_before='initial_text = "My name is"\n',
        extra_after="print(result.stats.predicted_tokens_count)\n",
        expect=(r"^([1-9]|[1-4]\d|50)$",),
    ),
    "completion-11": Case(
        RUN,
        "As completion-10.",
        replace=BASE,
        before=("completion-0",),
        extra_before='initial_text = "My name is"\n',
        extra_after="print(''.join(f.content for f in prediction_stream))\n",
        shows=TEXT,
    ),
    "completion-12": Case(
        RUN,
        "As completion-10, inside completion-2's async with block.",
        nest=True,
        replace=BASE,
        before=("completion-2",),
        extra_before='initial_text = "My name is"\n',
        extra_after="print(result.stats.predicted_tokens_count)\n",
        expect=(r"^([1-9]|[1-4]\d|50)$",),
    ),
    "completion-13": Case(
        RUN,
        "As completion-12.",
        nest=True,
        replace=BASE,
        before=("completion-2",),
        extra_before='initial_text = "My name is"\n',
        extra_after="print(''.join([f.content async for f in prediction_stream]))\n",
        shows=TEXT,
    ),
    "completion-14": Case(RUN, expect=PROGRESS, slow=True),
    "completion-15": Case(RUN, expect=PROGRESS, slow=True),
    "completion-16": Case(RUN, expect=PROGRESS, slow=True),
    # -- llm-prediction/image-input.md ---------------------------------------------------------------
    "image-input-0": Case(
        RUN,
        "The page's vision model (qwen2-vl-2b-instruct) is no default and needs the internet; the key is "
        "replaced by the chat model, which loads.",
        replace=VISION,
        extra_after="print(model)\n",
        expect=(r"LLM\(identifier=",),
    ),
    "image-input-1": Case(
        RUN, "As image-input-0.", replace=VISION, extra_after="    print(model)\n", expect=(r"LLM\(",)
    ),
    "image-input-2": Case(
        RUN, "As image-input-0.", replace=VISION, extra_after="    print(model)\n", expect=(r"AsyncLLM\(",)
    ),
    "image-input-3": Case(
        RUN,
        'The placeholder path ("Replace with the path to your image") is replaced by a small PNG.',
        replace=IMAGE,
        extra_after="print(image_handle)\n",
        expect=(r"FileHandle",),
    ),
    "image-input-4": Case(
        RUN,
        "As image-input-3.",
        replace=IMAGE,
        extra_after="    print(image_handle)\n",
        expect=(r"FileHandle",),
    ),
    "image-input-5": Case(
        RUN, "As image-input-3.", replace=IMAGE, extra_after=PRINT_HANDLE, expect=(r"FileHandle",)
    ),
    "image-input-6": Case(
        ERROR,
        "Needs a vision model: with the chat model and a real image (as image-input-3) the server must "
        "refuse the image with a clear error.",
        replace={**VISION, **IMAGE},
        error=VISION_ERROR,
    ),
    "image-input-7": Case(ERROR, "As image-input-6.", replace={**VISION, **IMAGE}, error=VISION_ERROR),
    "image-input-8": Case(
        DOCS_BUG,
        "Docs bug: the AsyncClient's `files.prepare_image(...)` is not awaited, so the chat gets a "
        "coroutine; the SDK refuses it client-side. With the await it is image-input-6/-7's case.",
        replace={**VISION, **IMAGE},
        error=r"LMStudioValueError: Unable to parse user message content: <coroutine",
    ),
    # -- llm-prediction/parameters.md ----------------------------------------------------------------
    "parameters-0": Case(
        RUN,
        "Completed with the page's load line (parameters-2) and chat-completion.md's chat (the page has "
        "none).",
        replace=CHAT,
        before=("parameters-2",),
        extra_before=CHAT_LINES,
        extra_after="print(result)\n",
        shows=TEXT,
    ),
    "parameters-1": Case(
        DOCS_BUG,
        "Docs bug: passes a Chat to complete(), which takes a prompt string; the SDK refuses it "
        "client-side before anything reaches the server.",
        replace=CHAT,
        before=("parameters-2",),
        extra_before=CHAT_LINES,
        error=r"LMStudioValueError: Unable to parse user message content: Chat.from_history",
    ),
    "parameters-2": Case(
        RUN, replace=CHAT, extra_after="print(model.get_context_length())\n", expect=(r"^8192$",), loaded=()
    ),
    "parameters-3": Case(
        RUN,
        replace=CHAT,
        extra_after="    print(model.get_context_length())\n",
        expect=(r"^8192$",),
        loaded=(),
    ),
    "parameters-4": Case(
        RUN,
        replace=CHAT,
        extra_after="    print(await model.get_context_length())\n",
        expect=(r"^8192$",),
        loaded=(),
    ),
    "parameters-5": Case(
        RUN, replace=CHAT, extra_after="print(model.get_context_length())\n", expect=(r"^8192$",)
    ),
    "parameters-6": Case(
        RUN, replace=CHAT, extra_after="    print(model.get_context_length())\n", expect=(r"^8192$",)
    ),
    "parameters-7": Case(
        RUN, replace=CHAT, extra_after="    print(await model.get_context_length())\n", expect=(r"^8192$",)
    ),
    # -- llm-prediction/speculative-decoding.md ------------------------------------------------------
    "speculative-decoding-0": Case(
        RUN,
        "No default model pair shares a vocabulary but SmolLM2 with itself: main and draft are both "
        "smollm2-135m-instruct.",
        replace=SPECULATIVE,
        expect=(r"^Accepted \d+/[1-9]\d* tokens$",),
        slow=True,
    ),
    "speculative-decoding-1": Case(
        RUN, "As speculative-decoding-0.", replace=SPECULATIVE, expect=(r"^Accepted \d+/[1-9]\d* tokens$",)
    ),
    # -- llm-prediction/structured-response.md -------------------------------------------------------
    "structured-response-0": Case(
        NOT_CODE, "The SDK's ModelSchema protocol, shown for reference (DictSchema is the SDK's)."
    ),
    "structured-response-1": Case(
        RUN, extra_after="print(BookSchema.model_json_schema())\n", expect=(r"title",)
    ),
    "structured-response-2": Case(
        RUN, extra_after="print(BookSchema.model_json_schema())\n", expect=(r"title",)
    ),
    "structured-response-3": Case(
        RUN,
        "Completed with chat-completion.md's `model = lms.llm()` (the page shows none) and the page's "
        "pydantic schema (structured-response-1).",
        before=("structured-response-1",),
        extra_before="import lmstudio as lms\nmodel = lms.llm()\n",
        bounds=BOOK_CLASS_BOUNDS,
        expect=BOOK,
        shows=PARSED,
    ),
    "structured-response-4": Case(
        DOCS_BUG,
        "Docs bug: calls `prediction_stream.result()` without iterating the stream (its loop is commented "
        "out); SDK 1.5 raises 'Prediction processing has not been initiated.' (wait_for_result() would "
        "run it). Completed as structured-response-3.",
        before=("structured-response-1",),
        extra_before="import lmstudio as lms\nmodel = lms.llm()\n",
        error=r"LMStudioRuntimeError: Prediction processing has not been initiated",
    ),
    "structured-response-5": Case(RUN, extra_after="print(schema)\n", expect=(r"'title'",)),
    "structured-response-6": Case(
        RUN,
        "As structured-response-3, with the page's JSON schema (structured-response-5).",
        before=("structured-response-5",),
        extra_before="import lmstudio as lms\nmodel = lms.llm()\n",
        bounds=BOOK_SCHEMA_BOUNDS,
        expect=BOOK,
        shows=PARSED,
    ),
    "structured-response-7": Case(
        DOCS_BUG,
        "Docs bug: iterates `prediction`, which is undefined (the stream is `prediction_stream`): a "
        "NameError before any request.",
        before=("structured-response-5",),
        extra_before="import lmstudio as lms\nmodel = lms.llm()\n",
        error=r"NameError: name 'prediction' is not defined",
    ),
    "structured-response-8": Case(NOT_CODE, "TypeScript in a commented-out block, labelled Python."),
    # -- llm-prediction/working-with-chats.md ---------------------------------------------------------
    "working-with-chats-0": Case(
        RUN,
        "The page never shows its `llm` or imports; completed with chat-completion.md's "
        "`llm = lms.llm()` and `from lmstudio import Chat`.",
        extra_before="import lmstudio as lms\nfrom lmstudio import Chat\nllm = lms.llm()\n",
        extra_after="print(prediction)\n",
        shows=TEXT,
    ),
    "working-with-chats-1": Case(
        RUN,
        "As working-with-chats-0.",
        extra_before="import lmstudio as lms\nfrom lmstudio import Chat\nllm = lms.llm()\n",
        extra_after="print(prediction)\n",
        shows=TEXT,
    ),
    "working-with-chats-2": Case(
        RUN,
        "As working-with-chats-0.",
        extra_before="from lmstudio import Chat\n",
        extra_after="print(chat)\n",
        expect=(r"resident AI philosopher",),
    ),
    "working-with-chats-3": Case(
        RUN,
        "As working-with-chats-0.",
        extra_before="from lmstudio import Chat\n",
        extra_after="print(chat)\n",
        expect=(r"What is the meaning of life",),
    ),
    "working-with-chats-4": Case(
        RUN,
        "As working-with-chats-0.",
        extra_before="import lmstudio as lms\nllm = lms.llm()\n",
        extra_after="print(prediction)\n",
        shows=TEXT,
    ),
    # -- agent/act.md --------------------------------------------------------------------------------
    "act-0": Case(
        RUN,
        "SmolLM2 never calls a tool on its own: with the per-model toolChoice 'required' every round is a "
        "tool call, so act() never ends; the test stops it after the first tool result.",
        replace=CHAT,
        tool_choice="required",
        until_output=r"ToolResultMessage",
    ),
    "act-1": Case(RUN, "As act-0.", replace=CHAT, tool_choice="required", until_output=r"ToolResultMessage"),
    "act-2": Case(
        RUN,
        "A chat REPL (create_file): one request on stdin, then EOF. Run with the per-model toolChoice "
        "'none', so that act() ends after one round whatever the model writes: forced, SmolLM2 calls "
        "create_file with name '' ('File already exists.') round after round; left to choose, whether it "
        "starts a call (and how many rounds follow) is up to its sampled words.",
        stdin="Create a file named notes.txt containing a haiku.\n",
        tool_choice="none",
        expect=(r"^You \(leave blank to exit\): Bot: ",),
        shows=TEXT,
    ),
    # -- agent/tools.md ------------------------------------------------------------------------------
    "tools-0": Case(RUN, "A tool definition only.", extra_after="print(add(2, 3))\n", expect=(r"^5$",)),
    "tools-1": Case(RUN, "A tool definition only.", extra_after="print(tool_def.name)\n", expect=(r"^add$",)),
    "tools-2": Case(RUN, "A tool definition only.", extra_after="print(tool_def.name)\n", expect=(r"^add$",)),
    "tools-3": Case(
        RUN, "create_file_tool.py (the docs' title), imported by tools-4.", extra_after="print(create_file)\n"
    ),
    "tools-4": Case(
        RUN,
        "tools-3 is written beside it as create_file_tool.py. With toolChoice 'none', as act-2: the model "
        "answers in text, act() ends after one round and no file is written.",
        replace=CHAT,
        tool_choice="none",
    ),
    "tools-5": Case(
        RUN,
        "Docs bugs: Chat, LMStudioPredictionError and ToolCallRequest are not imported and act() is "
        "called on `llm`, never defined (NameErrors); completed with those imports and `llm = lms.llm()` "
        "(the loaded chat model). With toolChoice 'none', as act-2, the model answers in text: act() "
        "ends after one round (whether a call would divide by 0 is up to the model's words).",
        replace=CHAT,
        tool_choice="none",
        extra_before="import lmstudio as lms\n"
        "from lmstudio import Chat, LMStudioPredictionError, ToolCallRequest\n"
        "llm = lms.llm()\n",
        extra_after="print(act_result)\n",
        expect=(r"ActResult\(rounds=1",),
    ),
    # -- embedding/index.md --------------------------------------------------------------------------
    "embedding-0": Case(
        RUN, replace=EMBED, extra_after="print(len(embedding))\n", expect=(r"^384$",), loaded=()
    ),
    # -- manage-models/_download-models.md (a draft page) --------------------------------------------
    "_download-models-0": Case(NOT_CODE, "TypeScript labelled Python (a draft page)."),
    "_download-models-1": Case(NOT_CODE, "TypeScript labelled Python (a draft page)."),
    "_download-models-2": Case(
        NOT_CODE,
        "Draft: `on_finalize: lambda` is a SyntaxError, `desired_model` is never defined; downloading "
        "needs the internet (the hub).",
    ),
    "_download-models-3": Case(NOT_CODE, "Draft: only `import lmstudio as lms`; nothing to check."),
    # -- manage-models/list-downloaded.md ------------------------------------------------------------
    "list-downloaded-0": Case(
        RUN, expect=(rf"model_key='{CHAT_MODEL}'", rf"model_key='{EMBEDDING_MODEL}'", rf"'{BASE_MODEL}'")
    ),
    "list-downloaded-1": Case(
        RUN, expect=(rf"model_key='{CHAT_MODEL}'", rf"model_key='{EMBEDDING_MODEL}'", rf"'{BASE_MODEL}'")
    ),
    "list-downloaded-2": Case(
        RUN, expect=(rf"model_key='{CHAT_MODEL}'", rf"model_key='{EMBEDDING_MODEL}'", rf"'{BASE_MODEL}'")
    ),
    "list-downloaded-3": Case(NOT_CODE, "The output of list-downloaded-0, shown as a python block."),
    # -- manage-models/list-loaded.md ----------------------------------------------------------------
    "list-loaded-0": Case(RUN, loaded=(CHAT_MODEL, EMBEDDING_MODEL), expect=(LOADED, r"EmbeddingModel\(")),
    "list-loaded-1": Case(
        DOCS_BUG,
        "Docs bug: `import lms` (the package is lmstudio): ModuleNotFoundError, nothing runs.",
        error=r"ModuleNotFoundError: No module named 'lms'",
    ),
    "list-loaded-2": Case(
        RUN, loaded=(CHAT_MODEL, EMBEDDING_MODEL), expect=(r"AsyncLLM\(", r"AsyncEmbeddingModel\(")
    ),
    # -- manage-models/loading.md --------------------------------------------------------------------
    "loading-0": Case(RUN, extra_after="print(model)\n", expect=(LOADED,)),
    "loading-1": Case(RUN, extra_after="    print(model)\n", expect=(LOADED,)),
    "loading-2": Case(RUN, extra_after="    print(model)\n", expect=(r"AsyncLLM\(",)),
    "loading-3": Case(RUN, replace=CHAT, extra_after="print(model)\n", expect=(LOADED,), loaded=()),
    "loading-4": Case(RUN, replace=CHAT, extra_after="    print(model)\n", expect=(LOADED,), loaded=()),
    "loading-5": Case(
        RUN, replace=CHAT, extra_after="    print(model)\n", expect=(r"AsyncLLM\(",), loaded=()
    ),
    "loading-6": Case(
        RUN,
        extra_after="print(llama.identifier, another_llama.identifier)\n",
        replace=CHAT,
        expect=(r"second-llama$",),
        loaded=(),
    ),
    "loading-7": Case(
        RUN,
        extra_after="    print(llama.identifier, another_llama.identifier)\n",
        replace=CHAT,
        expect=(r"second-llama$",),
        loaded=(),
    ),
    "loading-8": Case(
        RUN,
        extra_after="    print(llama.identifier, another_llama.identifier)\n",
        replace=CHAT,
        expect=(r"second-llama$",),
        loaded=(),
    ),
    "loading-9": Case(RUN, extra_after="print(lms.list_loaded_models())\n", expect=(r"^\[\]$",)),
    "loading-10": Case(RUN, extra_after="    print(client.list_loaded_models())\n", expect=(r"^\[\]$",)),
    "loading-11": Case(
        RUN, extra_after="    print(await client.list_loaded_models())\n", expect=(r"^\[\]$",)
    ),
    "loading-12": Case(RUN, replace=CHAT, extra_after="print(llama)\n", expect=(LOADED,), loaded=()),
    "loading-13": Case(RUN, replace=CHAT, extra_after="    print(llama)\n", expect=(LOADED,), loaded=()),
    "loading-14": Case(
        RUN, replace=CHAT, extra_after="    print(llama)\n", expect=(r"AsyncLLM\(",), loaded=()
    ),
    # -- model-info/get-context-length.md ------------------------------------------------------------
    "get-context-length-0": Case(
        RUN,
        "Completed with the model line of get-context-length-1.",
        extra_before="import lmstudio as lms\nmodel = lms.llm()\n",
        extra_after="print(context_length)\n",
        expect=(r"^\d{3,}$",),
    ),
    "get-context-length-1": Case(RUN, expect=(r"^Fits in context: True$",)),
    # -- model-info/get-load-config.md ---------------------------------------------------------------
    "get-load-config-0": Case(RUN, expect=(r"contextLength",)),
    "get-load-config-1": Case(RUN, expect=(r"contextLength",)),
    "get-load-config-2": Case(
        DOCS_BUG,
        "Docs bug: `async with lms.Client()` (the synchronous client) and awaits its synchronous model: "
        "the SDK fails client-side; get-load-config-0/1 cover the endpoint.",
        error=r"TypeError: .*asynchronous context manager",
    ),
    # -- model-info/get-model-info.md ----------------------------------------------------------------
    "get-model-info-0": Case(RUN, expect=(rf'"modelKey": "{CHAT_MODEL}"', r'"contextLength": \d+')),
    "get-model-info-1": Case(RUN, expect=(rf'"modelKey": "{CHAT_MODEL}"', r'"contextLength": \d+')),
    "get-model-info-2": Case(RUN, expect=(rf'"modelKey": "{CHAT_MODEL}"', r'"contextLength": \d+')),
    "get-model-info-3": Case(NOT_CODE, "The output of get-model-info-0, shown as a python block."),
    # -- _more/_apply-prompt-template.md (a draft page) ----------------------------------------------
    "_apply-prompt-template-0": Case(NOT_CODE, "TypeScript labelled Python (a draft page)."),
    "_apply-prompt-template-1": Case(NOT_CODE, "TypeScript labelled Python (a draft page)."),
}
