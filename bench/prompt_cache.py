"""Prompt cache benchmark: interleaved multi-turn conversations with long, different system prompts on
the real server; the time to first token of follow-up turns against cold first turns, in one run.

    .venv/bin/python bench/prompt_cache.py [--conversations 4] [--turns 3] [--system-tokens 2000]
                                           [--prompt-cache-mb 1024] [--json out.json]

Each conversation's first turn is a cold prefill of its system prompt; then the conversations take turns
(A, B, C, D, A, B, ...), so each follow-up comes after the others replaced it in the KV cache: only the
host-RAM prompt cache can spare its prefill. Streamed chats through the `openai` client, temperature 0.
Prints the median TTFT of cold and follow-up turns, their ratio and the follow-ups' cached tokens.
`--prompt-cache-mb 0` runs the same with the cache off.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import openai
from harness import LMS, Server, default_models_dir, free_port

MODEL = "smollm2-135m-instruct"
WORDS = ["river", "stone", "lamp", "cedar", "harbor", "violet", "copper", "meadow", "falcon", "ember"]


def system_prompt(name: str, tokens: int) -> str:
    # about 21 tokens a line with SmolLM2's tokenizer
    lines = [
        f"Note {i}: {name} stores the {WORDS[i % 10]} key in drawer {i * 7 % 97} of {WORDS[i * 3 % 10]} hall."
        for i in range(tokens // 21)
    ]
    return f"You are {name}. Remember these notes.\n" + "\n".join(lines)


def start(tmp: Path, cache_mb: int) -> Server:
    home = tmp / "home"
    (home / "openlms").mkdir(parents=True, exist_ok=True)
    settings = {"models_dir": str(default_models_dir()), "sdk_port": 0, "prompt_cache_mb": cache_mb}
    (home / "openlms" / "settings.json").write_text(json.dumps(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLMS_")}
    env["OPENLMS_HOME"] = str(home)
    server = Server(home, free_port(), env)
    subprocess.run([LMS, "server", "start", "--port", str(server.port)], env=env, check=True, timeout=60)
    return server


def turn(client: openai.OpenAI, messages: list[dict[str, str]]) -> tuple[float, str, int, int]:
    """(TTFT s, answer, prompt tokens, cached tokens) of one streamed chat."""
    started = time.perf_counter()
    first: float | None = None
    text, prompt, cached = "", 0, 0
    stream = client.chat.completions.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        temperature=0,
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or time.perf_counter()
            text += chunk.choices[0].delta.content
        if chunk.usage is not None:
            prompt = chunk.usage.prompt_tokens
            details = chunk.usage.prompt_tokens_details
            cached = (details.cached_tokens or 0) if details else 0
    return (first or time.perf_counter()) - started, text, prompt, cached


def run(args: argparse.Namespace) -> dict[str, object]:
    names = [f"Assistant {chr(ord('A') + i)}" for i in range(args.conversations)]
    with tempfile.TemporaryDirectory() as tmp:
        server = start(Path(tmp), args.prompt_cache_mb)
        try:
            server.lms("load", MODEL, "--context-length", str(args.system_tokens + 1024), timeout=300)
            with openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0) as client:
                return interleave(client, names, args)
        finally:
            server.lms("server", "stop", check=False)


def interleave(client: openai.OpenAI, names: list[str], args: argparse.Namespace) -> dict[str, object]:
    chats = [[{"role": "system", "content": system_prompt(n, args.system_tokens)}] for n in names]
    cold: list[float] = []
    follow: list[float] = []
    cached: list[int] = []
    prompts: list[int] = []
    for t in range(args.turns):
        for chat in chats:
            chat.append({"role": "user", "content": f"Question {t + 1}: which drawer holds the lamp key?"})
            ttft, answer, prompt, hit = turn(client, chat)
            chat.append({"role": "assistant", "content": answer})
            (cold if t == 0 else follow).append(ttft)
            prompts.append(prompt)
            if t:
                cached.append(hit)
    cold_s, follow_s = statistics.median(cold), statistics.median(follow)
    return {
        "conversations": len(names),
        "turns": args.turns,
        "prompt_cache_mb": args.prompt_cache_mb,
        "prompt_tokens_max": max(prompts),
        "cold_ttft_s": round(cold_s, 3),
        "follow_up_ttft_s": round(follow_s, 3),
        "follow_up_vs_cold": round(follow_s / cold_s, 3),
        "follow_up_cached_tokens_min": min(cached) if cached else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--system-tokens", type=int, default=2000)
    parser.add_argument("--prompt-cache-mb", type=int, default=1024)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args)
    for key, value in result.items():
        print(f"{key:28} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
