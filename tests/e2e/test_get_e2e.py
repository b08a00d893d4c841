"""`lms get` from the user's side: the real server (its Hub endpoint set with HF_ENDPOINT) against a
local fake Hugging Face Hub (tests/support/fake_hub.py), `lms` run as a subprocess.

Small random-weight GGUFs (~0.8 MB, tests/support/tiny_gguf.py) for the search, choice and fault cases;
the real SmolLM2 (~100 MB, served from the installed file) only for `lms get` -> `lms load` -> a chat.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import openai
import pytest

from tests.support.fake_hub import FakeHub
from tests.support.server import LMS, Server, free_port, start_server
from tests.support.tiny_gguf import write_tiny_llama_gguf

pytestmark = pytest.mark.e2e

PAUSED = "Download paused; run the same command again to resume."
GIANT = 10**15  # 1 PB: more than any disk here has free


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny GGUFs: three distinct single files, and a model split in two parts."""
    root = tmp_path_factory.mktemp("ggufs")
    files = {name: write_tiny_llama_gguf(root / f"{name}.gguf", seed=seed) for seed, name in enumerate("abc")}
    split_first = write_tiny_llama_gguf(root / "split" / "Split.gguf", split_max_tensors=10, seed=7)
    files["split1"] = split_first
    files["split2"] = Path(str(split_first).replace("-00001-of-00002", "-00002-of-00002"))
    return files


def hub_env(hub: FakeHub, hf_home: Path, token: str | None = None) -> Mapping[str, str]:
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_TELEMETRY": "1"}
    if token is not None:
        env["HF_TOKEN"] = token
    return env


@contextlib.contextmanager
def hub_server(tmp: Path, env: Mapping[str, str]) -> Iterator[Server]:
    """A real server whose environment has `env` (HF_ENDPOINT...), with an empty models directory."""
    models = tmp / "models"
    models.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        server = start_server(tmp, models, free_port())
    try:
        yield server
    finally:
        server.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    with FakeHub() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("get")
    with hub_server(tmp, hub_env(hub, tmp / "hf")) as srv:
        yield srv


def models_dir(server: Server) -> Path:
    return server.home.parent / "models"


def get(server: Server, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return server.lms("get", *args, check=False, timeout=timeout)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ls_keys(server: Server) -> list[str]:
    models = server.lms_json("ls")
    assert isinstance(models, list)
    return [m["key"] for m in models]


def installed(server: Server, repo: str) -> set[str]:
    folder = models_dir(server) / repo
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def range_start(headers: Mapping[str, str]) -> int:
    value = {k.lower(): v for k, v in headers.items()}.get("range", "bytes=0-")
    return int(value.removeprefix("bytes=").split("-")[0] or 0)


def add_quants(hub: FakeHub, repo: str, ggufs: dict[str, Path], stem: str) -> None:
    hub.add_repo(
        repo,
        {f"{stem}-Q2_K.gguf": ggufs["a"], f"{stem}-Q4_K_M.gguf": ggufs["b"], f"{stem}-Q8_0.gguf": ggufs["c"]},
    )


# -- search and choice -------------------------------------------------------------------------------


def test_search_lists_repos_and_yes_takes_the_first(
    server: Server, hub: FakeHub, ggufs: dict[str, Path]
) -> None:
    hub.add_repo(
        "zz-org/Zzsearch-Alpha-GGUF", {"Zzsearch-Alpha-Q4_K_M.gguf": ggufs["a"]}, downloads=50, likes=5
    )
    hub.add_repo(
        "zz-org/Zzsearch-Beta-GGUF", {"Zzsearch-Beta-Q4_K_M.gguf": ggufs["b"]}, downloads=10, likes=1
    )
    listed = get(server, "zzsearch")
    assert listed.returncode == 1, output(listed)
    assert "zz-org/Zzsearch-Alpha-GGUF" in listed.stdout and "zz-org/Zzsearch-Beta-GGUF" in listed.stdout
    assert "Several models match 'zzsearch'" in listed.stderr
    first = listed.stdout.splitlines()[1].split()[0]
    got = get(server, "zzsearch", "--yes")
    assert got.returncode == 0, output(got)
    assert f"Downloading {first}/" in got.stdout
    assert "Load it with: lms load " in got.stdout


def test_quantization_table_and_recommended_choice(
    server: Server, hub: FakeHub, ggufs: dict[str, Path]
) -> None:
    add_quants(hub, "zz-org/Quant-GGUF", ggufs, "Quant")
    table = get(server, "zz-org/Quant-GGUF")
    assert table.returncode == 1, output(table)
    rows = [line for line in table.stdout.splitlines() if "Quant-Q" in line]
    assert [row.split()[0] for row in rows] == ["Q2_K", "Q4_K_M", "Q8_0"]
    assert all(" fits" in row for row in rows) and "(recommended)" in rows[1]
    assert "lms get zz-org/Quant-GGUF@q4_k_m" in table.stderr
    got = get(server, "zz-org/Quant-GGUF", "-y")
    assert got.returncode == 0, output(got)
    assert installed(server, "zz-org/Quant-GGUF") == {"Quant-Q4_K_M.gguf"}
    key = got.stdout.split("lms load ")[-1].strip()
    assert key in ls_keys(server)
    assert "Downloaded to zz-org/Quant-GGUF/Quant-Q4_K_M.gguf." in got.stdout
    again = get(server, "zz-org/Quant-GGUF", "-y")
    assert again.returncode == 0, output(again)
    assert (
        f"Already downloaded (zz-org/Quant-GGUF/Quant-Q4_K_M.gguf). Load it with: lms load {key}"
        in again.stdout
    )


def test_at_quant_and_url_forms(server: Server, hub: FakeHub, ggufs: dict[str, Path]) -> None:
    add_quants(hub, "zz-org/Forms-GGUF", ggufs, "Forms")
    assert get(server, "zz-org/Forms-GGUF@q8_0").returncode == 0
    assert installed(server, "zz-org/Forms-GGUF") == {"Forms-Q8_0.gguf"}
    url = "https://huggingface.co/zz-org/Forms-GGUF/blob/main/Forms-Q2_K.gguf"
    got = get(server, url)
    assert got.returncode == 0, output(got)
    assert installed(server, "zz-org/Forms-GGUF") == {"Forms-Q8_0.gguf", "Forms-Q2_K.gguf"}
    got = get(server, "hf.co/zz-org/Forms-GGUF:Q4_K_M")
    assert got.returncode == 0, output(got)
    assert "Forms-Q4_K_M.gguf" in installed(server, "zz-org/Forms-GGUF")
    got = get(server, f"{hub.url}/zz-org/Forms-GGUF/resolve/main/Forms-Q4_K_M.gguf")  # the mirror's own URL
    assert got.returncode == 0, output(got)
    assert "Already downloaded (zz-org/Forms-GGUF/Forms-Q4_K_M.gguf)" in got.stdout
    assert sha256(models_dir(server) / "zz-org/Forms-GGUF/Forms-Q2_K.gguf") == sha256(ggufs["a"])
    missing = get(server, "zz-org/Forms-GGUF@q5_k_s")
    assert missing.returncode == 1
    assert "no Q5_K_S. Available: Q2_K, Q4_K_M, Q8_0." in missing.stderr


def test_split_parts_and_the_vision_projector_come_together(
    server: Server, hub: FakeHub, ggufs: dict[str, Path]
) -> None:
    part1, part2 = "Split-Q4_K_M-00001-of-00002.gguf", "Split-Q4_K_M-00002-of-00002.gguf"
    hub.add_repo("zz-org/Split-GGUF", {part1: ggufs["split1"], part2: ggufs["split2"]})
    got = get(server, "zz-org/Split-GGUF", "-y")
    assert got.returncode == 0, output(got)
    assert installed(server, "zz-org/Split-GGUF") == {part1, part2}
    hub.add_repo(
        "zz-org/Vision-GGUF", {"Vision-Q4_K_M.gguf": ggufs["a"], "mmproj-Vision-F16.gguf": ggufs["c"]}
    )
    got = get(server, "zz-org/Vision-GGUF", "-y")
    assert got.returncode == 0, output(got)
    assert installed(server, "zz-org/Vision-GGUF") == {"Vision-Q4_K_M.gguf", "mmproj-Vision-F16.gguf"}


def test_a_curated_name_resolves_to_its_hugging_face_source(
    server: Server, hub: FakeHub, ggufs: dict[str, Path]
) -> None:
    from openlms.store.curated import find_curated

    entry = find_curated("gemma-3-1b")
    assert entry is not None
    source = f"{entry.sources[0].user}/{entry.sources[0].repo}"
    hub.add_repo(source, {"gemma-3-1b-it-Q4_K_M.gguf": ggufs["a"], "gemma-3-1b-it-Q8_0.gguf": ggufs["b"]})
    got = get(server, "gemma-3-1b@q8_0")
    assert got.returncode == 0, output(got)
    assert f"Downloading {source}/gemma-3-1b-it-Q8_0.gguf" in got.stdout
    assert installed(server, source) == {"gemma-3-1b-it-Q8_0.gguf"}
    key = got.stdout.split("lms load ")[-1].strip()
    assert key in ls_keys(server)


def test_no_term_lists_staff_picks_and_mlx_is_refused(server: Server) -> None:
    picks = get(server)
    assert picks.returncode == 0, output(picks)
    assert "Download one with: lms get <name>" in picks.stdout
    mlx = get(server, "zz-anything", "--mlx")
    assert mlx.returncode == 1
    assert "openlms runs GGUF models (llama.cpp)" in mlx.stderr


# -- faults ------------------------------------------------------------------------------------------


def test_resume_after_a_cut_at_a_random_byte(server: Server, hub: FakeHub, ggufs: dict[str, Path]) -> None:
    name = "Cut-Q4_K_M.gguf"
    hub.add_repo("zz-org/Cut-GGUF", {name: ggufs["b"]})
    size = ggufs["b"].stat().st_size
    cut = random.randint(1, size - 1)
    hub.cut_after(name, cut)
    got = get(server, "zz-org/Cut-GGUF", "-y")
    assert got.returncode == 0, f"cut at {cut}: {output(got)}"
    gets = hub.file_gets(name)
    assert len(gets) >= 2, f"cut at {cut}"
    assert 0 < range_start(gets[-1].headers) <= cut, f"cut at {cut}"
    assert sha256(models_dir(server) / "zz-org/Cut-GGUF" / name) == sha256(ggufs["b"])


def test_ctrl_c_pauses_and_the_same_command_resumes(
    server: Server, hub: FakeHub, ggufs: dict[str, Path]
) -> None:
    name = "Slow-Q4_K_M.gguf"
    hub.add_repo("zz-org/Slow-GGUF", {name: ggufs["c"]})
    size = ggufs["c"].stat().st_size
    partial = models_dir(server) / ".openlms-downloads"
    hub.slow(size / 20)  # about 20 s for the whole file
    try:
        process = subprocess.Popen(
            [LMS, "get", "zz-org/Slow-GGUF", "-y"],
            env=server.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert wait_for(lambda: part_bytes(partial) > 0, 60), "no partial data appeared"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        hub.slow(None)
    assert process.returncode == 130, out + err
    assert PAUSED in err
    assert not installed(server, "zz-org/Slow-GGUF")
    assert wait_for(lambda: job_status(server, f"zz-org/Slow-GGUF/{name}") == "paused", 30)
    kept = part_bytes(partial)
    assert 0 < kept < size
    got = get(server, "zz-org/Slow-GGUF", "-y")
    assert got.returncode == 0, output(got)
    gets = hub.file_gets(name)
    assert range_start(gets[-1].headers) == kept  # resumed: the bytes already there were not fetched again
    assert sha256(models_dir(server) / "zz-org/Slow-GGUF" / name) == sha256(ggufs["c"])


def test_wrong_sha256_is_a_clear_error_and_nothing_is_listed(
    server: Server, hub: FakeHub, ggufs: dict[str, Path]
) -> None:
    name = "Bad-Q4_K_M.gguf"
    hub.add_repo("zz-org/Bad-GGUF", {name: ggufs["a"]})
    hub.corrupt(name)
    got = get(server, "zz-org/Bad-GGUF", "-y")
    assert got.returncode == 1, output(got)
    assert "sha256" in got.stderr.lower()
    assert len(got.stderr.strip().splitlines()) == 1
    assert not installed(server, "zz-org/Bad-GGUF")
    assert not [k for k in ls_keys(server) if "bad" in k.lower()]


def test_missing_repo(server: Server) -> None:
    got = get(server, "zz-org/No-Such-Repo-GGUF", "-y")
    assert got.returncode == 1, output(got)
    assert "zz-org/No-Such-Repo-GGUF" in got.stderr
    assert got.stderr.startswith("Error: ") and len(got.stderr.strip().splitlines()) == 1


def test_disk_full(server: Server, hub: FakeHub, ggufs: dict[str, Path]) -> None:
    """A model larger than the free disk: the listing says 1 PB (the bytes are never asked for)."""
    hub.add_repo("zz-org/Giant-GGUF", {"Giant-Q4_K_M.gguf": ggufs["a"]})
    giant = hub.repos["zz-org/Giant-GGUF"].files["Giant-Q4_K_M.gguf"]
    giant.size = GIANT
    got = get(server, "zz-org/Giant-GGUF@q4_k_m")
    assert got.returncode == 1, output(got)
    assert "disk" in got.stderr.lower()
    assert hub.file_gets("Giant-Q4_K_M.gguf") == []


def test_two_concurrent_gets_of_the_same_file_download_it_once(
    server: Server, hub: FakeHub, ggufs: dict[str, Path]
) -> None:
    name = "Twice-Q4_K_M.gguf"
    hub.add_repo("zz-org/Twice-GGUF", {name: ggufs["b"]})
    hub.slow(ggufs["b"].stat().st_size / 4)
    try:
        runs = [
            subprocess.Popen(
                [LMS, "get", "zz-org/Twice-GGUF", "-y"],
                env=server.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        results = [run.communicate(timeout=120) for run in runs]
    finally:
        hub.slow(None)
    assert [run.returncode for run in runs] == [0, 0], results
    assert all("Load it with: lms load" in out for out, _ in results)
    assert len(hub.file_gets(name)) == 1
    assert installed(server, "zz-org/Twice-GGUF") == {name}


def test_gated_repo_needs_hf_token(
    tmp_path: Path, server: Server, hub: FakeHub, ggufs: dict[str, Path]
) -> None:
    hub.add_repo("zz-org/Gated-GGUF", {"Gated-Q4_K_M.gguf": ggufs["a"]}, gated=True)
    hub.tokens.add("hf_e2e_token")
    refused = get(server, "zz-org/Gated-GGUF", "-y")
    assert refused.returncode == 1, output(refused)
    assert "HF_TOKEN" in refused.stderr
    with hub_server(tmp_path, hub_env(hub, tmp_path / "hf", token="hf_e2e_token")) as with_token:
        got = get(with_token, "zz-org/Gated-GGUF", "-y")
        assert got.returncode == 0, output(got)
        assert installed(with_token, "zz-org/Gated-GGUF") == {"Gated-Q4_K_M.gguf"}


# -- a real model ------------------------------------------------------------------------------------


def test_get_then_load_then_chat(server: Server, hub: FakeHub) -> None:
    repo = "zz-e2e/SmolLM2-135M-Instruct-GGUF"
    hub.add_smollm2(repo)
    got = get(server, repo, "-y", timeout=600)
    assert got.returncode == 0, output(got)
    key = got.stdout.split("lms load ")[-1].strip()
    server.lms("load", key, timeout=300)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0)
    reply = client.chat.completions.create(
        model=key, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert reply.choices[0].finish_reason in ("stop", "length")
    server.lms("unload", "--all", check=False)


# -- helpers -----------------------------------------------------------------------------------------


def job_status(server: Server, identifier: str) -> str | None:
    """The status of the server's download job for `identifier` (GET /api/v1/models/download/jobs)."""
    with server.http() as http:
        jobs = http.get("/api/v1/models/download/jobs").json()["jobs"]
    found = [job["status"] for job in jobs if identifier in (job.get("model"), job.get("identifier"))]
    return found[-1] if found else None


def part_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.part")) if folder.is_dir() else 0


def wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())
