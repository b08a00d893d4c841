"""The server as a service, for real: `lms daemon up|status|down`, models restored after a stop and after
`kill -9`, automatic starts on the saved ports, and `lms log stream --source server` across log rotation."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_log_stream_e2e import HEADER, Lines
from tests.support.server import CHAT_MODEL, LMS, Server, free_port

pytestmark = pytest.mark.e2e


def make_home(tmp: Path, models_dir: Path, **settings: object) -> Server:
    """A home of its own with `settings` in its settings file; nothing started yet."""
    home = tmp / "home"
    (home / "openlms").mkdir(parents=True)
    port = free_port()
    values = {"models_dir": str(models_dir), "port": port, "sdk_port": 0, **settings}
    (home / "openlms" / "settings.json").write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLMS_")}
    env["OPENLMS_HOME"] = str(home)
    return Server(home, port, env)


@pytest.fixture
def service(tmp_path: Path, models_dir: Path) -> Iterator[Server]:
    srv = make_home(tmp_path, models_dir)
    yield srv
    srv.lms("daemon", "down", check=False)


def server_record(srv: Server) -> dict[str, object]:
    data: dict[str, object] = json.loads((srv.home / "openlms" / "server.json").read_text())
    return data


def loaded_when_ready(srv: Server, count: int, timeout: float = 120.0) -> list[dict[str, object]]:
    """`lms ps --json` once `count` instances are listed (restoring runs in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = srv.lms_json("ps")
        assert isinstance(listed, list)
        instances = [i for i in listed if i["status"] != "loading"]
        if len(instances) >= count or time.monotonic() > deadline:
            return instances
        time.sleep(0.5)


def wait_until_gone(pid: int) -> None:
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still runs after SIGKILL")


def test_daemon_up_status_down(service: Server) -> None:
    assert service.lms_json("daemon", "status") == {"status": "not-running"}
    up = service.lms_json("daemon", "up")
    assert isinstance(up, dict) and up["status"] == "running" and up["isDaemon"] is True
    status = service.lms_json("daemon", "status")
    assert status == up and status["pid"] == server_record(service)["pid"]
    from openlms import __version__

    assert status["version"] == __version__
    with service.http() as http:
        assert http.get("/lmstudio-greeting").json() == {"lmstudio": True}
    assert service.lms("daemon", "down").stdout == f"Stopped the openlms daemon (pid {up['pid']}).\n"
    assert service.lms_json("daemon", "status") == {"status": "not-running"}


def test_loaded_models_are_restored_after_a_stop_and_after_kill_9(service: Server) -> None:
    sdk_port = free_port()
    settings_file = service.home / "openlms" / "settings.json"
    settings_file.write_text(json.dumps({**json.loads(settings_file.read_text()), "sdk_port": sdk_port}))
    service.lms("daemon", "up", "--restore-models")
    service.lms(
        "load", CHAT_MODEL, "--context-length", "1536", "--identifier", "restored-chat", "--ttl", "3600"
    )

    service.lms("server", "stop")
    assert (
        json.loads((service.home / "openlms" / "loaded-models.json").read_text())["models"][0]["identifier"]
        == "restored-chat"
    )
    service.lms("server", "start")
    (instance,) = loaded_when_ready(service, 1)
    assert (instance["identifier"], instance["modelKey"]) == ("restored-chat", CHAT_MODEL)
    assert (instance["contextLength"], instance["ttl"], instance["jit"]) == (1536, 3600, False)

    # A crash: the server is killed; the next command starts it again on the saved ports.
    record = server_record(service)
    assert (record["port"], record["sdk_port"]) == (service.port, sdk_port)
    pid = int(str(record["pid"]))
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    with socket.socket() as squatter:  # another program took the SDK port meanwhile
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", sdk_port))
        squatter.listen()
        result = service.lms("ps")
        assert "Waking up openlms service..." in result.stderr
        assert f"Warning: port {sdk_port} (the lmstudio SDK's) is in use by another program" in result.stderr
        record = server_record(service)
        assert (record["port"], record["sdk_port"]) == (service.port, None)
        (instance,) = loaded_when_ready(service, 1)
        assert (instance["identifier"], instance["contextLength"]) == ("restored-chat", 1536)
        # Asked for explicitly, the taken port is an error.
        service.lms("server", "stop")
        explicit = service.lms("server", "start", "--sdk-port", str(sdk_port), check=False)
        assert explicit.returncode == 1 and f"port {sdk_port} is already in use" in explicit.stderr
    # The saved SDK port was kept for later starts.
    assert json.loads(settings_file.read_text())["sdk_port"] == sdk_port


def test_log_stream_keeps_following_across_rotation(tmp_path: Path, models_dir: Path) -> None:
    srv = make_home(tmp_path, models_dir, log_max_bytes=10_000, log_backups=2)
    srv.lms("daemon", "up")
    process = subprocess.Popen(
        [LMS, "log", "stream", "--source", "server", "--json"],
        env=srv.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        Lines(process.stderr).until(lambda line: line == HEADER)
        out = Lines(process.stdout)
        logs = srv.home / "server-logs"
        with srv.http() as http:
            for n in range(400):  # ~100 bytes of access log each: the 10 kB log rotates more than once
                http.get("/api/v1/models", params={"fill": f"{n:04d}" + "x" * 40})
            assert (logs / "openlms-server.log.1").exists() and (logs / "openlms-server.log.2").exists()
            assert not (logs / "openlms-server.log.3").exists()
            probe = uuid.uuid4().hex
            assert http.get("/api/v1/models", params={"probe": probe}).status_code == 200
        out.until(lambda line: probe in line and " 200" in line)
        assert probe in (logs / "openlms-server.log").read_text()  # written after the rotations
        assert all(p.stat().st_size <= 10_000 for p in logs.glob("openlms-server.log*"))
    finally:
        process.kill()
        process.wait()
        srv.lms("daemon", "down", check=False)
