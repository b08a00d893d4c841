"""Writes that users rely on survive a SIGKILL at any point (issue 10 §3, faults): a child process writes
in a loop through the real writers (`persist_settings`, per-model settings, SDK uploads) and is killed at
a random moment; the real readers then see one whole version, never a half-written file. Presets are
only read by openlms (see test_preset_traversal.py); the app's conversation files are written here too."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openlms.core.settings import read_settings_file
from openlms.store.conversations import ConversationStore
from openlms.store.model_config import ModelConfigStore
from openlms.store.uploads import UploadStore

PADDING = "x" * 2_000_000  # big enough that a write takes a while
REL = "acme/Chat-GGUF/chat-Q4_1.gguf"
ROUNDS = 6

WRITERS = {
    "settings": """
from openlms.core.settings import Settings, persist_settings
n = 1
while True:
    persist_settings(Settings(home=home, port=n))
    print(n, flush=True)
    n += 1
""",
    "model_config": """
from openlms.store.model_config import ModelConfigStore, parse_model_config
store = ModelConfigStore(home)
n = 1
while True:
    store.put(REL, parse_model_config({"load": {"contextLength": 1024 + n},
        "prediction": {"promptTemplate": {"type": "manual", "manualPromptTemplate": {
            "beforeSystem": PADDING, "afterSystem": "", "beforeUser": "", "afterUser": "",
            "beforeAssistant": "", "afterAssistant": ""}}}}))
    print(n, flush=True)
    n += 1
""",
    "uploads": """
from openlms.store.uploads import UploadRecord, UploadStore
store = UploadStore.in_home(home)
n = 1
while True:
    data = (str(n) + PADDING).encode()
    record = UploadRecord("client", f"{n} - 0000000{n % 10}.txt", "a.txt", "text/plain", len(data), n)
    store.write(record, data)
    print(n, flush=True)
    n += 1
""",
    "conversations": """
from openlms.store.conversations import ConversationStore
store = ConversationStore(home / "conversations")
n = 1
while True:
    messages = [{"role": "user", "content": PADDING}]
    store.write("", "chat-1", {"version": 1, "title": str(n), "messages": messages})
    print(n, flush=True)
    n += 1
""",
}


def run_and_kill(home: Path, writer: str, rng: random.Random) -> int:
    """Start the writer, let it write at least once, SIGKILL it at a random moment; the last version it
    reported as written."""
    prelude = (
        f"from pathlib import Path\nhome = Path({str(home)!r})\nREL = {REL!r}\nPADDING = 'x' * 2_000_000\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", prelude + WRITERS[writer]], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    first = child.stdout.readline()
    assert first.strip() == "1", first
    time.sleep(rng.uniform(0.0, 0.2))
    child.send_signal(signal.SIGKILL)
    rest = child.stdout.read()
    child.wait(30)
    return int(([first, *rest.split()])[-1])


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_sigkill_during_a_write_never_leaves_a_half_file(tmp_path: Path, writer: str) -> None:
    rng = random.Random(writer)
    home = tmp_path / "home"
    (home / "openlms").mkdir(parents=True)
    (home / "openlms" / "settings.json").write_text(json.dumps({"padding": PADDING, "port": 1}))
    for _ in range(ROUNDS):
        last = run_and_kill(home, writer, rng)
        if writer == "settings":
            data = read_settings_file(home)  # raises on a half-written file
            assert data["padding"] == PADDING and data["port"] in (last, last + 1)
        elif writer == "model_config":
            config = ModelConfigStore(home).get(REL)  # raises on a half-written file
            assert config.load.context_length in (1024 + last, 1024 + last + 1)
        elif writer == "conversations":
            conversations = ConversationStore(home / "conversations")
            assert conversations.listing().skipped == []  # never a half-written file
            _, doc = conversations.read("chat-1")
            assert int(doc["title"]) in (last, last + 1) and doc["messages"][0]["content"] == PADDING
        else:
            store = UploadStore.in_home(home)
            records = store.scan()
            assert records and all(r.size_bytes == len(str(r.created_ns)) + len(PADDING) for r in records)
            for record in records:
                assert (
                    store.read(record.client, record.identifier)
                    == (str(record.created_ns) + PADDING).encode()
                )
            assert last in {r.created_ns for r in records}  # what was reported written was kept
