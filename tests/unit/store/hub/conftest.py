"""A FakeHub per test and a HubClient on it with fast backoff (no HF_TOKEN, no saved token)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from huggingface_hub import constants as hf_constants

from openlms.store.hub import HubClient
from tests.support.fake_hub import FakeHub


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    no_token = tmp_path_factory.mktemp("hf") / "token"  # no token saved by `hf auth login` either
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(no_token))
    with FakeHub() as fake:
        yield fake


@pytest.fixture
def client(hub: FakeHub) -> HubClient:
    return HubClient(hub.url, retries=3, backoff_s=0.01)
