"""`lms link` between two real openlms servers on loopback, each with its own home: the first lists the
second (which requires a token) as a peer: unauthorized without the token, online with it and the model
loaded there; the second stopped, offline with a reason naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.server import CHAT_MODEL, free_port, start_server

pytestmark = pytest.mark.e2e


def test_a_peer_online_then_offline(tmp_path: Path, models_dir: Path) -> None:
    here = start_server(tmp_path / "here", models_dir, free_port())
    there = start_server(tmp_path / "there", models_dir, free_port(), "--require-auth")
    try:
        there.lms("load", CHAT_MODEL, "--identifier", "remote-chat", "-y", timeout=120)
        token = json.loads(there.lms("token", "create", "--name", "laptop", "--json").stdout)["token"]
        added = here.lms("link", "add", "desktop", there.url)
        assert f"Added peer 'desktop' (openlms) at {there.url}." in added.stdout
        [refused] = json.loads(here.lms("link", "status", "--json").stdout)["peers"]
        assert refused["state"] == "unauthorized" and "requires a token" in refused["reason"], refused
        here.lms("link", "add", "desktop", there.url, "--token", token)
        here.lms("link", "set-device-name", "laptop")
        here.lms("link", "enable")

        status = json.loads(here.lms("link", "status", "--json").stdout)
        assert status["device_name"] == "laptop" and status["enabled"] is True
        [peer] = status["peers"]
        assert peer["state"] == "online" and peer["has_token"] is True, peer
        assert token not in json.dumps(status) and token in (here.home / "openlms" / "link.json").read_text()
        assert peer["loaded_models"] == ["remote-chat"] and peer["latency_ms"] >= 0
        table = here.lms("link", "status").stdout
        assert "desktop" in table and "online" in table and "remote-chat" in table

        there.lms("server", "stop")
        [gone] = json.loads(here.lms("link", "status", "--json", timeout=30).stdout)["peers"]
        assert gone["state"] == "offline" and gone["loaded_models"] == []
        assert gone["reason"].startswith(f"Cannot reach peer 'desktop' ({there.url})")
    finally:
        there.lms("server", "stop", check=False)
        here.lms("server", "stop", check=False)
