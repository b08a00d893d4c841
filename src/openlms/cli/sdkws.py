"""A small client for the server's SDK websocket protocol (research/sdk-protocol.md), for `lms get`.

One socket per namespace (`ws://host:port/<namespace>`): the authentication frame first, then RPC calls
(`rpcCall` -> `rpcResult` / `rpcError`) and channels (`channelCreate` -> `channelSend`... ->
`channelClose` / `channelError`). It speaks the same auth as the HTTP client (`auth_headers` on the
upgrade request). Every failure is a `CliError` with one readable line. Closing the socket ends what it
started on the server (a download channel is paused there).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from openlms.cli.client import auth_headers
from openlms.cli.errors import CliError

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

OPEN_TIMEOUT_S = 10.0
RECV_SLICE_S = 0.5  # recv waits in short slices so that Ctrl+C is seen at once
MAX_FRAME_BYTES = 16 * 1024 * 1024


def websocket_url(base_url: str, namespace: str) -> str:
    """`http://127.0.0.1:1234` + `repository` -> `ws://127.0.0.1:1234/repository` (https -> wss)."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + f"/{namespace}"
    return "ws://" + base.removeprefix("http://") + f"/{namespace}"


def error_text(error: Any) -> str:
    """The readable line of an SDK error object (`title`, plus `suggestion` when there is one)."""
    if isinstance(error, str):
        return error
    if not isinstance(error, Mapping):
        return "The server reported an error."
    title = error.get("title") or error.get("rootTitle") or "The server reported an error."
    suggestion = error.get("suggestion")
    text = str(title)
    if isinstance(suggestion, str) and suggestion and suggestion not in text:
        text = f"{text} {suggestion}"
    return text


class SdkSocket:
    """One authenticated websocket to one namespace of the server's SDK API."""

    def __init__(self, base_url: str, namespace: str, *, timeout_s: float = 120.0) -> None:
        self.url = websocket_url(base_url, namespace)
        self.timeout_s = timeout_s
        self._next_id = 0
        self._ws = self._open(base_url)

    def __enter__(self) -> SdkSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._ws.close()

    def _open(self, base_url: str) -> ClientConnection:
        from websockets.exceptions import InvalidHandshake, WebSocketException
        from websockets.sync.client import connect

        try:
            ws = connect(
                self.url,
                additional_headers=auth_headers(base_url),
                open_timeout=OPEN_TIMEOUT_S,
                max_size=MAX_FRAME_BYTES,
                proxy=None,
                compression=None,
                legacy=True,  # the connection itself (closed by `close`), not a reconnecting iterator
            )
        except InvalidHandshake as exc:
            raise CliError(
                f"The server at {base_url} refused the SDK websocket {self.url} ({exc})."
            ) from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise CliError(
                f"cannot reach the openlms server at {base_url} ({exc or type(exc).__name__})."
            ) from None
        try:
            self._authenticate(ws)
        except BaseException:
            ws.close()
            raise
        return ws

    def _authenticate(self, ws: ClientConnection) -> None:
        passkey = str(uuid.uuid4())
        ws.send(
            json.dumps(
                {"authVersion": 1, "clientIdentifier": f"lms-{uuid.uuid4()}", "clientPasskey": passkey}
            )
        )
        reply = self._decode(self._recv_raw(ws))
        if reply.get("success") is not True:
            detail = error_text(reply.get("error"))
            raise CliError(
                f"The server refused the SDK connection: {detail} "
                "For `lms`, set LM_API_TOKEN to a token from `lms token create`."
            )

    # -- calls ---------------------------------------------------------------------------------------

    def rpc(self, endpoint: str, parameter: Any = None) -> Any:
        """Call `endpoint` and return its result (None for a void one); an `rpcError` is a `CliError`."""
        call_id = self._new_id()
        frame: dict[str, Any] = {"type": "rpcCall", "endpoint": endpoint, "callId": call_id}
        if parameter is not None:
            frame["parameter"] = parameter
        self._send(frame)
        while True:
            reply = self._receive()
            if reply.get("callId") != call_id:
                continue
            if reply.get("type") == "rpcError":
                raise CliError(error_text(reply.get("error")))
            return reply.get("result")

    def channel(self, endpoint: str, creation: Any = None) -> Iterator[dict[str, Any]]:
        """Open a channel and yield the server's messages until it closes it; `channelError` is a
        `CliError`. Leaving the iteration early does not close the channel: close the socket for that."""
        channel_id = self._new_id()
        frame: dict[str, Any] = {"type": "channelCreate", "endpoint": endpoint, "channelId": channel_id}
        if creation is not None:
            frame["creationParameter"] = creation
        self._send(frame)
        while True:
            reply = self._receive()
            if reply.get("channelId") != channel_id:
                continue
            kind = reply.get("type")
            if kind == "channelClose":
                return
            if kind == "channelError":
                raise CliError(error_text(reply.get("error")))
            message = reply.get("message")
            if kind == "channelSend" and isinstance(message, dict):
                yield message

    # -- plumbing ------------------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _send(self, frame: Mapping[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self._ws.send(json.dumps(frame, separators=(",", ":")))
        except ConnectionClosed:
            raise CliError(f"The server closed the SDK connection ({self.url}).") from None

    def _receive(self) -> dict[str, Any]:
        """The next frame that is not a warning or a keep-alive."""
        while True:
            frame = self._decode(self._recv_raw(self._ws))
            if frame.get("type") == "communicationWarning":
                raise CliError(f"The server did not understand the request: {frame.get('warning')}")
            if frame.get("type") == "keepAlive":
                self._send({"type": "keepAliveAck"})
                continue
            return frame

    def _recv_raw(self, ws: ClientConnection) -> str | bytes:
        """One frame, waiting at most `timeout_s` of silence; in short slices so Ctrl+C stays prompt."""
        from websockets.exceptions import ConnectionClosed

        waited = 0.0
        while True:
            try:
                return ws.recv(timeout=RECV_SLICE_S)
            except TimeoutError:
                waited += RECV_SLICE_S
                if waited >= self.timeout_s:
                    raise CliError(
                        f"The server did not answer on {self.url} for {self.timeout_s:.0f} s."
                    ) from None
            except ConnectionClosed:
                raise CliError(f"The server closed the SDK connection ({self.url}).") from None

    def _decode(self, data: str | bytes) -> dict[str, Any]:
        try:
            frame = json.loads(data)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            raise CliError(f"The server sent a frame that is not a JSON object on {self.url}.")
        return frame
