"""openlms benchmark: raw llama.cpp (low-level loop, C sampler chain) vs the openlms server, one run.

    .venv/bin/python bench/run.py [--model smollm2-135m-instruct] [--reps 3] [--json out.json]

Measures with the same model, context and threads:
  decode tok/s        raw loop vs streamed through /v1/completions (no template, EOS suppressed both sides)
                      and through the lmstudio SDK's websocket API (`complete_stream`; EOS not suppressed)
  prompt tok/s        raw prefill of ~450 tokens vs the server's time to first token on the same prompt
  TTFT                a short chat request, client side
  JIT load            first request to an unloaded model; and /api/v1/models/load's load time
  CLI wall time       `lms --help`, `lms ls`
  peak RSS            the server process with the model loaded vs the raw loop process
Targets (DEVELOPERS/issue): decode and prompt >= 0.95x raw; at most 150 MB above raw.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from harness import LMS, Server, default_models_dir, find_model, free_port, start_server
from sdk_client import sdk_decode

HERE = Path(__file__).resolve().parent
PROMPT = " ".join(
    f"Paragraph {i}: the quick brown fox jumps over the lazy dog while the river flows to the sea."
    for i in range(24)
)


class RawLoop:
    """The raw baseline in its own process, driven line by line so its runs interleave with the server's."""

    def __init__(self, path: Path, ctx: int, prompt_file: Path) -> None:
        args = [
            sys.executable,
            str(HERE / "raw_llama.py"),
            str(path),
            "--ctx",
            str(ctx),
            "--prompt-file",
            str(prompt_file),
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, command: str) -> dict[str, float]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the raw loop died (exit {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def eog_bias(http: httpx.Client, model: str) -> dict[str, float]:
    # Suppress end-of-generation so both sides decode exactly n tokens. SmolLM2/ChatML EOG ids: 0, 2.
    return {"0": -100.0, "2": -100.0} if "smollm2" in model else {}


def server_decode(http: httpx.Client, model: str, n_gen: int) -> float:
    """Streamed decode rate seen by the client: (tokens - 1) / (last text chunk - first text chunk).

    The server may carry several tokens in one chunk while text streams fast (see EventChannel), so the
    token count comes from the usage chunk, not from the number of chunks."""
    body = {
        "model": model,
        "prompt": "Once upon a time",
        "max_tokens": n_gen,
        "temperature": 0,
        "repeat_penalty": 1.0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "logit_bias": eog_bias(http, model),
    }
    stamps, tokens = [], 0
    with http.stream("POST", "/v1/completions", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            elif chunk["choices"] and chunk["choices"][0]["text"]:
                stamps.append(time.perf_counter())
    assert tokens == n_gen, f"expected {n_gen} tokens, got {tokens}"
    return (tokens - 1) / (stamps[-1] - stamps[0])


def server_prompt(http: httpx.Client, model: str, rep: int, n_prompt: int) -> float:
    """Prompt rate seen by the client: prompt tokens / time to the first streamed chunk (a fresh prompt)."""
    body = {"model": model, "prompt": f"{rep} {PROMPT}", "max_tokens": 1, "temperature": 0, "stream": True}
    t0 = time.perf_counter()
    with http.stream("POST", "/v1/completions", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                break
    return n_prompt / (time.perf_counter() - t0)


STORY_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "story": {"type": "string"}},
    "required": ["title", "story"],
}


def chat_rate(http: httpx.Client, model: str, *, structured: bool) -> float:
    """The server's own decode rate (`stats.tokens_per_second`) for a chat answer, with or without a
    JSON-schema grammar constraining every token."""
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "Write a long story about a dragon, as JSON."}],
        "max_tokens": 128,
        "temperature": 0.8,
        "seed": 1,
    }
    if structured:
        body["response_format"] = {"type": "json_schema", "json_schema": {"schema": STORY_SCHEMA}}
    reply = http.post("/api/v0/chat/completions", json=body).json()
    return float(reply["stats"]["tokens_per_second"])


def ttft(http: httpx.Client, model: str) -> float:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "stream": True}
    t0 = time.perf_counter()
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                return time.perf_counter() - t0
    return float("nan")


def wall(*args: str, env: dict[str, str], reps: int = 5) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run([LMS, *args], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def server_peak_rss_mb(server: Server) -> float:
    """The server's peak RSS plus its model workers' (docs/workers.md: one process per loaded model when
    `isolate_models` is on; pages both map, like libllama's, count twice)."""
    pid = json.loads((server.home / "openlms" / "server.json").read_text())["pid"]
    return sum(_peak_rss_mb(p) for p in [pid, *_worker_pids(pid)])


def _worker_pids(pid: int) -> list[int]:
    found = []
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.Error):
            if "openlms-worker" in child.cmdline():
                found.append(child.pid)
    return found


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--jit-model", default="gemma-3-270m")
    p.add_argument("--ctx", type=int, default=4096)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--n-gen", type=int, default=128)
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--isolate-models",
        type=int,
        choices=(0, 1),
        default=1,
        help="1 (the default): each model in its own worker process (docs/workers.md); 0: in the server",
    )
    a = p.parse_args()
    models = default_models_dir()
    with tempfile.TemporaryDirectory() as tmp:
        prompt_file = Path(tmp) / "prompt.txt"
        prompt_file.write_text(PROMPT)
        raw = RawLoop(find_model(models, a.model).path, a.ctx, prompt_file)
        server = start_server(
            Path(tmp), models, free_port(), settings={"isolate_models": bool(a.isolate_models)}
        )
        try:
            results = measure(server, raw, a)
        finally:
            server.lms("server", "stop", check=False)
            raw.close()
    report(results)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    return 0


def measure(server: Server, raw: RawLoop, a: argparse.Namespace) -> dict[str, float]:
    """Raw and server runs alternate, so drift in the machine's speed hits both. Rates: best of `reps`;
    ratios: median of the per-round ratios."""
    n_prompt = int(raw.ask("info")["n_prompt"])
    with httpx.Client(base_url=server.url, timeout=300) as http:
        load = http.post(
            "/api/v1/models/load", json={"model": a.model, "config": {"context_length": a.ctx}}
        ).json()
        server_decode(http, a.model, 8)  # warm-up
        raw_pp, srv_pp, raw_tg, srv_tg, sdk_tg, sdk_raw_tg = [], [], [], [], [], []
        host = f"127.0.0.1:{server.port}"
        for rep in range(a.reps):
            raw_pp.append(raw.ask(f"pp {rep}")["prompt_tokens_per_s"])
            srv_pp.append(server_prompt(http, a.model, 1000 + rep, n_prompt))
            raw_tg.append(raw.ask("tg")["decode_tokens_per_s"])
            srv_tg.append(server_decode(http, a.model, a.n_gen))
            sdk_raw_tg.append(raw.ask("tg")["decode_tokens_per_s"])
            sdk_tg.append(sdk_decode(host, a.model, a.n_gen))
        first_token = statistics.median(ttft(http, a.model) for _ in range(5))
        plain, constrained = [], []
        for _ in range(a.reps):
            plain.append(chat_rate(http, a.model, structured=False))
            constrained.append(chat_rate(http, a.model, structured=True))
        raw_rss, server_rss = raw.ask("info")["peak_rss_mb"], server_peak_rss_mb(server)
        http.post("/api/v1/models/unload", json={"instance_id": a.model})
        t0 = time.perf_counter()
        first = http.post(
            "/v1/chat/completions",
            json={"model": a.jit_model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
        )
        jit_first_request = time.perf_counter() - t0
        assert first.status_code == 200, first.text
    env = server.env
    return {
        "raw_decode_tps": max(raw_tg),
        "server_decode_tps": max(srv_tg),
        "decode_ratio": paired(srv_tg, raw_tg),
        "sdk_decode_tps": max(sdk_tg),
        "sdk_decode_ratio": paired(sdk_tg, sdk_raw_tg),
        "raw_prompt_tps": max(raw_pp),
        "server_prompt_tps": max(srv_pp),
        "prompt_ratio": paired(srv_pp, raw_pp),
        "n_prompt": n_prompt,
        "ttft_s": first_token,
        "chat_decode_tps": statistics.median(plain),
        "structured_decode_tps": statistics.median(constrained),
        "structured_ratio": paired(constrained, plain),
        "jit_first_request_s": jit_first_request,
        "load_time_s": load["load_time_seconds"],
        "lms_help_s": wall("--help", env=env),
        "lms_ls_s": wall("ls", env=env),
        "raw_peak_rss_mb": raw_rss,
        "server_peak_rss_mb": server_rss,
        "rss_overhead_mb": server_rss - raw_rss,
        "threads": len(os.sched_getaffinity(0)),
        "isolate_models": a.isolate_models,
    }


def paired(server: list[float], raw: list[float]) -> float:
    """Median of the per-round ratios: each round ran raw and server back to back, so the machine's
    drifting speed (shared VMs) cancels out better than in a ratio of bests."""
    return statistics.median(s / r for s, r in zip(server, raw, strict=True))


def report(r: dict[str, float]) -> None:
    rows = [
        f"threads: {r['threads']}   isolate_models: {r['isolate_models']}",
        f"decode   raw {r['raw_decode_tps']:7.1f} tok/s   server {r['server_decode_tps']:7.1f} tok/s (best)"
        f"   ratio {r['decode_ratio']:.3f} (median of paired runs; target >= 0.95)",
        f"decode via the lmstudio SDK {r['sdk_decode_tps']:7.1f} tok/s (best)"
        f"   ratio {r['sdk_decode_ratio']:.3f} against raw (median of paired runs)",
        f"prompt ({r['n_prompt']} tokens) raw {r['raw_prompt_tps']:7.1f} tok/s"
        f"   server {r['server_prompt_tps']:7.1f} tok/s"
        f"   ratio {r['prompt_ratio']:.3f} (median of paired runs; target >= 0.95)",
        f"TTFT (short chat) {r['ttft_s'] * 1000:.0f} ms;  JIT first request {r['jit_first_request_s']:.2f} s;"
        f"  load {r['load_time_s']:.2f} s",
        f"structured output (json_schema grammar) {r['structured_decode_tps']:.1f} tok/s vs plain chat"
        f" {r['chat_decode_tps']:.1f} tok/s   ratio {r['structured_ratio']:.3f} (median of paired runs)",
        f"lms --help {r['lms_help_s'] * 1000:.0f} ms;  lms ls {r['lms_ls_s'] * 1000:.0f} ms",
        f"peak RSS raw {r['raw_peak_rss_mb']:.0f} MB   server {r['server_peak_rss_mb']:.0f} MB"
        f"   overhead {r['rss_overhead_mb']:.0f} MB  (target <= 150; the server's part includes the prompt "
        "cache, which keeps earlier prompts' KV by design: prompt_cache_mb)",
    ]
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
