"""A local fake of the Hugging Face Hub: a real HTTP server (free port, thread) answering what
`huggingface_hub` and openlms' downloader ask, with knobs for faults.

    with FakeHub() as hub:
        hub.add_repo("org/Repo-GGUF", {"Repo-Q4_K_M.gguf": b"...", "Repo-Q8_0.gguf": Path(...)})
        client = HubClient(hub.url, token=None)

Endpoints: `GET /api/models` (search, filter, author, limit, sort), `GET /api/models/{repo}` and
`/api/models/{repo}/revision/{rev}` (siblings; `?blobs=true` adds size and `lfs: {sha256, size}`),
`GET /api/models/{repo}/tree/{rev}`, `HEAD`/`GET /{repo}/resolve/{rev}/{path}` (Range -> 206, ETag,
X-Repo-Commit, X-Linked-Etag, X-Linked-Size). Errors as the Hub sends them: 404 `X-Error-Code: RepoNotFound`
/ `EntryNotFound` / `RevisionNotFound`, 401 (no token) or 403 (wrong token) `GatedRepo` on a gated repo's
files, a private repo is a 404 without a valid token.

Faults: `throttle(n)` answers 429 + Retry-After to the next n requests; `cut_after(path, n)` closes the
connection after n bytes of that file's next GET; `stall_after(path, n, seconds)` goes silent after n
bytes; `corrupt(path)` serves other bytes than the listing's sha256; `vary_etag(path)` gives another ETag
every time; `slow(bytes_per_second)` paces file bodies; `garbage_json` answers the API with HTML.
`tokens` are the accepted tokens (gated and private repos); a token starting with `hf_invalid` gets the
Hub's 401 "Invalid credentials" everywhere. `xet=True` repos redirect `resolve` to a CDN address.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SMOLLM2_DIR = Path("/root/.lmstudio/models/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF")
SMOLLM2_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
_CHUNK = 64 * 1024


@dataclass
class _File:
    data: bytes | Path
    size: int
    sha256: str
    lfs: bool

    def read(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) in chunks, streamed from disk for a Path."""
        if isinstance(self.data, bytes):
            for pos in range(start, end, _CHUNK):
                yield self.data[pos : min(pos + _CHUNK, end)]
            return
        with self.data.open("rb") as fh:
            fh.seek(start)
            pos = start
            while pos < end:
                chunk = fh.read(min(_CHUNK, end - pos))
                if not chunk:
                    return
                pos += len(chunk)
                yield chunk


@dataclass
class _Repo:
    repo_id: str
    files: dict[str, _File]
    sha: str
    gated: bool
    private: bool
    tags: tuple[str, ...]
    library_name: str | None
    downloads: int
    likes: int
    xet: bool = False


@dataclass
class RequestLog:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class _Faults:
    throttle_left: int = 0
    retry_after: int = 0
    cuts: dict[str, list[int]] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)
    vary_etag: set[str] = field(default_factory=set)
    stalls: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    bytes_per_second: float | None = None


def _hash(data: bytes | Path) -> tuple[int, str]:
    if isinstance(data, bytes):
        return len(data), hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    size = 0
    with data.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class FakeHub:
    """The fake Hub; a context manager that starts and stops the server thread."""

    def __init__(self) -> None:
        self.repos: dict[str, _Repo] = {}
        self.requests: list[RequestLog] = []
        self.tokens: set[str] = set()
        self.faults = _Faults()
        self.garbage_json = False  # answer the API with bytes that are not JSON (a broken mirror)
        self.lock = threading.Lock()
        self._hash_cache: dict[Path, tuple[float, int, str]] = {}
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._serve, name="fake-hub", daemon=True)

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- content -------------------------------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | Path],
        *,
        gated: bool = False,
        private: bool = False,
        tags: tuple[str, ...] = ("gguf",),
        library_name: str | None = None,
        downloads: int = 0,
        likes: int = 0,
        lfs: bool = True,
        xet: bool = False,
    ) -> None:
        """Add (or replace: a new commit) a repo. Files are bytes or paths streamed from disk. `xet`: as
        a Xet-backed repo on the Hub, `resolve` answers 302 (with X-Xet-Hash and the X-Linked-* headers)
        to a CDN address that serves the plain bytes with its own ETag."""
        entries = {path: self._file(data, lfs) for path, data in files.items()}
        commit = hashlib.sha1(repr(sorted((p, f.sha256) for p, f in entries.items())).encode()).hexdigest()
        with self.lock:
            self.repos[repo_id] = _Repo(
                repo_id, entries, commit, gated, private, tags, library_name, downloads, likes, xet
            )

    def add_smollm2(self, repo_id: str = SMOLLM2_REPO) -> str:
        """Serve the installed SmolLM2 GGUF (streamed from disk); returns its file name."""
        source = next(SMOLLM2_DIR.glob("*.gguf"))
        self.add_repo(repo_id, {source.name: source}, downloads=1000, likes=10)
        return source.name

    def _file(self, data: bytes | Path, lfs: bool) -> _File:
        if isinstance(data, Path):
            stat = data.stat()
            cached = self._hash_cache.get(data)
            if cached is None or cached[0] != stat.st_mtime:
                size, sha = _hash(data)
                self._hash_cache[data] = (stat.st_mtime, size, sha)
            else:
                size, sha = cached[1], cached[2]
            return _File(data, size, sha, lfs)
        size, sha = _hash(data)
        return _File(data, size, sha, lfs)

    # -- faults --------------------------------------------------------------------------------------
    def throttle(self, n: int, retry_after: int = 0) -> None:
        with self.lock:
            self.faults.throttle_left = n
            self.faults.retry_after = retry_after

    def cut_after(self, path: str, nbytes: int) -> None:
        """The next GET of `path` (any repo) closes the connection after `nbytes` body bytes."""
        with self.lock:
            self.faults.cuts.setdefault(path, []).append(nbytes)

    def vary_etag(self, path: str) -> None:
        """Every response for `path` carries another ETag (a server that changes the file all the time)."""
        with self.lock:
            self.faults.vary_etag.add(path)

    def stall_after(self, path: str, nbytes: int, seconds: float) -> None:
        """The next GET of `path` sends `nbytes`, then nothing for `seconds` (then the rest)."""
        with self.lock:
            self.faults.stalls.setdefault(path, []).append((nbytes, seconds))

    def next_stall(self, path: str) -> tuple[int, float] | None:
        with self.lock:
            queue = self.faults.stalls.get(path)
            return queue.pop(0) if queue else None

    def corrupt(self, path: str) -> None:
        with self.lock:
            self.faults.corrupt.add(path)

    def slow(self, bytes_per_second: float | None) -> None:
        with self.lock:
            self.faults.bytes_per_second = bytes_per_second

    def file_gets(self, path: str) -> list[RequestLog]:
        """The GET requests of a file's resolve URL."""
        return [
            r for r in self.requests if r.method == "GET" and "/resolve/" in r.path and r.path.endswith(path)
        ]

    def next_cut(self, path: str) -> int | None:
        with self.lock:
            queue = self.faults.cuts.get(path)
            return queue.pop(0) if queue else None

    def take_throttle(self) -> int | None:
        with self.lock:
            if self.faults.throttle_left <= 0:
                return None
            self.faults.throttle_left -= 1
            return self.faults.retry_after


class _QuietServer(ThreadingHTTPServer):
    """Clients that drop a connection (a paused download, a closed keep-alive) are no error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(_HubHandler):
        pass

    Handler.hub = hub
    return Handler


class _HubHandler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return

    def do_GET(self) -> None:
        self._answer("GET")

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def _answer(self, method: str) -> None:
        try:
            self._route(method)
        except (ConnectionError, TimeoutError):  # the client went away (a paused or cancelled download)
            self.close_connection = True

    # -- routing -------------------------------------------------------------------------------------
    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        self.hub.requests.append(
            RequestLog(method, path, query, {k.lower(): v for k, v in self.headers.items()})
        )
        retry_after = self.hub.take_throttle()
        if retry_after is not None:
            self._json(429, {"error": "Too many requests"}, {"Retry-After": str(retry_after)})
            return
        if (self._token() or "").startswith("hf_invalid"):
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        elif path == "/api/models":
            self._search(query)
        elif path.startswith("/api/models/"):
            self._api_model(path.removeprefix("/api/models/"), query)
        elif path.startswith("/cdn/"):
            self._cdn(method, path.removeprefix("/cdn/"))
        elif "/resolve/" in path:
            self._resolve(method, path.lstrip("/"))
        else:
            self._json(404, {"error": "Not found"})

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ").strip() or None if auth.startswith("Bearer ") else None

    def _visible(self, repo_id: str) -> _Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and self._token() not in self.hub.tokens):
            return None
        return repo

    # -- api -----------------------------------------------------------------------------------------
    def _search(self, query: dict[str, list[str]]) -> None:
        term = (query.get("search") or [""])[0].lower()
        filters = set(query.get("filter", []))
        author = (query.get("author") or [None])[0]
        hits = [
            r
            for r in self.hub.repos.values()
            if not r.private
            and term in r.repo_id.lower()
            and filters <= {*r.tags, r.library_name or ""}
            and (author is None or r.repo_id.split("/")[0] == author)
        ]
        sort = (query.get("sort") or ["downloads"])[0]
        hits.sort(key=lambda r: -int(getattr(r, sort, 0) if sort in ("downloads", "likes") else 0))
        limit = int((query.get("limit") or ["1000"])[0])
        self._json(200, [self._summary(r) for r in hits[:limit]])

    def _summary(self, repo: _Repo) -> dict[str, Any]:
        return {
            "_id": repo.sha[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "downloads": repo.downloads,
            "likes": repo.likes,
            "tags": list(repo.tags),
            "library_name": repo.library_name,
            "gated": "manual" if repo.gated else False,
            "private": repo.private,
            "sha": repo.sha,
        }

    def _api_model(self, rest: str, query: dict[str, list[str]]) -> None:
        segments = rest.split("/")
        repo_id = "/".join(segments[:2])
        repo = self._visible(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        tail = segments[2:]
        if tail and tail[0] in ("revision", "tree"):
            revision = tail[1] if len(tail) > 1 else "main"
            if revision not in ("main", repo.sha):
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return
        if tail and tail[0] == "tree":
            self._json(200, [self._tree_entry(p, f) for p, f in sorted(repo.files.items())])
            return
        blobs = (query.get("blobs") or ["false"])[0].lower() == "true"
        body = self._summary(repo) | {
            "siblings": [self._sibling(p, f, blobs) for p, f in sorted(repo.files.items())]
        }
        self._json(200, body)

    def _sibling(self, path: str, f: _File, blobs: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"rfilename": path}
        if blobs:
            entry["size"] = f.size
            entry["blobId"] = f.sha256[:40]
            if f.lfs:
                entry["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": 134}
        return entry

    def _tree_entry(self, path: str, f: _File) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": f.sha256[:40], "size": f.size, "path": path}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
        return entry

    # -- files ---------------------------------------------------------------------------------------
    def _resolve(self, method: str, path: str) -> None:
        repo_part, _, rest = path.partition("/resolve/")
        revision, _, file_path = rest.partition("/")
        repo = self._visible(repo_part)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        if repo.gated and self._token() not in self.hub.tokens:
            status = 401 if self._token() is None else 403
            self._error(status, "GatedRepo", "Access to this model is restricted: accept its terms")
            return
        if revision not in ("main", repo.sha):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        f = repo.files.get(file_path)
        if f is None:
            self._error(404, "EntryNotFound", f"{file_path} does not exist")
            return
        if repo.xet:
            self._redirect_to_cdn(repo, file_path, f)
            return
        self._serve_file(method, repo, file_path, f)

    def _redirect_to_cdn(self, repo: _Repo, file_path: str, f: _File) -> None:
        self.send_response(302)
        for key, value in {
            "Location": f"{self.hub.url}/cdn/{repo.repo_id}/{f.sha256}?name={file_path}",
            "Content-Length": "0",
            "X-Repo-Commit": repo.sha,
            "X-Linked-Etag": f'"{f.sha256}"',
            "X-Linked-Size": str(f.size),
            "X-Xet-Hash": hashlib.sha256(f.sha256.encode()).hexdigest(),
            "X-Xet-Refresh-Route": f"/api/models/{repo.repo_id}/xet-read-token/{repo.sha}",
        }.items():
            self.send_header(key, value)
        self.end_headers()

    def _cdn(self, method: str, rest: str) -> None:
        repo_id, _, sha = rest.rpartition("/")
        repo = self.hub.repos.get(repo_id)
        found = [(p, f) for p, f in (repo.files.items() if repo else ()) if f.sha256 == sha]
        if repo is None or not found:
            self._json(404, {"error": "no such object"})
            return
        self._serve_file(method, repo, found[0][0], found[0][1], cdn=True)

    def _serve_file(self, method: str, repo: _Repo, file_path: str, f: _File, *, cdn: bool = False) -> None:
        start, end = 0, f.size
        status = 200
        wanted = self.headers.get("Range")
        if wanted:
            parsed = _parse_range(wanted, f.size)
            if parsed is None:
                self._error(
                    416,
                    "RangeNotSatisfiable",
                    "Range not satisfiable",
                    {"Content-Range": f"bytes */{f.size}"},
                )
                return
            start, end, status = parsed[0], parsed[1], 206
        etag = f'"{f.sha256}"' if f.lfs else f'"{f.sha256[:40]}"'
        if file_path in self.hub.faults.vary_etag:
            etag = f'"{len(self.hub.requests)}-{etag.strip(chr(34))}"'
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(end - start),
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "X-Repo-Commit": repo.sha,
        }
        if cdn:
            headers = {k: v for k, v in headers.items() if not k.startswith("X-")} | {
                "ETag": f'"cdn-{f.sha256[:16]}"'
            }
        elif f.lfs:
            headers |= {"X-Linked-Etag": etag, "X-Linked-Size": str(f.size)}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{f.size}"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if method == "GET":
            self._body(file_path, f, start, end)

    def _body(self, file_path: str, f: _File, start: int, end: int) -> None:
        cut = self.hub.next_cut(file_path)
        stall = self.hub.next_stall(file_path)
        corrupt = file_path in self.hub.faults.corrupt
        sent = 0
        for chunk in f.read(start, end):
            if corrupt:
                chunk = bytes(b ^ 0x5A for b in chunk)
            if cut is not None and sent + len(chunk) > cut:
                self.wfile.write(chunk[: max(0, cut - sent)])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if stall is not None and sent + len(chunk) > stall[0]:
                head = max(0, stall[0] - sent)
                self.wfile.write(chunk[:head])
                self.wfile.flush()
                time.sleep(stall[1])
                chunk, sent, stall = chunk[head:], sent + head, None
            self.wfile.write(chunk)
            sent += len(chunk)
            self._pace(len(chunk))

    def _pace(self, nbytes: int) -> None:
        rate = self.hub.faults.bytes_per_second
        if rate:
            time.sleep(nbytes / rate)

    # -- helpers -------------------------------------------------------------------------------------
    def _json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = b"<html>not the Hub</html>" if self.hub.garbage_json else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        self._json(
            status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})}
        )


def _parse_range(header: str, size: int) -> tuple[int, int, int] | None:
    """`bytes=START-[END]` -> (start, end exclusive, 206); None when not satisfiable."""
    unit, _, spec = header.partition("=")
    first, _, last = spec.partition("-")
    if unit.strip() != "bytes" or not first.strip().isdigit():
        return None
    start = int(first)
    end = min(int(last) + 1, size) if last.strip().isdigit() else size
    if start >= size or start >= end:
        return None
    return start, end, 206
