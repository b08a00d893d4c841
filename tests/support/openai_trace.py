"""What a script's chat completions got from the server, for tests that run an `openai` example unchanged
and cannot know the model's words: `traced(code)` puts a few lines before the example that record every
`chat.completions.create` call as one JSON line in `openai-trace.jsonl` (in the working directory), and
`read_trace(cwd)` returns them. A record: `tools` (offered), `stream`, `content`, `tool_calls` (name and
arguments of each) and `finish_reason`, as the example received them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRACE_FILE = "openai-trace.jsonl"

_RECORDER = f"""\
import json as _trace_json
from openai.resources.chat.completions import Completions as _TraceCompletions

_trace_create = _TraceCompletions.create


def _trace_write(record):
    with open({TRACE_FILE!r}, "a", encoding="utf-8") as trace_file:
        trace_file.write(_trace_json.dumps(record) + "\\n")


def _trace_stream(stream, record):
    content, calls, finish = "", {{}}, None
    for chunk in stream:
        if chunk.choices:
            choice = chunk.choices[0]
            content += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                name, arguments = calls.get(call.index, ("", ""))
                if call.function is not None:
                    name += call.function.name or ""
                    arguments += call.function.arguments or ""
                calls[call.index] = (name, arguments)
            finish = choice.finish_reason or finish
        yield chunk
    tool_calls = [{{"name": n, "arguments": a}} for _, (n, a) in sorted(calls.items())]
    _trace_write({{**record, "content": content, "tool_calls": tool_calls, "finish_reason": finish}})


def _trace_created(self, *args, **kwargs):
    response = _trace_create(self, *args, **kwargs)
    record = {{"tools": bool(kwargs.get("tools")), "stream": bool(kwargs.get("stream"))}}
    if record["stream"]:
        return _trace_stream(response, record)
    message, finish = response.choices[0].message, response.choices[0].finish_reason
    calls = [{{"name": c.function.name, "arguments": c.function.arguments}} for c in message.tool_calls or []]
    _trace_write({{**record, "content": message.content, "tool_calls": calls, "finish_reason": finish}})
    return response


_TraceCompletions.create = _trace_created
"""


def traced(code: str) -> str:
    """`code` with the recorder before it (the example itself is left as it is)."""
    return _RECORDER + "\n" + code


def read_trace(cwd: Path) -> list[dict[str, Any]]:
    path = cwd / TRACE_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
