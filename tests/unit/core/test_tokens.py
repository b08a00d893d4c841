"""The API token store: plaintext shown once, only a hash on disk (mode 0600), expiry, revocation."""

from __future__ import annotations

import json
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openlms.core.tokens import (
    TOKEN_PATTERN,
    TokenError,
    TokenStore,
    TokenVerifier,
    hash_secret,
    parse_duration,
    read_or_create_local_secret,
    split_token,
    token_from_environment,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "openlms" / "tokens.json"


def test_create_returns_an_lm_studio_shaped_token_and_stores_only_its_hash(path: Path) -> None:
    created = TokenStore(path).create("ci")
    assert TOKEN_PATTERN.match(created.token)
    token_id, secret = split_token(created.token) or ("", "")
    text = path.read_text()
    assert secret not in text and created.token not in text
    entry = json.loads(text)["tokens"][0]
    assert entry["secretSha256"] == hash_secret(secret)
    assert entry["id"] == token_id == created.record.id
    assert created.record.prefix == f"sk-lm-{token_id}" and created.token.startswith(created.record.prefix)


def test_the_file_is_private(path: Path) -> None:
    TokenStore(path).create("a")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    TokenStore(path).create("b")  # rewritten: still private
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_tokens_are_distinct(path: Path) -> None:
    store = TokenStore(path)
    tokens = {store.create(f"t{i}").token for i in range(20)}
    assert len(tokens) == 20


def test_verify_accepts_the_token_and_refuses_anything_else(path: Path) -> None:
    created = TokenStore(path).create("ci")
    verifier = TokenVerifier(path)
    assert verifier.verify(created.token) == created.record
    token_id, secret = split_token(created.token) or ("", "")
    assert verifier.verify_parts(token_id, secret) == created.record
    assert verifier.verify_parts(f"sk-lm-{token_id}", secret) == created.record
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert verifier.verify(f"sk-lm-{token_id}:{wrong}") is None
    assert verifier.verify_parts(token_id, wrong) is None
    assert verifier.verify("sk-lm-AAAAAAAA:" + "a" * 20) is None
    assert verifier.verify("not a token") is None
    assert verifier.verify("") is None


def test_names_are_unique_and_checked(path: Path) -> None:
    store = TokenStore(path)
    store.create("ci")
    with pytest.raises(TokenError, match="already exists"):
        store.create("ci")
    for bad in ("", "   ", "x" * 65, "a\nb"):
        with pytest.raises(TokenError, match="printable"):
            store.create(bad)
    assert [record.name for record in store.records()] == ["ci"]


def test_expired_tokens_never_validate(path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    created = TokenStore(path).create("old", expires_in=timedelta(days=1), now=past)
    verifier = TokenVerifier(path)
    assert created.record.expired()
    assert verifier.verify(created.token) is None
    fresh = TokenStore(path).create("new", expires_in=timedelta(days=1))
    assert verifier.verify(fresh.token) == fresh.record
    assert verifier.verify(fresh.token, now=datetime.now(UTC) + timedelta(days=2)) is None
    listed = {record.name: record.public() for record in TokenStore(path).records()}
    assert listed["old"]["expired"] is True and listed["new"]["expired"] is False
    assert "secretSha256" not in listed["new"]


def test_revoke_by_name_id_or_prefix_applies_to_a_live_verifier(path: Path) -> None:
    store = TokenStore(path)
    tokens = [store.create(name) for name in ("a", "b", "c")]
    verifier = TokenVerifier(path)
    assert all(verifier.verify(created.token) for created in tokens)
    store.revoke("a")
    store.revoke(tokens[1].record.id)
    store.revoke(tokens[2].record.prefix)
    assert store.records() == []
    assert all(verifier.verify(created.token) is None for created in tokens)
    with pytest.raises(TokenError, match="No token named 'a'"):
        store.revoke("a")


def test_a_verifier_sees_tokens_created_after_it_started(path: Path) -> None:
    verifier = TokenVerifier(path)
    assert verifier.verify("sk-lm-AAAAAAAA:" + "a" * 20) is None  # no file yet
    created = TokenStore(path).create("later")
    assert verifier.verify(created.token) == created.record


def test_a_damaged_file_is_an_error_for_the_store_and_validates_nothing(path: Path) -> None:
    created = TokenStore(path).create("ci")
    verifier = TokenVerifier(path)
    assert verifier.verify(created.token) is not None
    path.write_text("{not json")
    with pytest.raises(TokenError, match="not valid JSON"):
        TokenStore(path).records()
    assert verifier.verify(created.token) is None
    path.write_text(json.dumps({"tokens": [{"id": "x"}]}))
    with pytest.raises(TokenError, match="damaged"):
        TokenStore(path).records()


def test_writes_are_atomic_and_concurrent_creates_lose_nothing(path: Path) -> None:
    store = TokenStore(path)
    errors: list[BaseException] = []

    def create(index: int) -> None:
        try:
            TokenStore(path).create(f"t{index}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(record.name for record in store.records()) == sorted(f"t{i}" for i in range(16))
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_parse_duration() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(weeks=2)
    assert parse_duration("1Y") == timedelta(days=365)
    for bad in ("", "30", "d", "0d", "-1d", "3 days", "1000y"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_local_secret_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "openlms" / "cli-secret"
    first = read_or_create_local_secret(path)
    assert len(first) >= 32
    assert read_or_create_local_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_from_environment() -> None:
    assert token_from_environment({}) is None
    assert token_from_environment({"LMSTUDIO_API_TOKEN": " t2 "}) == "t2"
    assert token_from_environment({"LM_API_TOKEN": "t1", "LMSTUDIO_API_TOKEN": "t2"}) == "t1"
