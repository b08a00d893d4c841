"""`lms token create|ls|rm` on the home's token file (no server needed)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cli_fakes import Invoke

from openlms.cli.commands.token import render_tokens
from openlms.core.tokens import TOKEN_PATTERN, TokenStore, TokenVerifier


def tokens_file(home: Path) -> Path:
    return home / "openlms" / "tokens.json"


def test_create_prints_the_token_once_and_stores_its_hash(invoke: Invoke, home: Path) -> None:
    result = invoke(["token", "create", "--name", "ci"])
    assert result.exit_code == 0, result.output
    printed = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("sk-lm-")]
    assert len(printed) == 1 and TOKEN_PATTERN.match(printed[0])
    assert "not shown again" in result.stdout and "Authorization: Bearer" in result.stdout
    assert "--require-auth" in result.stderr  # the server does not require tokens yet
    assert TokenVerifier(tokens_file(home)).verify(printed[0]) is not None
    assert printed[0] not in tokens_file(home).read_text()
    assert stat.S_IMODE(tokens_file(home).stat().st_mode) == 0o600
    listing = invoke(["token", "ls"]).stdout
    assert "ci" in listing and printed[0] not in listing and printed[0].split(":")[0] in listing


def test_create_json_and_expiry(invoke: Invoke, home: Path) -> None:
    result = invoke(["token", "create", "--name", "app", "--expires", "30d", "--json"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert TOKEN_PATTERN.match(created["token"]) and created["name"] == "app"
    expires = datetime.fromisoformat(created["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    listed = json.loads(invoke(["token", "ls", "--json"]).stdout)
    assert [entry["name"] for entry in listed] == ["app"] and "token" not in listed[0]
    assert all("secret" not in key.lower() for key in listed[0])


def test_create_refuses_a_duplicate_name_and_a_bad_duration(invoke: Invoke) -> None:
    assert invoke(["token", "create", "--name", "ci"]).exit_code == 0
    duplicate = invoke(["token", "create", "--name", "ci"])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.stderr
    bad = invoke(["token", "create", "--name", "x", "--expires", "soon"])
    assert bad.exit_code == 2 and "--expires" in bad.stderr
    missing = invoke(["token", "create"])
    assert missing.exit_code == 2 and "--name" in missing.stderr


def test_rm_by_name_or_id(invoke: Invoke, home: Path) -> None:
    store = TokenStore(tokens_file(home))
    first, second = store.create("one"), store.create("two")
    assert invoke(["token", "rm", "one"]).stdout == f"Removed API token 'one' ({first.record.prefix}).\n"
    assert invoke(["token", "rm", second.record.id]).exit_code == 0
    assert store.records() == []
    unknown = invoke(["token", "rm", "one"])
    assert unknown.exit_code == 1 and "No token named 'one'" in unknown.stderr
    assert invoke(["token", "ls"]).stdout.startswith("No API tokens.")


def test_a_damaged_token_file_is_one_error_line(invoke: Invoke, home: Path) -> None:
    tokens_file(home).parent.mkdir(parents=True)
    tokens_file(home).write_text("{")
    result = invoke(["token", "ls"])
    assert (
        result.exit_code == 1
        and result.stderr.startswith("Error: The token file")
        and result.stderr[-1] == "\n"
    )


def test_render_tokens_table(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    store.create("long-name-app", now=now)
    store.create("old", expires_in=timedelta(days=1), now=now - timedelta(days=5))
    lines = render_tokens(store.records(), now=now).splitlines()
    assert lines[0].split() == ["NAME", "PREFIX", "CREATED", "EXPIRES"]
    assert lines[1].startswith("long-name-app") and lines[1].endswith("never")
    assert lines[2].startswith("old ") and lines[2].endswith("(expired)")
    assert lines[1].index("sk-lm-") == lines[2].index("sk-lm-")  # aligned columns
