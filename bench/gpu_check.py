"""GPU offload check (issue 11 §4): what a `--gpu max` load really offloads, and the decode speed it gives.

Run by `bench/gpu_check.sh` on a machine with an NVIDIA GPU once llama-cpp-python is built with CUDA; it
also runs on a CPU build (everything then reads off / cpu / 0 layers, which is the point of the report).

    .venv/bin/python bench/gpu_check.py [--model smollm2-135m-instruct] [--streams 4] [--out FILE]

In one run, on the same server: load with `--gpu max`, read the offload from `lms ps --json` and
`/api/v0/models/{id}`, stream one chat and then `--streams` chats at once (aggregate tok/s), then load
again with `--gpu off` and stream the same single chat (the CPU figure to compare with). End of generation
is suppressed for SmolLM2 so every stream decodes exactly `--tokens` tokens.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from harness import Server, default_models_dir, free_port, start_server

PROMPT = "Write a long story about a lighthouse keeper and a storm."


def stream_chat(server: Server, model: str, n_tokens: int) -> dict[str, float]:
    """One streamed chat: completion tokens, time to first token and decode tok/s seen by the client."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": n_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if "smollm2" in model:  # ChatML end-of-generation ids: decode exactly n_tokens
        body["logit_bias"] = {"0": -100.0, "2": -100.0}
    start = time.perf_counter()
    first = last = 0.0
    tokens = 0
    with (
        httpx.Client(base_url=server.url, timeout=600) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = int(chunk["usage"]["completion_tokens"])
            if any((c.get("delta") or {}).get("content") for c in chunk.get("choices", [])):
                now = time.perf_counter()
                first = first or now
                last = now
    decode = (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0
    return {"tokens": tokens, "ttft_s": first - start, "wall_s": last - start, "decode_tps": decode}


def parallel_chats(server: Server, model: str, n_tokens: int, streams: int) -> dict[str, Any]:
    results: list[dict[str, float]] = [{} for _ in range(streams)]

    def one(i: int) -> None:
        results[i] = stream_chat(server, model, n_tokens)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    total = sum(int(r.get("tokens", 0)) for r in results)
    return {"streams": streams, "tokens": total, "wall_s": wall, "aggregate_tps": total / wall}


def offload_report(server: Server, model: str) -> dict[str, Any]:
    listed = server.lms_json("ps")
    [ps] = (
        [p for p in listed if isinstance(p, dict) and p.get("identifier") == model]
        if isinstance(listed, list)
        else [{}]
    )
    with server.http() as http:
        v0 = http.get(f"/api/v0/models/{model}").json()
        reply = http.post(
            "/api/v0/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        ).json()
    return {
        "ps": {"gpu": ps.get("gpu"), "gpuLayers": ps.get("gpuLayers")},
        "v0": v0.get("gpu_offload"),
        "runtime": reply.get("runtime", {}).get("name"),
    }


def measure(server: Server, model: str, gpu: str, n_tokens: int, streams: int) -> dict[str, Any]:
    server.lms("load", model, "--gpu", gpu, "--identifier", model, timeout=600)
    try:
        out: dict[str, Any] = {"gpu": gpu, "offload": offload_report(server, model)}
        stream_chat(server, model, 16)  # warm-up
        out["single"] = max(
            (stream_chat(server, model, n_tokens) for _ in range(2)), key=lambda r: r["decode_tps"]
        )
        if streams > 1:
            out["parallel"] = parallel_chats(server, model, n_tokens, streams)
        return out
    finally:
        server.unload_all()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--tokens", type=int, default=256, help="tokens decoded per stream")
    p.add_argument("--streams", type=int, default=4, help="parallel streams (1: none)")
    p.add_argument("--out", type=Path, default=Path("gpu-check.json"))
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="openlms-gpu-check-") as tmp:
        server = start_server(Path(tmp), default_models_dir(), free_port())
        try:
            runs = [
                measure(server, a.model, gpu, a.tokens, a.streams if gpu == "max" else 1)
                for gpu in ("max", "off")
            ]
        finally:
            server.lms("server", "stop", check=False)
    a.out.write_text(json.dumps(runs, indent=2))
    for run in runs:
        line = f"--gpu {run['gpu']:>3}: offload {json.dumps(run['offload'])}\n"
        single = run["single"]
        line += f"           single stream {single['decode_tps']:8.1f} tok/s (TTFT {single['ttft_s']:.3f} s)"
        if "parallel" in run:
            par = run["parallel"]
            line += f"\n           {par['streams']} streams {par['aggregate_tps']:8.1f} tok/s aggregate"
            line += f" ({par['aggregate_tps'] / run['single']['decode_tps']:.2f}x single)"
        print(line)
    gpu, cpu = runs[0]["single"]["decode_tps"], runs[1]["single"]["decode_tps"]
    print(f"GPU / CPU single-stream decode: {gpu / cpu:.2f}x   (details: {a.out})" if cpu else "")


if __name__ == "__main__":
    main()
