"""Crash-isolated model workers: each loaded model runs in its own child process (docs/workers.md).

`ProcessBackend` (parent side) starts `python -m openlms.engine.process.child openlms-worker <model key>`,
which loads the model with the in-process llama.cpp backend and serves its `ModelRuntime` over a socket
pair; `ProcessRuntime` is that runtime seen from the server. A worker that dies ends its own requests
with `ModelCrashedError` and tells its watchers (the instance manager), and nothing else.
"""

from openlms.engine.process.runtime import ProcessBackend, ProcessRuntime, Supervised

__all__ = ["ProcessBackend", "ProcessRuntime", "Supervised"]
