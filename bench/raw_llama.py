"""Baseline: a minimal low-level llama-cpp-python loop with llama.cpp's C sampler chain (greedy).

Run as a subprocess by bench/run.py; prints one JSON object. This is what "raw llama.cpp speed" means
in the benchmark: no openlms code at all, ~95 % of llama.cpp's own speed (research/engine.md).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time

import llama_cpp.llama_cpp as C


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--ctx", type=int, default=4096)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--prompt-file", required=True)
    p.add_argument("--gen-prompt", default="Once upon a time")
    p.add_argument("--n-gen", type=int, default=128)
    a = p.parse_args()

    C.llama_backend_init()
    quiet = C.llama_log_callback(lambda *_: None)  # keep a reference: llama.cpp calls it later
    C.llama_log_set(quiet, ctypes.c_void_p(0))
    mp = C.llama_model_default_params()
    model = C.llama_model_load_from_file(a.model.encode(), mp)
    vocab = C.llama_model_get_vocab(model)
    cp = C.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch = a.ctx, 512, 512
    cp.n_threads = cp.n_threads_batch = a.threads
    cp.no_perf = True
    ctx = C.llama_init_from_model(model, cp)
    mem = C.llama_get_memory(ctx)
    batch = C.llama_batch_init(512, 0, 1)

    def tokenize(text: str) -> list[int]:
        data = text.encode()
        out = (C.llama_token * (len(data) + 8))()
        n = C.llama_tokenize(vocab, data, len(data), out, len(out), True, True)
        return list(out[:n])

    def decode(tokens: list[int], start: int) -> None:
        for i, t in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = t, start + i, 1
            batch.seq_id[i][0], batch.logits[i] = 0, 0
        batch.logits[len(tokens) - 1] = 1
        batch.n_tokens = len(tokens)
        assert C.llama_decode(ctx, batch) == 0

    with open(a.prompt_file) as f:
        prompt_text = f.read()
    sp = C.llama_sampler_chain_default_params()
    n_vocab = C.llama_vocab_n_tokens(vocab)
    eog = [t for t in range(n_vocab) if C.llama_vocab_is_eog(vocab, t)]
    buf = ctypes.create_string_buffer(256)

    def prompt_rate(rep: int) -> float:
        tokens = tokenize(f"{rep} {prompt_text}")
        C.llama_memory_clear(mem, True)
        t0 = time.perf_counter()
        for s in range(0, len(tokens), 512):
            decode(tokens[s : s + 512], s)
        return len(tokens) / (time.perf_counter() - t0)

    def decode_rate() -> float:
        chain = C.llama_sampler_chain_init(sp)
        bias = (C.llama_logit_bias * len(eog))()
        for i, t in enumerate(eog):
            bias[i].token, bias[i].bias = t, -1e9
        C.llama_sampler_chain_add(chain, C.llama_sampler_init_logit_bias(n_vocab, len(eog), bias))
        C.llama_sampler_chain_add(chain, C.llama_sampler_init_greedy())
        C.llama_memory_clear(mem, True)
        tokens = tokenize(a.gen_prompt)
        decode(tokens, 0)
        pos = len(tokens)
        stamps = []
        for _ in range(a.n_gen):
            tok = C.llama_sampler_sample(chain, ctx, -1)
            C.llama_token_to_piece(vocab, tok, buf, 256, 0, False)
            stamps.append(time.perf_counter())
            decode([tok], pos)
            pos += 1
        C.llama_sampler_free(chain)
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    # Line protocol on stdin so that bench/run.py can interleave raw and server measurements:
    # "pp N" -> prompt tok/s, "tg" -> decode tok/s, "info" -> n_prompt and peak RSS.
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "pp":
            result: dict[str, float] = {"prompt_tokens_per_s": prompt_rate(int(args[0]))}
        elif cmd == "tg":
            result = {"decode_tokens_per_s": decode_rate()}
        elif cmd == "info":
            result = {"n_prompt": len(tokenize(prompt_text)), "peak_rss_mb": peak_rss_mb()}
        else:
            break
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
