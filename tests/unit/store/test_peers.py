"""`store/peers.py`: LM Link's link.json (checked names and URLs, mode 0600, atomic, clear errors)."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest

from openlms.core.errors import LinkConfigError, PeerNotFoundError
from openlms.store import peers as p


def test_missing_file_is_the_default(tmp_path: Path) -> None:
    config = p.read_link(tmp_path / "link.json")
    assert config == p.LinkConfig()
    assert p.this_device_name(config) == socket.gethostname()


def test_round_trip_with_mode_0600(tmp_path: Path) -> None:
    path = p.link_path(tmp_path / "openlms")
    peer = p.make_peer("desktop", "http://192.168.1.20:1234/", token="s3cret")
    config, created = p.put_peer(p.LinkConfig(enabled=True, device_name="laptop"), peer)
    assert created
    p.write_link(path, config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = p.read_link(path)
    assert again == config
    assert again.peers[0].url == "http://192.168.1.20:1234"  # the trailing slash is dropped
    assert json.loads(path.read_text())["peers"][0]["token"] == "s3cret"


def test_put_replaces_in_place_and_rm_clears_preference() -> None:
    a, b = p.make_peer("a", "http://a:1"), p.make_peer("b", "https://b", engine="openai")
    config, _ = p.put_peer(p.LinkConfig(), a)
    config, _ = p.put_peer(config, b)
    config, created = p.put_peer(config, p.make_peer("a", "http://a:2"))
    assert not created and [x.url for x in config.peers] == ["http://a:2", "https://b"]
    config = p.LinkConfig(peers=config.peers, preferred_device=p.check_preferred(config, "b"))
    config = p.remove_peer(config, "b")
    assert config.preferred_device is None and [x.name for x in config.peers] == ["a"]
    with pytest.raises(PeerNotFoundError, match="No LM Link peer named 'b'"):
        p.remove_peer(config, "b")


@pytest.mark.parametrize(
    ("name", "url", "message"),
    [
        ("bad name", "http://a", "Invalid peer name 'bad name'"),
        ("-x", "http://a", "starting with a letter or digit"),
        ("ok", "ftp://a", "Invalid peer URL 'ftp://a'"),
        ("ok", "a:1234", "Invalid peer URL"),
        ("ok", "http://user:pw@a:1234", "with --token"),
        ("ok", "http://a:99999", "port"),
        ("ok", "http://a/?x=1", "query"),
    ],
)
def test_refusals_say_what_to_do(name: str, url: str, message: str) -> None:
    with pytest.raises(LinkConfigError, match=message):
        p.make_peer(name, url)


def test_engine_and_token_are_checked() -> None:
    with pytest.raises(LinkConfigError, match="use openlms or openai"):
        p.make_peer("a", "http://a", engine="vllm")
    with pytest.raises(LinkConfigError, match="one line"):
        p.make_peer("a", "http://a", token="x\ny")


def test_preferred_device_must_exist() -> None:
    config = p.LinkConfig(device_name="laptop")
    assert p.check_preferred(config, "laptop") == "laptop"
    assert p.check_preferred(config, None) is None
    with pytest.raises(PeerNotFoundError, match="No device named 'desktop'"):
        p.check_preferred(config, "desktop")


def test_a_broken_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "link.json"
    path.write_text('{"peers": [{"name": "a", "url": "gopher://x"}]}')
    with pytest.raises(LinkConfigError, match=r"link.json is not a valid LM Link file .*fix or delete it"):
        p.read_link(path)
    path.write_text("[")
    with pytest.raises(LinkConfigError, match="not a valid LM Link file"):
        p.read_link(path)
