"""The FakeHub speaks the Hub's protocol as huggingface_hub's own calls expect it."""

from __future__ import annotations

from pathlib import Path

import httpx
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url

from tests.support.fake_hub import FakeHub

DATA = b"gguf" * 2500


def test_huggingface_hub_downloads_metadata_and_tree(hub: FakeHub, tmp_path: Path) -> None:
    hub.add_repo("org/Foo-GGUF", {"Foo-Q4_K_M.gguf": DATA, "sub/x.txt": b"x"})
    meta = get_hf_file_metadata(hf_hub_url("org/Foo-GGUF", "Foo-Q4_K_M.gguf", endpoint=hub.url), token=False)
    assert meta.size == len(DATA) and meta.commit_hash == hub.repos["org/Foo-GGUF"].sha
    assert meta.xet_file_data is None
    path = hf_hub_download(
        "org/Foo-GGUF", "Foo-Q4_K_M.gguf", endpoint=hub.url, local_dir=tmp_path, token=False
    )
    assert Path(path).read_bytes() == DATA
    tree = HfApi(endpoint=hub.url, token=False).list_repo_tree("org/Foo-GGUF")
    assert sorted(e.path for e in tree) == ["Foo-Q4_K_M.gguf", "sub/x.txt"]


def test_range_requests_get_206_with_content_range(hub: FakeHub) -> None:
    hub.add_repo("org/Foo-GGUF", {"Foo-Q4_K_M.gguf": DATA})
    url = f"{hub.url}/org/Foo-GGUF/resolve/main/Foo-Q4_K_M.gguf"
    part = httpx.get(url, headers={"Range": "bytes=100-"})
    assert part.status_code == 206 and part.content == DATA[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(DATA) - 1}/{len(DATA)}"
    assert httpx.get(url, headers={"Range": f"bytes={len(DATA)}-"}).status_code == 416
