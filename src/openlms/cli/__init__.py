"""The `lms` command line tool. It talks to the server only through its public HTTP API (docs/http-api.md).

Layout: `main.py` (the click group, `main(argv) -> int`), `app.py` (the context object: transport,
server command, TTY check, timeouts), `client.py` (httpx client), `discovery.py` (`--host`,
`server.json`), `serverctl.py` (spawn / stop the server), `render.py` (pure formatting), `schema.py`
(typed views of the JSON), `commands/` (one module per subcommand).

Conventions:
- Exit codes: 0 success, 1 runtime error, 2 usage error (bad flag or value), 130 on Ctrl-C. Every error is
  one `Error: ...` line on stderr. `lms server stop` with no server running prints
  `The server is not running.` and exits 0 (nothing to do is not a failure); so does `lms unload` with
  nothing loaded (`No models to unload.`).
- `--json` output goes to stdout alone (notes such as "Waking up openlms service..." go to stderr):
  `lms server status --json` is compact (`{"running":true,"port":1234}` / `{"running":false}`);
  `lms ls --json` is the server's model objects (an indented array, filtered by --llm/--embedding);
  `lms ps --json` is an indented array of {identifier, modelKey, type, path, sizeBytes, architecture,
  status, queued, active, ttl, contextLength, jit, idleSeconds}.
- Without `--host`, `ls`, `ps`, `load` and `unload` use the local server (`server.json`), starting it if
  none runs; `lms status` and `lms server status` only report.
- Set OPENLMS_DEBUG=1 to see the traceback of an unexpected error.
"""
