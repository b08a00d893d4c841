"""What the model worker process costs: streamed decode through a server whose model runs in a worker
process (`isolate_models` on, the default) and through one that runs it in its own process, against the
raw llama.cpp loop, all three alternating in one run (docs/workers.md).

    .venv/bin/python bench/isolation.py [--model smollm2-135m-instruct] [--reps 7] [--n-gen 128]

Each round runs raw, isolated, raw, in-process back to back; ratios are medians of the per-round ratios,
so a machine whose speed drifts (shared 2-core VMs) hits both servers alike. Speed is measured here,
never asserted in tests.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import httpx
from harness import default_models_dir, find_model, free_port, start_server
from run import PROMPT, RawLoop, server_decode, server_peak_rss_mb


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--ctx", type=int, default=4096)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--n-gen", type=int, default=128)
    a = p.parse_args()
    models = default_models_dir()
    with tempfile.TemporaryDirectory() as tmp:
        prompt_file = Path(tmp) / "prompt.txt"
        prompt_file.write_text(PROMPT)
        raw = RawLoop(find_model(models, a.model).path, a.ctx, prompt_file)
        servers = {
            on: start_server(Path(tmp) / str(on), models, free_port(), settings={"isolate_models": on})
            for on in (True, False)
        }
        try:
            rates: dict[str, list[float]] = {"raw_iso": [], "iso": [], "raw_in": [], "in": []}
            clients = {on: httpx.Client(base_url=s.url, timeout=300) for on, s in servers.items()}
            for http in clients.values():
                load = {"model": a.model, "config": {"context_length": a.ctx}}
                assert http.post("/api/v1/models/load", json=load).status_code == 200
                server_decode(http, a.model, 8)  # warm-up
            for _ in range(a.reps):
                rates["raw_iso"].append(raw.ask("tg")["decode_tokens_per_s"])
                rates["iso"].append(server_decode(clients[True], a.model, a.n_gen))
                rates["raw_in"].append(raw.ask("tg")["decode_tokens_per_s"])
                rates["in"].append(server_decode(clients[False], a.model, a.n_gen))
            rss = {on: server_peak_rss_mb(s) for on, s in servers.items()}
            raw_rss = raw.ask("info")["peak_rss_mb"]
        finally:
            for s in servers.values():
                s.lms("server", "stop", check=False)
            raw.close()

    def ratio(x: str, y: str) -> float:
        return statistics.median(s / r for s, r in zip(rates[x], rates[y], strict=True))

    print(
        f"decode tok/s (best of {a.reps}): raw {max(rates['raw_iso'] + rates['raw_in']):.1f}, "
        f"worker process {max(rates['iso']):.1f}, in the server {max(rates['in']):.1f}"
    )
    print(
        f"ratio against raw (median of paired rounds; target >= 0.95): worker process "
        f"{ratio('iso', 'raw_iso'):.3f}, in the server {ratio('in', 'raw_in'):.3f}"
    )
    print(f"worker process / in the server (median of rounds): {ratio('iso', 'in'):.3f}")
    print(
        f"peak RSS MB: raw {raw_rss:.0f}, isolated server + worker {rss[True]:.0f}, "
        f"in-process server {rss[False]:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
