"""The model worker processes of a real server (docs/workers.md): children of the server process whose
command line holds `openlms-worker` and the model key."""

from __future__ import annotations

import json

import psutil

from tests.support.server import Server

WORKER_TAG = "openlms-worker"


def server_process(server: Server) -> psutil.Process:
    """The server's process, from the `server.json` it writes in its home."""
    record = json.loads((server.home / "openlms" / "server.json").read_text())
    return psutil.Process(int(record["pid"]))


def workers(server: Server, key: str) -> list[psutil.Process]:
    """The live worker processes that serve model `key`."""
    found = []
    for child in server_process(server).children(recursive=True):
        try:
            args = child.cmdline()
            alive = child.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            continue
        if alive and WORKER_TAG in args and any(key in arg for arg in args):
            found.append(child)
    return found


def worker(server: Server, key: str) -> psutil.Process:
    """The one worker process of model `key`."""
    found = workers(server, key)
    assert len(found) == 1, f"workers of {key}: {found}"
    return found[0]
