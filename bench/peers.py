"""openlms against llama.cpp's own `llama-server`, in one run, on the same model, threads and context.

    .venv/bin/python bench/peers.py [--quick] [--out peers.json] [--reps 3] [--llama-server PATH]

llama-server is built by scripts/build-llama-server.sh (the llama.cpp sources vendored in the sdist of the
installed llama-cpp-python, the wheel's CMake flags; cached under ~/.cache/openlms). Both servers load the
default model (SmolLM2-135M Q4_1) with the same context (--ctx, one KV cache every sequence may fill:
llama-server `-c CTX -np PARALLEL --kv-unified`), `parallel` predictions, the same threads (this process's
CPUs, as openlms's default), flash attention and batch sizes at each one's default. The workloads run
alternately (openlms, llama-server; the order flips every round so drift hits both), clients on this
machine:
  single stream    decode tok/s of a streamed completion (temperature 0, EOS suppressed), also against the
                   raw low-level llama.cpp loop of bench/run.py (alternated with the two servers)
  N streams        1, 4 and 16 concurrent streamed chats (distinct prompts, temperature 0.7, max_tokens, EOS
                   suppressed so every stream does the same work): aggregate tok/s, streams complete,
                   TTFT p50/p95
  conversations    4 interleaved multi-turn chats with ~2,000-token system prompts (--system shared: one
                   prompt for all, cold = a fresh prompt; distinct: one each, cold = first turns):
                   follow-up TTFT / cold TTFT
  memory           openlms's process tree RSS (server + model workers) with the model loaded at parallel
                   4, against the raw loop's peak RSS; the KV cache is reported apart
Prints one table with the ratios against the targets of issue 11 and writes JSON to --out. Ratios: the
median of the per-round ratios; rates: the median over rounds. Speed is never asserted in tests: this
folder is not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import peer_report
import psutil
from harness import Server, default_models_dir, find_model, free_port, start_server
from peer_workloads import concurrent_chats, conversations, decode_rate
from run import PROMPT, RawLoop

from openlms.store.gguf_meta import read_gguf_metadata
from openlms.store.memory import kv_bytes_per_token

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "scripts" / "build-llama-server.sh"
SIDES = ("openlms", "llama-server")


def build_llama_server() -> Path:
    """The cached llama-server binary, built first when missing (the script prints its path last)."""
    print("llama-server: scripts/build-llama-server.sh (cached after the first build)", file=sys.stderr)
    out = subprocess.run(["bash", str(BUILD), sys.executable], stdout=subprocess.PIPE, text=True, check=False)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise SystemExit(f"building llama-server failed (exit {out.returncode}); see the messages above")
    return Path(lines[-1])


class LlamaServer:
    """llama.cpp's server in a process of its own, logging to a file; `rss_mb` while it runs."""

    def __init__(
        self, binary: Path, model: Path, alias: str, ctx: int, parallel: int, threads: int, log: Path
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, check=False).stdout
        self.unified = "--kv-unified" in help_text
        args = [
            str(binary),
            "-m",
            str(model),
            "--alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        args += ["-c", str(ctx), "-np", str(parallel), "-t", str(threads), "-tb", str(threads)]
        # Without a unified cache each slot gets ctx / parallel: then give it ctx per slot instead.
        args += ["--kv-unified"] if self.unified else ["-c", str(ctx * parallel)]
        args += ["--no-webui"] if "--no-webui" in help_text else []
        with log.open("w") as f:
            self.proc = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.args = args
        self._wait_ready()

    def _wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"llama-server exited ({self.proc.returncode}); log:\n{self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"llama-server not ready in {timeout:.0f}s; log: {self.log}")

    def rss_mb(self) -> dict[str, Any]:
        return tree_rss_mb(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tree_rss_mb(pid: int) -> dict[str, Any]:
    """RSS now and peak (VmHWM) in MB, summed over the process and its descendants (model workers)."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    now = peak = 0.0
    for proc in procs:
        try:
            now += proc.memory_info().rss / 2**20
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak += next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM:")) / 1024
        except (psutil.Error, OSError, StopIteration):
            continue
    names = []
    for proc in procs:
        try:
            names.append(proc.name())
        except psutil.Error:
            continue
    return {"rss_mb": now, "peak_rss_mb": peak, "processes": len(procs), "names": names}


def openlms_pid(server: Server) -> int:
    return int(json.loads((server.home / "openlms" / "server.json").read_text())["pid"])


def load_openlms(server: Server, model: str, ctx: int, parallel: int) -> dict[str, Any]:
    """(Re)load `model` with this context and parallel predictions; returns the loaded instance's config."""
    with httpx.Client(base_url=server.url, timeout=300) as http:
        http.post("/api/v1/models/unload", json={"instance_id": model})
        reply = http.post(
            "/api/v1/models/load",
            json={"model": model, "config": {"context_length": ctx, "parallel": parallel}},
        )
        if reply.status_code != 200:
            raise SystemExit(f"openlms load failed: {reply.status_code} {reply.text}")
        listing = http.get("/api/v1/models").json()
    for entry in listing.get("models", listing.get("data", [])):
        for inst in entry.get("loaded_instances") or []:
            if inst.get("id") == model:
                return dict(inst.get("config") or {})
    return {}


def warm_up(url: str, model: str) -> None:
    asyncio.run(decode_rate(url, model, 8))


def alternate(name: str, rounds: int, run: Callable[[str, int], Any]) -> dict[str, list[Any]]:
    """run(side, round) for both sides every round, openlms first in even rounds, llama-server in odd;
    each result is logged as it comes (a long run shows its progress)."""
    out: dict[str, list[Any]] = {side: [] for side in SIDES}
    for r in range(rounds):
        for side in SIDES if r % 2 == 0 else SIDES[::-1]:
            out[side].append(run(side, r))
            print(f"  {name} round {r + 1}/{rounds} {side}: {brief(out[side][-1])}", file=sys.stderr)
    return out


def brief(result: Any) -> str:
    if isinstance(result, float):
        return f"{result:.1f} tok/s"
    keys = ("aggregate_tps", "completed", "ttft_p50_s", "cold_ttft_s", "follow_up_ttft_s", "requests_failed")
    return ", ".join(f"{k} {result[k]:.3g}" for k in keys if k in result)


def measure_streams(urls: dict[str, str], a: argparse.Namespace, raw: RawLoop) -> dict[str, Any]:
    """Single-stream decode (with the raw loop alongside) and the N-concurrent-streams rounds."""
    raw_tps: list[float] = []

    def single(side: str, r: int) -> float:
        if side == "openlms":  # the raw loop runs right before openlms's run every round
            raw_tps.append(float(raw.ask("tg")["decode_tokens_per_s"]))
        try:
            return asyncio.run(decode_rate(urls[side], a.model, a.n_gen))
        except RuntimeError as e:  # counted as no rate (NaN), the run goes on
            print(f"  {side}: {e}", file=sys.stderr)
            return float("nan")

    results: dict[str, Any] = {"single": alternate("single stream", a.reps, single)}
    results["single"]["raw"] = raw_tps
    for n in a.streams:

        def chats(side: str, r: int, n: int = n) -> dict[str, Any]:
            return asyncio.run(
                concurrent_chats(
                    urls[side], a.model, n, max_tokens=a.max_tokens, temperature=a.temperature,
                    seed=r, ignore_eos=not a.allow_eos,
                )
            )  # fmt: skip

        results[f"streams_{n}"] = alternate(f"{n} streams", a.reps, chats)
    return results


def measure_conversations(urls: dict[str, str], a: argparse.Namespace) -> dict[str, list[Any]]:
    def run(side: str, r: int) -> dict[str, Any]:
        return asyncio.run(
            conversations(
                urls[side], a.model, count=a.conversations, turns=a.turns, system_tokens=a.system_tokens,
                nonce=f"{side[0]}{r}", shared=a.system == "shared",
            )
        )  # fmt: skip

    return alternate("conversations", a.conv_reps, run)


def memory(
    server: Server, raw: RawLoop, llama: LlamaServer, model_path: Path, kv_cells: int
) -> dict[str, Any]:
    per_token = kv_bytes_per_token(read_gguf_metadata(model_path), "f16", "f16")
    tree = tree_rss_mb(openlms_pid(server))
    raw_peak = float(raw.ask("info")["peak_rss_mb"])
    return {
        "openlms_tree": tree,
        "llama_server": llama.rss_mb(),
        "raw_peak_rss_mb": raw_peak,
        "kv_bytes_per_token": per_token,
        "kv_cache_mb": per_token * kv_cells / 2**20,
        "overhead_mb": tree["rss_mb"] - raw_peak,
    }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--ctx", type=int, default=4096, help="context, total over the sequences (both servers)")
    p.add_argument("--parallel", type=int, default=4)
    p.add_argument("--reps", type=int, default=3, help="rounds of the single and N-streams workloads")
    p.add_argument("--streams", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16])
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--n-gen", type=int, default=128, help="tokens of the single-stream decode runs")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--allow-eos", action="store_true", help="let streams end early (unequal work)")
    p.add_argument("--conversations", type=int, default=4)
    p.add_argument("--turns", type=int, default=3)
    p.add_argument("--system-tokens", type=int, default=2000)
    p.add_argument("--system", choices=["shared", "distinct"], default="shared")
    p.add_argument("--conv-reps", type=int, default=2, help="rounds of the conversations workload")
    p.add_argument("--llama-server", type=Path, help="a llama-server binary (default: build/cached one)")
    p.add_argument("--quick", action="store_true", help="a short smoke run (1 round, short outputs)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    a = p.parse_args()
    if a.quick:
        a.reps, a.conv_reps, a.max_tokens, a.n_gen, a.turns, a.system_tokens = 1, 1, 24, 32, 2, 600
    return a


def main() -> int:
    a = parse_args()
    binary = a.llama_server or build_llama_server()
    models = default_models_dir()
    model_path = find_model(models, a.model).path
    threads = len(psutil.Process().cpu_affinity() or []) or psutil.cpu_count() or 1
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        prompt_file = tmp / "prompt.txt"
        prompt_file.write_text(PROMPT)
        raw = RawLoop(model_path, a.ctx, prompt_file)
        server = start_server(tmp, models, free_port())
        llama: LlamaServer | None = None
        try:
            config = load_openlms(server, a.model, a.ctx, a.parallel)
            llama = LlamaServer(
                binary, model_path, a.model, a.ctx, a.parallel, threads, tmp / "llama-server.log"
            )
            urls = {"openlms": server.url, "llama-server": llama.url}
            for url in urls.values():
                warm_up(url, a.model)
            # the model loaded at `parallel`, before the workloads fill the host-RAM prompt cache
            mem = memory(server, raw, llama, model_path, int(config.get("context_length") or a.ctx))
            print("workloads: single stream and concurrent streams", file=sys.stderr)
            streams = measure_streams(urls, a, raw)
            mem["openlms_tree_after_streams"] = tree_rss_mb(openlms_pid(server))
            mem["llama_server_after_streams"] = llama.rss_mb()
            print("workload: interleaved conversations", file=sys.stderr)
            convs = measure_conversations(urls, a)
            mem["openlms_tree_after_conversations"] = tree_rss_mb(openlms_pid(server))
            mem["llama_server_after_conversations"] = llama.rss_mb()
            llama_args, llama_log = llama.args, llama.log.read_text()
        finally:
            if llama:
                llama.stop()
            server.lms("server", "stop", check=False)
            raw.close()
    setup = {
        "model": a.model,
        "model_path": str(model_path),
        "ctx": a.ctx,
        "parallel": a.parallel,
        "threads": threads,
        "openlms_config": config,
        "llama_server_args": llama_args[1:],
        "llama_server_kv_unified": "--kv-unified" in llama_args,
        "llama_server_slots_log": [line for line in llama_log.splitlines() if "n_ctx_slot" in line][:2],
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "elapsed_s": time.time() - started,
    }
    results = peer_report.summarize(setup, streams, convs, mem, a.streams)
    print(peer_report.table(results))
    if a.out:
        a.out.write_text(json.dumps(results, indent=2, default=float))
        print(f"JSON: {a.out}", file=sys.stderr)
    return 0 if peer_report.all_served(results) else 1


if __name__ == "__main__":
    sys.exit(main())
