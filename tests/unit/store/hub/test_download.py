"""download_option against the FakeHub: resume, verification, errors, disk, locks, progress."""

from __future__ import annotations

import dataclasses
import errno
import os
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import pytest
from huggingface_hub import constants as hf_constants

from openlms.core.errors import (
    DownloadError,
    DownloadVerificationError,
    HubAuthRequiredError,
    InsufficientDiskError,
)
from openlms.store.catalog import ModelCatalog
from openlms.store.hub import (
    DownloadCancelled,
    DownloadOption,
    DownloadProgress,
    HubClient,
    download_option,
    find_option,
    installed_path,
)
from openlms.store.hub.download import STAGING_DIR
from tests.support.fake_hub import SMOLLM2_DIR, SMOLLM2_REPO, FakeHub

REPO = "org/Foo-GGUF"
NAME = "Foo-Q4_K_M.gguf"


def _option(client: HubClient, quant: str = "Q4_K_M", repo: str = REPO) -> DownloadOption:
    option = find_option(client.listing(repo).options, quant)
    assert option is not None
    return option


def _staged(models: Path) -> list[str]:
    staging = models / STAGING_DIR
    return sorted(p.name for p in staging.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def _final_files(models: Path) -> list[str]:
    return sorted(
        str(p.relative_to(models)) for p in models.rglob("*") if p.is_file() and STAGING_DIR not in p.parts
    )


@pytest.fixture
def data() -> bytes:
    return random.Random(12).randbytes(3_000_000)


def test_download_places_files_verified_with_monotonic_progress(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data, "Foo-Q8_0.gguf": b"8" * 10, "mmproj-Foo-F16.gguf": b"p" * 1000})
    option = _option(client)
    seen: list[DownloadProgress] = []
    path = download_option(client, option, tmp_path, on_progress=seen.append)
    assert path == tmp_path / "org" / "Foo-GGUF" / NAME
    assert path.read_bytes() == data
    assert (path.parent / "mmproj-Foo-F16.gguf").read_bytes() == b"p" * 1000
    assert _final_files(tmp_path) == ["org/Foo-GGUF/Foo-Q4_K_M.gguf", "org/Foo-GGUF/mmproj-Foo-F16.gguf"]
    assert _staged(tmp_path) == []
    assert seen and all(p.total_bytes == option.size_bytes for p in seen)
    done = [p.downloaded_bytes for p in seen]
    assert done == sorted(done)
    assert seen[-1].downloaded_bytes == option.size_bytes and seen[-1].finalizing
    assert installed_path(option, tmp_path) == path


def test_already_installed_is_not_downloaded_again(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data})
    option = _option(client)
    assert installed_path(option, tmp_path) is None
    download_option(client, option, tmp_path)
    gets = len(hub.file_gets(NAME))
    seen: list[DownloadProgress] = []
    assert download_option(client, option, tmp_path, on_progress=seen.append).read_bytes() == data
    assert len(hub.file_gets(NAME)) == gets
    assert seen[-1].downloaded_bytes == option.size_bytes


def test_resume_after_a_cut_at_a_random_byte(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data})
    cut = random.randrange(1, len(data) - 1)
    hub.cut_after(NAME, cut)
    path = download_option(client, _option(client), tmp_path)
    assert path.read_bytes() == data
    gets = hub.file_gets(NAME)
    assert len(gets) == 2
    resumed_from = int(gets[1].headers["range"].removeprefix("bytes=").rstrip("-"))
    assert resumed_from == cut


def test_cut_twice_then_success_retries_with_range(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data})
    hub.cut_after(NAME, 1_500_000)
    hub.cut_after(NAME, 1_200_000)
    assert download_option(client, _option(client), tmp_path).read_bytes() == data
    assert [g.headers.get("range") for g in hub.file_gets(NAME)][1:] == ["bytes=1500000-", "bytes=2700000-"]


def test_resume_after_cancel_keeps_the_part(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data})
    option = _option(client)
    hub.slow(4_000_000)
    cancel = threading.Event()

    def stop_midway(progress: DownloadProgress) -> None:
        if progress.downloaded_bytes >= 1 << 20:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        download_option(client, option, tmp_path, on_progress=stop_midway, cancel=cancel)
    assert _final_files(tmp_path) == []
    assert _staged(tmp_path) == [f"{NAME}.part", f"{NAME}.part.json"]
    part_size = (tmp_path / STAGING_DIR / REPO / f"{NAME}.part").stat().st_size
    assert 0 < part_size < len(data)
    hub.slow(None)
    assert download_option(client, option, tmp_path).read_bytes() == data
    assert hub.file_gets(NAME)[-1].headers["range"] == f"bytes={part_size}-"
    assert _staged(tmp_path) == []


def _leave_part(hub: FakeHub, client: HubClient, option: DownloadOption, models: Path) -> int:
    """Start the download, cancel it after 1 MiB; returns the part's size."""
    hub.slow(4_000_000)
    cancel = threading.Event()

    def stop(progress: DownloadProgress) -> None:
        if progress.downloaded_bytes >= 1 << 20:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        download_option(client, option, models, on_progress=stop, cancel=cancel)
    hub.slow(None)
    return (models / STAGING_DIR / option.repo_id / f"{option.name}.part").stat().st_size


def test_a_new_listing_of_a_changed_file_restarts_the_part(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data})
    assert _leave_part(hub, client, _option(client), tmp_path) > 0
    new_data = data[::-1]
    hub.add_repo(REPO, {NAME: new_data})
    path = download_option(client, _option(client), tmp_path)
    assert path.read_bytes() == new_data
    assert "range" not in hub.file_gets(NAME)[-1].headers


def test_a_changed_etag_on_resume_restarts_the_part(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data}, lfs=False)
    option = dataclasses.replace(_option(client), revision="main")  # following a branch, not a commit
    assert option.files[0].sha256 is None
    _leave_part(hub, client, option, tmp_path)
    new_data = data[::-1]
    hub.add_repo(REPO, {NAME: new_data}, lfs=False)
    assert download_option(client, option, tmp_path).read_bytes() == new_data
    ranges = [g.headers.get("range") for g in hub.file_gets(NAME)]
    assert ranges[-2] is not None and ranges[-1] is None


def test_wrong_sha256_deletes_the_part_and_installs_nothing(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data})
    hub.corrupt(NAME)
    option = _option(client)
    with pytest.raises(DownloadVerificationError) as err:
        download_option(client, option, tmp_path)
    assert NAME in err.value.message and "corrupt" in err.value.message
    assert option.files[0].sha256 is not None and option.files[0].sha256 in err.value.message
    assert _final_files(tmp_path) == []
    assert _staged(tmp_path) == []
    assert installed_path(option, tmp_path) is None


def test_gated_repo_without_then_with_token(hub: FakeHub, data: bytes, tmp_path: Path) -> None:
    hub.add_repo("meta/Llama-Gated-GGUF", {NAME: data}, gated=True)
    hub.tokens.add("hf_granted")
    anonymous = HubClient(hub.url, retries=1, backoff_s=0.01)
    option = _option(anonymous, repo="meta/Llama-Gated-GGUF")
    with pytest.raises(HubAuthRequiredError) as err:
        download_option(anonymous, option, tmp_path)
    assert "HF_TOKEN" in err.value.message and f"{hub.url}/meta/Llama-Gated-GGUF" in err.value.message
    with pytest.raises(HubAuthRequiredError, match="not been granted"):
        download_option(HubClient(hub.url, token="hf_wrong", retries=1), option, tmp_path)
    assert _final_files(tmp_path) == []
    granted = HubClient(hub.url, token="hf_granted", retries=1, backoff_s=0.01)
    assert download_option(granted, option, tmp_path).read_bytes() == data


def test_hf_token_env_is_honoured(hub: FakeHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hub.add_repo("meta/Llama-Gated-GGUF", {NAME: b"llama"}, gated=True)
    hub.tokens.add("hf_from_env")
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    client = HubClient(hub.url, retries=0)
    assert (
        download_option(client, _option(client, repo="meta/Llama-Gated-GGUF"), tmp_path).read_bytes()
        == b"llama"
    )


def test_throttled_download_is_retried(hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path) -> None:
    hub.add_repo(REPO, {NAME: data})
    option = _option(client)
    hub.throttle(2, retry_after=0)
    assert download_option(client, option, tmp_path).read_bytes() == data
    assert len(hub.file_gets(NAME)) == 3


def test_failure_after_retries_keeps_the_partial_data(hub: FakeHub, data: bytes, tmp_path: Path) -> None:
    hub.add_repo(REPO, {NAME: data})
    client = HubClient(hub.url, retries=1, backoff_s=0.01)
    option = _option(client)
    hub.throttle(5, retry_after=0)
    with pytest.raises(DownloadError, match="resume"):
        download_option(client, option, tmp_path)
    assert _final_files(tmp_path) == []


def test_disk_full_is_refused_before_downloading(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data})
    option = _option(client)
    with pytest.raises(InsufficientDiskError) as err:
        download_option(client, option, tmp_path, disk_free=lambda _: 1_000_000)
    assert "disk space" in err.value.message and "1.0 MB free" in err.value.message
    assert hub.file_gets(NAME) == []
    assert download_option(client, option, tmp_path, disk_free=lambda _: 10**12).read_bytes() == data


def test_two_concurrent_downloads_of_one_file(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data})
    option = _option(client)
    hub.slow(6_000_000)
    results: list[Path | BaseException] = []

    def run() -> None:
        try:
            results.append(download_option(client, option, tmp_path))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [tmp_path / "org" / "Foo-GGUF" / NAME] * 2
    assert (tmp_path / "org" / "Foo-GGUF" / NAME).read_bytes() == data
    assert len(hub.file_gets(NAME)) == 1


def test_split_files_and_mmproj_download_as_one_model(
    hub: FakeHub, client: HubClient, tmp_path: Path
) -> None:
    parts = {f"Q8_0/Big-Q8_0-0000{i}-of-00002.gguf": os.urandom(5000 + i) for i in (1, 2)}
    hub.add_repo("org/Big-GGUF", {**parts, "mmproj-Big-F16.gguf": b"proj"})
    option = _option(client, "Q8_0", repo="org/Big-GGUF")
    path = download_option(client, option, tmp_path)
    assert path.name == "Big-Q8_0-00001-of-00002.gguf"
    assert _final_files(tmp_path) == [
        "org/Big-GGUF/Big-Q8_0-00001-of-00002.gguf",
        "org/Big-GGUF/Big-Q8_0-00002-of-00002.gguf",
        "org/Big-GGUF/mmproj-Big-F16.gguf",
    ]
    for name, content in parts.items():
        assert (path.parent / name.rsplit("/", 1)[-1]).read_bytes() == content


def test_a_corrupt_second_part_installs_nothing(hub: FakeHub, client: HubClient, tmp_path: Path) -> None:
    parts = {f"Big-Q8_0-0000{i}-of-00002.gguf": os.urandom(5000) for i in (1, 2)}
    hub.add_repo("org/Big-GGUF", parts)
    hub.corrupt("Big-Q8_0-00002-of-00002.gguf")
    with pytest.raises(DownloadVerificationError):
        download_option(client, _option(client, "Q8_0", repo="org/Big-GGUF"), tmp_path)
    assert _final_files(tmp_path) == []


_CHILD = """
import sys
from pathlib import Path
from openlms.store.hub import HubClient, download_option, find_option
client = HubClient(sys.argv[1], retries=0)
option = find_option(client.listing(sys.argv[2]).options, "Q4_K_M")
def report(progress):
    print(progress.downloaded_bytes, flush=True)
download_option(client, option, Path(sys.argv[3]), on_progress=report)
"""


def test_resume_after_the_process_is_killed(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data})
    hub.slow(2_000_000)
    root = Path(__file__).resolve().parents[4]
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, hub.url, REPO, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root / "src")},
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if int(line) >= 500_000:
                break
    finally:
        child.kill()
        child.wait(timeout=30)
    hub.slow(None)
    part = tmp_path / STAGING_DIR / REPO / f"{NAME}.part"
    kept = part.stat().st_size
    assert 0 < kept < len(data)
    assert _final_files(tmp_path) == []
    assert download_option(client, _option(client), tmp_path).read_bytes() == data
    assert hub.file_gets(NAME)[-1].headers["range"] == f"bytes={kept}-"


@pytest.mark.skipif(not SMOLLM2_DIR.is_dir(), reason="needs the installed SmolLM2 (openlms-setup-models)")
def test_smollm2_from_the_fake_hub_is_listed_only_once_complete(
    hub: FakeHub, client: HubClient, tmp_path: Path
) -> None:
    name = hub.add_smollm2()
    option = _option(client, "Q4_1", repo=SMOLLM2_REPO)
    catalog = ModelCatalog(tmp_path)
    listed_midway: list[list[str]] = []

    def look(progress: DownloadProgress) -> None:
        if not listed_midway and 0 < progress.downloaded_bytes < progress.total_bytes:
            listed_midway.append([m.key for m in catalog.models(refresh=True)])

    path = download_option(client, option, tmp_path, on_progress=look)
    assert listed_midway == [[]]
    assert path == tmp_path / SMOLLM2_REPO / name
    assert [m.key for m in catalog.models(refresh=True)] == ["smollm2-135m-instruct"]
    assert path.stat().st_size == (SMOLLM2_DIR / name).stat().st_size


def test_a_xet_backed_repo_downloads_over_plain_http_with_resume(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data}, xet=True)
    hub.cut_after(NAME, 777_777)
    assert download_option(client, _option(client), tmp_path).read_bytes() == data
    cdn = [r for r in hub.requests if r.path.startswith("/cdn/")]
    assert [r.headers.get("range") for r in cdn] == [None, "bytes=777777-"]
    assert not any("xet" in r.path for r in hub.requests)
    state = tmp_path / STAGING_DIR / REPO / f"{NAME}.part.json"
    assert not state.exists()


def test_a_file_that_keeps_changing_gives_up(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path
) -> None:
    hub.add_repo(REPO, {NAME: data}, lfs=False)
    option = dataclasses.replace(_option(client), revision="main")
    _leave_part(hub, client, option, tmp_path)
    hub.vary_etag(NAME)
    for _ in range(10):  # every other GET (the ones without Range) is cut, so a part is there to resume
        hub.cut_after(NAME, 500_000)
    with pytest.raises(DownloadError, match="keeps changing"):
        download_option(client, option, tmp_path)
    assert _final_files(tmp_path) == []


def test_disk_filling_up_midway_keeps_the_part_and_says_so(
    hub: FakeHub, client: HubClient, data: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add_repo(REPO, {NAME: data})
    real_open = Path.open

    class FullDisk:
        def __init__(self, inner: IO[bytes]) -> None:
            self.inner, self.written = inner, 0

        def write(self, chunk: bytes) -> int:
            if self.written > 1_000_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(chunk)
            return self.inner.write(chunk)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.close()

    def fake_open(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(self, mode, *args, **kwargs)
        return FullDisk(handle) if self.suffix == ".part" and mode in ("ab", "wb") else handle

    monkeypatch.setattr(Path, "open", fake_open)
    with pytest.raises(InsufficientDiskError, match="disk filled up") as err:
        download_option(client, _option(client), tmp_path)
    assert "resume" in err.value.message
    monkeypatch.undo()
    kept = (tmp_path / STAGING_DIR / REPO / f"{NAME}.part").stat().st_size
    assert kept > 1_000_000
    assert download_option(client, _option(client), tmp_path).read_bytes() == data
    assert hub.file_gets(NAME)[-1].headers["range"] == f"bytes={kept}-"


def test_the_token_saved_by_hf_auth_login_is_honoured(hub: FakeHub, tmp_path: Path) -> None:
    hub.add_repo("meta/Llama-Gated-GGUF", {NAME: b"llama"}, gated=True)
    hub.tokens.add("hf_saved")
    Path(hf_constants.HF_TOKEN_PATH).write_text("hf_saved\n")
    client = HubClient(hub.url, retries=0)
    option = _option(client, repo="meta/Llama-Gated-GGUF")
    assert download_option(client, option, tmp_path).read_bytes() == b"llama"


def test_a_stalled_connection_reconnects_with_range(hub: FakeHub, data: bytes, tmp_path: Path) -> None:
    hub.add_repo(REPO, {NAME: data})
    client = HubClient(hub.url, retries=2, backoff_s=0.01, read_timeout_s=0.3)
    hub.stall_after(NAME, 654_321, seconds=3)
    assert download_option(client, _option(client), tmp_path).read_bytes() == data
    assert hub.file_gets(NAME)[-1].headers["range"] == "bytes=654321-"


def test_a_pause_during_a_stall_is_noticed(hub: FakeHub, data: bytes, tmp_path: Path) -> None:
    hub.add_repo(REPO, {NAME: data})
    client = HubClient(hub.url, retries=5, backoff_s=0.01, read_timeout_s=0.3)
    for _ in range(20):  # every reconnection stalls again
        hub.stall_after(NAME, 100_000, seconds=5)
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    with pytest.raises(DownloadCancelled):
        download_option(client, _option(client), tmp_path, cancel=cancel)
    timer.join()
    assert 2 <= len(hub.file_gets(NAME)) < 20
    assert (tmp_path / STAGING_DIR / REPO / f"{NAME}.part").stat().st_size >= 200_000
