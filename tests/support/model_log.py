"""What the model was given and what it wrote, as the server logs them: `lms log stream --source model`
running beside a test. Tests that cannot know a model's words check the text they got against these."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from types import TracebackType
from typing import Any

from tests.support.server import LMS, Server

INPUT = "llm.prediction.input"
OUTPUT = "llm.prediction.output"


class ModelLog:
    """`lms log stream --source model --filter input,output --json --stats`, its events collected in order
    by a thread. Use it as a context manager; `mark()` before a request, `since(mark, ...)` after."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._proc: subprocess.Popen[str] | None = None
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> ModelLog:
        proc = subprocess.Popen(
            [LMS, "log", "stream", "--source", "model", "--filter", "input,output", "--json", "--stats"],
            env=self._server.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._proc = proc
        ready = threading.Event()

        def read() -> None:
            assert proc.stderr is not None and proc.stdout is not None
            proc.stderr.readline()  # "Streaming logs from LM Studio" once subscribed
            ready.set()
            for line in proc.stdout:
                self.events.append(json.loads(line))

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(30):
            self.close()
            raise AssertionError("lms log stream did not start")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)

    def mark(self) -> int:
        return len(self.events)

    def since(
        self, mark: int, kind: str = OUTPUT, *, count: int = 1, timeout: float = 15
    ) -> list[dict[str, Any]]:
        """The events of `kind` logged after `mark`, once there are at least `count` of them (they reach the
        log a moment after the response that caused them)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events[mark:] if e.get("type") == kind]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def printed(text: str) -> str:
    """`text` as a test reads it back from a child's stdout (text mode turns \\r\\n and \\r into \\n)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
