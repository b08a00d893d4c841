"""The soak's 60-second version (the 10-minute, 64-client run is `bench/soak.py`): concurrent streaming
clients on `/v1` (openai), `/api/v0` (httpx SSE) and the `lmstudio` SDK (chat and completion), one in
four hanging up mid-stream, on the real server with SmolLM2.

Asserted: no error for the clients that stay, predictions of every kind finished, every dropping kind
dropped at least once, no instance left busy or queued in `lms ps` afterwards, and a plain chat answers.
The server's RSS is reported but only the benchmark checks it (less than 5 % growth after warm-up over
10 minutes): a minute on a shared 2-core machine says little about memory.
"""

from __future__ import annotations

import json

import pytest

from bench.soak import KINDS, soak
from tests.support.server import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENTS = 16
DROP_EVERY = 4  # 4 dropping clients: one of each kind
DURATION_S = 60


def test_soak_one_minute(server: Server) -> None:
    report = soak(server, clients=CLIENTS, duration=DURATION_S, drop_every=DROP_EVERY)
    print(json.dumps(report.to_json(), indent=2))  # the figures, with -s
    assert report.errors == []
    assert set(report.done) == set(KINDS), report.done
    assert set(report.dropped) == set(KINDS), report.dropped
    assert report.stuck == [], report.ps_after
    assert [i["identifier"] for i in report.ps_after] == ["smollm2-135m-instruct"]
    assert report.chat_after
    assert report.failures(check_rss=False) == []
