"""`--host` parsing and `server.json` handling (stale files, recycled pids)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_fakes import write_server_file

from openlms.cli.discovery import (
    find_running_server,
    home_dir,
    is_openlms_process,
    parse_host,
    pid_alive,
    read_server_file,
)


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("localhost", "http://localhost:1234"),
        ("192.168.1.20", "http://192.168.1.20:1234"),
        ("gpu-box:3000", "http://gpu-box:3000"),
        ("http://gpu-box:3000", "http://gpu-box:3000"),
        ("http://gpu-box:3000/", "http://gpu-box:3000"),
        ("http://gpu-box", "http://gpu-box:1234"),
        ("https://lms.example.com:8443", "https://lms.example.com:8443"),
        ("::1", "http://[::1]:1234"),
        ("[::1]:4000", "http://[::1]:4000"),
        ("0.0.0.0:1234", "http://127.0.0.1:1234"),
        ("  MyHost  ", "http://myhost:1234"),
    ],
)
def test_parse_host(value: str, url: str) -> None:
    assert parse_host(value) == url


@pytest.mark.parametrize("value", ["", "host:abc", "host:70000", "ftp://host", "http://", "http://u@h:1"])
def test_parse_host_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_host(value)


def test_home_follows_the_environment(home: Path) -> None:
    assert home_dir() == home


def test_server_file_round_trip(home: Path) -> None:
    assert read_server_file(home) is None
    write_server_file(home, port=4321, host="0.0.0.0")
    record = read_server_file(home)
    assert record is not None
    assert (record.pid, record.port, record.url) == (os.getpid(), 4321, "http://127.0.0.1:4321")


@pytest.mark.parametrize("content", ["", "{", "[]", '{"pid": "x", "port": 1}', '{"pid": 1}'])
def test_unreadable_server_file_counts_as_none(home: Path, content: str) -> None:
    path = home / "openlms" / "server.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert read_server_file(home) is None


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_server_file_is_removed(home: Path) -> None:
    path = write_server_file(home, pid=dead_pid())
    assert find_running_server(home) is None
    assert not path.exists()


def test_live_server_file_is_kept(home: Path) -> None:
    path = write_server_file(home)
    assert find_running_server(home) is not None
    assert path.exists()


def test_pid_alive_reaps_our_own_zombies() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while pid_alive(process.pid) and time.monotonic() < deadline:  # a zombie would stay "alive" forever
        time.sleep(0.01)
    assert not pid_alive(process.pid)
    assert process.wait() == 0  # already reaped: Popen sees ECHILD and settles on 0
    assert pid_alive(os.getpid())


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_a_recycled_pid_is_not_taken_for_the_server() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not is_openlms_process(process.pid)
    finally:
        process.kill()
        process.wait()
