"""API tokens ("Require Authentication"): created once, stored hashed in `<home>/openlms/tokens.json`.

A token has LM Studio's shape, `sk-lm-<id>:<secret>` (8 and 20 letters or digits), so that the
`lmstudio` SDKs that parse tokens (Python 1.6+, JS) split it into their websocket handshake's
`clientIdentifier` (the id) and `clientPasskey` (the secret). The 20-character secret carries about
119 bits of entropy, drawn by `secrets`; the file keeps only its SHA-256 (a salt adds nothing to a
random secret), so a leaked file grants nothing. The id is not secret: it is the visible prefix that
`lms token ls` shows.

`TokenStore` reads and writes the file (mode 0600, atomic replace, a lock file against two writers);
`TokenVerifier` is the server's view: it re-reads the file only when its stat changes, so tokens
created or revoked with `lms token` apply to a running server at its next request.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from openlms.core.fsutil import atomic_write_text

TOKEN_PREFIX = "sk-lm-"
ID_LENGTH = 8
SECRET_LENGTH = 20
MAX_NAME_LENGTH = 64
TOKEN_PATTERN = re.compile(
    rf"^{TOKEN_PREFIX}(?P<id>[A-Za-z0-9]{{{ID_LENGTH}}}):(?P<secret>[A-Za-z0-9]{{{SECRET_LENGTH}}})$"
)
_ALPHABET = string.ascii_letters + string.digits
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwy])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_FILE_VERSION = 1
# Environment variables a client reads a token from: LM Studio's CLI/JS name, then the Python SDK's.
TOKEN_ENV_VARS = ("LM_API_TOKEN", "LMSTUDIO_API_TOKEN")


class TokenError(ValueError):
    """A token operation that cannot be done (duplicate name, unknown token, unreadable file)."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One stored token: everything except its secret."""

    id: str
    name: str
    secret_sha256: str
    created_at: datetime
    expires_at: datetime | None = None

    @property
    def prefix(self) -> str:
        """The visible start of the token (`sk-lm-<id>`), enough to recognise it."""
        return f"{TOKEN_PREFIX}{self.id}"

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and (now or datetime.now(UTC)) >= self.expires_at

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        """What `lms token ls --json` prints: no hash."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "createdAt": _iso(self.created_at),
            "expiresAt": _iso(self.expires_at) if self.expires_at else None,
            "expired": self.expired(now),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "secretSha256": self.secret_sha256,
            "createdAt": _iso(self.created_at),
            "expiresAt": _iso(self.expires_at) if self.expires_at else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> TokenRecord:
        if not isinstance(data, dict):
            raise TokenError("a token entry is not an object")
        try:
            expires = data.get("expiresAt")
            return cls(
                id=str(data["id"]),
                name=str(data["name"]),
                secret_sha256=str(data["secretSha256"]),
                created_at=_parse_time(data["createdAt"]),
                expires_at=_parse_time(expires) if expires else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenError(f"a token entry is malformed ({exc})") from None


@dataclass(frozen=True, slots=True)
class CreatedToken:
    record: TokenRecord
    token: str  # the plaintext, shown once


def split_token(token: str) -> tuple[str, str] | None:
    """`(id, secret)` of a well-formed token, else None."""
    match = TOKEN_PATTERN.match(token.strip())
    return (match["id"], match["secret"]) if match else None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `1y`, `45s` -> a timedelta (ValueError otherwise)."""
    match = _DURATION.match(text.lower())
    if not match or int(match[1]) <= 0:
        raise ValueError(
            f"'{text}' is not a duration: use a positive number and a unit, e.g. 30d, 12h, 90m, 2w, 1y."
        )
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds > 100 * 365 * 86400:
        raise ValueError(f"'{text}' is too long (at most 100 years).")
    return timedelta(seconds=seconds)


def check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH or not cleaned.isprintable():
        raise TokenError(f"A token name must be 1 to {MAX_NAME_LENGTH} printable characters.")
    return cleaned


class TokenStore:
    """The token file: create, list, revoke. Every write replaces the file atomically, mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[TokenRecord]:
        return read_tokens(self.path)

    def create(
        self, name: str, *, expires_in: timedelta | None = None, now: datetime | None = None
    ) -> CreatedToken:
        name = check_name(name)
        created = now or datetime.now(UTC)
        with self._locked():
            records = read_tokens(self.path)
            if any(record.name == name for record in records):
                raise TokenError(
                    f"A token named '{name}' already exists. Remove it first (`lms token rm {name}`)."
                )
            taken = {record.id for record in records}
            token_id = _random(ID_LENGTH)
            while token_id in taken:  # pragma: no cover - 62**8 ids
                token_id = _random(ID_LENGTH)
            secret = _random(SECRET_LENGTH)
            record = TokenRecord(
                id=token_id,
                name=name,
                secret_sha256=hash_secret(secret),
                created_at=created,
                expires_at=created + expires_in if expires_in else None,
            )
            self._write([*records, record])
        return CreatedToken(record, f"{TOKEN_PREFIX}{token_id}:{secret}")

    def revoke(self, name_or_id: str) -> TokenRecord:
        """Remove the token with this name, id or `sk-lm-<id>` prefix."""
        key = name_or_id.strip()
        with self._locked():
            records = read_tokens(self.path)
            found = _find(records, key)
            if found is None:
                raise TokenError(f"No token named '{key}' (see `lms token ls`).")
            self._write([record for record in records if record is not found])
        return found

    def _write(self, records: list[TokenRecord]) -> None:
        data = {"version": _FILE_VERSION, "tokens": [record.to_json() for record in records]}
        atomic_write_text(self.path, json.dumps(data, indent=2) + "\n")  # mkstemp: mode 0600

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on `<file>.lock` so that two `lms token` commands never lose a write."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - Windows: atomic replace only
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def read_tokens(path: Path) -> list[TokenRecord]:
    """The tokens in the file; none if it does not exist. A broken file is a `TokenError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TokenError(f"Cannot read the token file {path} ({exc.strerror}).") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise TokenError(f"The token file {path} is not valid JSON. Fix or delete it.") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise TokenError(f"The token file {path} has no 'tokens' list. Fix or delete it.")
    try:
        return [TokenRecord.from_json(entry) for entry in entries]
    except TokenError as exc:
        raise TokenError(f"The token file {path} is damaged: {exc}.") from None


class TokenVerifier:
    """Checks tokens against the file, re-read only when its size, mtime or inode change.

    A file that cannot be read validates nothing (fail closed) until it is fixed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._by_id: dict[str, TokenRecord] = {}

    def verify(self, token: str, now: datetime | None = None) -> TokenRecord | None:
        parts = split_token(token)
        return self.verify_parts(*parts, now=now) if parts else None

    def verify_parts(self, token_id: str, secret: str, *, now: datetime | None = None) -> TokenRecord | None:
        """The live token whose id and secret these are, else None."""
        record = self._records().get(token_id.removeprefix(TOKEN_PREFIX))
        if record is None or not hmac.compare_digest(record.secret_sha256, hash_secret(secret)):
            return None
        return None if record.expired(now) else record

    def _records(self) -> dict[str, TokenRecord]:
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            try:
                self._by_id = {record.id: record for record in read_tokens(self.path)}
            except TokenError:
                self._by_id = {}
            self._stamp = stamp
        return self._by_id


def local_secret_file(home: Path) -> Path:
    """The per-home secret with which the local `lms` reaches a server that requires a token."""
    return home / "openlms" / "cli-secret"


def read_or_create_local_secret(path: Path) -> str:
    """The local secret, created (mode 0600) if missing: what `lms` sends to a local server."""
    existing = read_local_secret(path)
    if existing:
        return existing
    secret = secrets.token_urlsafe(32)
    atomic_write_text(path, secret + "\n")
    return read_local_secret(path) or secret


def read_local_secret(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text or None


def token_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    env: Mapping[str, str] = os.environ if environ is None else environ
    for name in TOKEN_ENV_VARS:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _find(records: list[TokenRecord], key: str) -> TokenRecord | None:
    for record in records:
        if key in (record.name, record.id, record.prefix):
            return record
    return None


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a time must be an ISO 8601 string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
