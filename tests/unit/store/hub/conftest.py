"""A FakeHub per test and a HubClient on it with fast backoff (no HF_TOKEN from the environment)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openlms.store.hub import HubClient
from tests.support.fake_hub import FakeHub


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    with FakeHub() as fake:
        yield fake


@pytest.fixture
def client(hub: FakeHub) -> HubClient:
    return HubClient(hub.url, retries=3, backoff_s=0.01)
