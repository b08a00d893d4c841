"""The load estimate (`lms load --estimate-only`, `store/memory.py`) against the measured memory of a
real load, for every default model at two context lengths (issue 12: within +/-15 %).

    .venv/bin/python bench/memory_estimate.py [--mmap] [--out memory_estimate.json]

Each (model, context) runs in a fresh child process, one at a time: it starts llama.cpp's backend, reads
its RSS, loads the model with the engine's own runtime (`LlamaBackend.load`, what a model worker process
runs when `isolate_models` is on, and the server itself when it is off), uses it, and reads its RSS
again: the growth is the measured memory. The estimate is the one the load check and
`POST /api/v1/models/estimate` compute (`load_limits.check_load`) for the same model, context and config.

What "memory" is, and how the bench compares like with like:
- Weights count in full, as LM Studio counts them. With mmap (the default of a load) only the pages a
  prediction touched would be resident, so the bench loads with `try_mmap` off unless `--mmap` is given.
  (With mmap on, llama.cpp faults the file in at load: the figures barely move.)
- An LLM is measured after the load and a first short prediction (8 tokens of a chat prompt). Its compute
  buffers are committed as prompts touch them: the "other" column, after a ~680-token prompt, shows what a
  full ubatch adds (the estimate counts one ubatch of activations).
- An embedding model is measured after an input as long as its context: llama.cpp's encode sizes its
  output buffer for a row of logits and one of embeddings per input token (60 MiB for MiniLM at 512
  tokens, more than its weights; gigabytes for a large-vocabulary embedding model at a long context), and
  the estimate counts that, since a guardrail that left it out would let such a model run out of memory on
  its first long input. The "other" column is the growth after one short sentence.
- `gpu` is "off", so the host's memory is compared on any machine; the prompt cache is off (it grows
  with conversations, not with the load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness import default_models_dir

CASES = (
    ("smollm2-135m-instruct", (2048, 8192)),
    ("gemma-3-270m", (2048, 8192)),
    ("text-embedding-all-minilm-l6-v2", (256, 512)),  # its trained context is 512
)
TARGET = 0.15
MIB = 1 << 20
LONG_TEXT = "The quick brown fox jumps over the lazy dog while the cat watches from the fence. " * 40


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mmap", action="store_true", help="load with mmap (the load default) instead")
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    p.add_argument("--child", nargs=2, metavar=("KEY", "CTX"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(asyncio.run(measure(a.child[0], int(a.child[1]), a.mmap))))
        return 0
    rows = [run_child(key, ctx, a.mmap) for key, contexts in CASES for ctx in contexts]
    print_table(rows, a.mmap)
    if a.out:
        a.out.write_text(json.dumps(rows, indent=2))
    return 0 if all(abs(r["error"]) <= TARGET for r in rows) else 1


def run_child(key: str, ctx: int, mmap: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", key, str(ctx)] + (["--mmap"] if mmap else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{key} at {ctx}: the measuring process failed:\n{done.stderr[-2000:]}")
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{key:34} ctx {ctx:5}: estimate {row['estimate_mib']:7.1f} MiB, measured "
          f"{row['measured_mib']:7.1f} MiB ({row['error']:+.1%})", flush=True)  # fmt: skip
    return row


async def measure(key: str, ctx: int, mmap: bool) -> dict[str, Any]:
    import psutil

    from openlms.core.types import GenerationRequest, LoadConfig, ModelKind, SamplingParams
    from openlms.engine.llama.runtime import LlamaBackend
    from openlms.services.load_limits import check_load, runtime_offloads
    from openlms.store import ModelCatalog

    catalog = ModelCatalog(default_models_dir())
    descriptor = catalog.find(key)
    if descriptor is None:
        raise SystemExit(f"model {key} not found; run .venv/bin/openlms-setup-models")
    meta = catalog.metadata(descriptor)
    config = LoadConfig(context_length=ctx, try_mmap=mmap, gpu="off")
    backend = LlamaBackend(prompt_cache_mb=0)
    plan = check_load(descriptor, meta, config, default_context=ctx, guardrails="off",
                      gpu_offload=runtime_offloads(backend.name))  # fmt: skip
    assert plan.estimate is not None
    proc = psutil.Process()
    before = proc.memory_info().rss
    runtime = backend.load(descriptor, config, lambda _fraction: None)
    if descriptor.kind is ModelKind.EMBEDDING:  # a sentence, then an input as long as the context
        await runtime.embed(["What is the capital of France?"])
        short = proc.memory_info().rss - before
        await runtime.embed([_fill(runtime, ctx)])
        long = proc.memory_info().rss - before
        measured, other = long, short
    else:  # a short chat prediction, then a long prompt
        chat = "<|im_start|>user\nHello, who are you?<|im_end|>\n<|im_start|>assistant\n"
        async for _event in runtime.generate(GenerationRequest(chat, SamplingParams(0.0), max_tokens=8)):
            pass
        short = proc.memory_info().rss - before
        async for _event in runtime.generate(GenerationRequest(LONG_TEXT, max_tokens=1)):
            pass
        long = proc.memory_info().rss - before
        measured, other = short, long
    runtime.close()
    e = plan.estimate
    return {
        "model": key,
        "context_length": ctx,
        "mmap": mmap,
        "estimate_mib": e.total_bytes / MIB,
        "weights_mib": e.weights_bytes / MIB,
        "kv_cache_mib": e.kv_cache_bytes / MIB,
        "compute_mib": e.compute_bytes / MIB,
        "runtime_mib": e.runtime_bytes / MIB,
        "measured_mib": measured / MIB,
        "other_mib": other / MIB,
        "error": (e.total_bytes - measured) / measured,
    }


def _fill(runtime: Any, ctx: int) -> str:
    """Text of as many words as fit the embedding model's context (its input limit)."""
    words = LONG_TEXT.split()
    n = ctx
    while len(runtime.tokenize(" ".join(words[:n]), add_special=True)) > ctx:
        n -= 8
    return " ".join(words[:n])


def print_table(rows: list[dict[str, Any]], mmap: bool) -> None:
    print(f"\nmmap {'on' if mmap else 'off'}; RSS growth in MiB: LLMs after the load and a short prediction "
          "(other: then a ~680-token prompt), embedding models after the load and an input as long as the "
          "context (other: after a short sentence only)")  # fmt: skip
    print("| model | context | estimate (weights + KV + compute + vocab) | measured | error | other |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        parts = " + ".join(
            f"{r[k]:.1f}" for k in ("weights_mib", "kv_cache_mib", "compute_mib", "runtime_mib")
        )
        estimate = f"{r['estimate_mib']:.1f} ({parts})"
        measured = f"{r['measured_mib']:.1f} | {r['error']:+.1%} | {r['other_mib']:.1f}"
        print(f"| {r['model']} | {r['context_length']} | {estimate} | {measured} |")
    worst = max(abs(r["error"]) for r in rows)
    print(f"\nlargest error {worst:.1%} (target {TARGET:.0%})")


if __name__ == "__main__":
    raise SystemExit(main())
