"""HubClient against the FakeHub: search, listings with sha256, errors, throttling, tokens."""

from __future__ import annotations

import hashlib
import socket

import pytest
from huggingface_hub import constants as hf_constants

from openlms.core.errors import HubAuthRequiredError, HubError, InvalidRequestError, ModelNotFoundError
from openlms.store.hub import HubClient
from tests.support.fake_hub import FakeHub

Q4 = b"q4" * 500
Q8 = b"q8" * 900


def _add(hub: FakeHub) -> None:
    hub.add_repo(
        "org/Foo-GGUF", {"Foo-Q4_K_M.gguf": Q4, "Foo-Q8_0.gguf": Q8, "README.md": b"hi"}, downloads=50
    )
    hub.add_repo("other/Foo-Small-GGUF", {"Foo-Small-Q4_0.gguf": b"x"}, downloads=900, likes=3)
    hub.add_repo("org/Foo-MLX", {"model.safetensors": b"x"}, tags=("mlx", "safetensors"), library_name="mlx")
    hub.add_repo("org/Bar-GGUF", {"Bar-Q4_K_M.gguf": b"y"})


def test_search_finds_gguf_repos_most_downloaded_first(hub: FakeHub, client: HubClient) -> None:
    _add(hub)
    hits = client.search("foo")
    assert [h.repo_id for h in hits] == ["other/Foo-Small-GGUF", "org/Foo-GGUF"]
    assert hits[0].downloads == 900 and hits[0].likes == 3
    assert hits[0].formats == frozenset({"gguf"})
    assert client.search("foo", limit=1)[0].repo_id == "other/Foo-Small-GGUF"
    assert client.search("nothing-like-this") == []


def test_search_other_formats_reports_them(hub: FakeHub, client: HubClient) -> None:
    _add(hub)
    hits = client.search("foo", formats=("gguf", "mlx"))
    by_id = {h.repo_id: h for h in hits}
    assert by_id["org/Foo-MLX"].formats == frozenset({"mlx", "safetensors"})
    assert len(hits) == 3


def test_listing_has_sizes_sha256_and_the_commit(hub: FakeHub, client: HubClient) -> None:
    _add(hub)
    listing = client.listing("org/Foo-GGUF")
    assert listing.repo_id == "org/Foo-GGUF"
    assert listing.revision == hub.repos["org/Foo-GGUF"].sha
    assert listing.formats == frozenset({"gguf"})
    assert not listing.gated
    assert [o.quantization for o in listing.options] == ["Q4_K_M", "Q8_0"]
    q4 = listing.options[0]
    assert q4.files[0].size == len(Q4)
    assert q4.files[0].sha256 == hashlib.sha256(Q4).hexdigest()
    assert any(r.query.get("blobs") == ["True"] or r.query.get("blobs") == ["true"] for r in hub.requests)


def test_listing_of_an_mlx_repo_has_no_options(hub: FakeHub, client: HubClient) -> None:
    _add(hub)
    listing = client.listing("org/Foo-MLX")
    assert listing.options == ()
    assert "mlx" in listing.formats


def test_missing_repo_is_model_not_found(hub: FakeHub, client: HubClient) -> None:
    with pytest.raises(ModelNotFoundError) as err:
        client.listing("org/Nope-GGUF")
    assert "org/Nope-GGUF" in err.value.message and "HF_TOKEN" in err.value.message


def test_missing_revision_is_model_not_found(hub: FakeHub, client: HubClient) -> None:
    _add(hub)
    with pytest.raises(ModelNotFoundError, match="revision"):
        client.listing("org/Foo-GGUF", revision="0" * 40)


def test_private_repo_needs_its_token(hub: FakeHub) -> None:
    hub.add_repo("me/Secret-GGUF", {"S-Q4_0.gguf": b"s"}, private=True)
    hub.tokens.add("hf_good")
    with pytest.raises(ModelNotFoundError):
        HubClient(hub.url, backoff_s=0.01).listing("me/Secret-GGUF")
    listing = HubClient(hub.url, token="hf_good", backoff_s=0.01).listing("me/Secret-GGUF")
    assert [o.name for o in listing.options] == ["S-Q4_0.gguf"]
    assert any(r.headers.get("authorization") == "Bearer hf_good" for r in hub.requests)


def test_gated_repo_is_listed_and_marked(hub: FakeHub, client: HubClient) -> None:
    hub.add_repo("meta/Gated-GGUF", {"G-Q4_K_M.gguf": b"g"}, gated=True)
    assert client.listing("meta/Gated-GGUF").gated
    assert client.search("gated")[0].gated


def test_throttled_listing_is_retried(hub: FakeHub, client: HubClient) -> None:
    _add(hub)
    hub.throttle(2, retry_after=0)
    assert len(client.listing("org/Foo-GGUF").options) == 2
    assert len([r for r in hub.requests if r.path.startswith("/api/models/")]) == 3


def test_throttled_beyond_retries_is_a_hub_error(hub: FakeHub, client: HubClient) -> None:
    _add(hub)
    hub.throttle(10, retry_after=0)
    with pytest.raises(HubError, match="429") as err:
        client.listing("org/Foo-GGUF")
    assert not isinstance(err.value, HubAuthRequiredError)


def test_unreachable_hub_names_the_address_and_hf_endpoint() -> None:
    client = HubClient("http://127.0.0.1:9", retries=1, backoff_s=0.01)
    with pytest.raises(HubError) as err:
        client.listing("org/Foo-GGUF")
    assert "http://127.0.0.1:9" in err.value.message and "HF_ENDPOINT" in err.value.message


def test_a_hub_name_that_does_not_resolve_fails_at_once_without_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Offline (no DNS): one clear error, not a minute of backoff; search and listings alike."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # behind a proxy, names are the proxy's to resolve
    client = HubClient("https://hub.invalid", retries=5, backoff_s=60.0)  # a retry would hang the test
    for call in (lambda: client.listing("org/Foo-GGUF"), lambda: client.search("foo")):
        with pytest.raises(HubError, match="does not resolve") as err:
            call()
        assert "https://hub.invalid" in err.value.message and "HF_ENDPOINT" in err.value.message


def test_a_hub_that_refuses_connections_fails_at_once_without_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A mirror that is down or a wrong port in HF_ENDPOINT: one clear error, not huggingface_hub's own
    backoff (which search cannot turn off)."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = HubClient(f"http://127.0.0.1:{port}", retries=5, backoff_s=60.0)
    for call in (lambda: client.listing("org/Foo-GGUF"), lambda: client.search("foo")):
        with pytest.raises(HubError, match="refused") as err:
            call()
        assert f"http://127.0.0.1:{port}" in err.value.message and "HF_ENDPOINT" in err.value.message


def test_endpoint_defaults_to_hf_endpoint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    assert HubClient().endpoint == "https://mirror.example"
    monkeypatch.delenv("HF_ENDPOINT")
    assert HubClient().endpoint == "https://huggingface.co"
    assert HubClient("http://x:1").endpoint == "http://x:1"


def test_an_invalid_token_says_so(hub: FakeHub) -> None:
    _add(hub)
    with pytest.raises(HubAuthRequiredError, match="invalid or expired") as err:
        HubClient(hub.url, token="hf_invalid_x", retries=0).listing("org/Foo-GGUF")
    assert "settings/tokens" in err.value.message


def test_a_repo_id_the_hub_refuses_is_an_invalid_request(client: HubClient) -> None:
    with pytest.raises(InvalidRequestError, match="not a valid Hugging Face repo id"):
        client.listing("org/bad--..name")


def test_a_hub_that_answers_nonsense_says_so(hub: FakeHub) -> None:
    hub.add_repo("org/Foo-GGUF", {"Foo-Q4_K_M.gguf": b"x"})
    hub.garbage_json = True
    with pytest.raises(HubError, match="cannot use"):
        HubClient(hub.url, retries=0).listing("org/Foo-GGUF")


def test_offline_mode_is_named_and_not_retried(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.add_repo("org/Foo-GGUF", {"Foo-Q4_K_M.gguf": b"x"})
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        HubClient(hub.url, retries=5, backoff_s=10).listing("org/Foo-GGUF")
    assert hub.requests == []
