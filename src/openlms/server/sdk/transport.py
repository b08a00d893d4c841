"""The `lmstudio` SDK's websocket framing: authentication, RPC calls and channels, one socket per namespace.

Frames are JSON text messages (research/sdk-protocol.md, section 2). The server never sends a frame without
a `callId` or `channelId` (the SDK kills a socket that receives one), answers an unknown endpoint with a
single `communicationWarning`, and runs every call and channel as its own task so that one socket can
carry several predictions at once. A disconnect cancels everything the socket started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from openlms.core.errors import OpenLMSError
from openlms.server.errors import sdk_error, sdk_unexpected_error
from openlms.server.guard.auth import AUTH_SCOPE_KEY, AuthContext
from openlms.server.guard.limits import json_too_deep

log = logging.getLogger("openlms.server.sdk")

AUTH_TIMEOUT_S = 10.0
MAX_CREDENTIAL_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Client:
    """Who is on the other end: the SDK sends the same identifier on every socket of one `Client`."""

    identifier: str


class Channel:
    """One open channel: send messages to the client, receive its messages (e.g. `cancel`)."""

    def __init__(self, connection: Connection, channel_id: int) -> None:
        self.connection = connection
        self.id = channel_id
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = asyncio.Event()

    @property
    def client(self) -> Client:
        return self.connection.client

    async def send(self, message: Mapping[str, Any]) -> None:
        await self.connection.send({"type": "channelSend", "channelId": self.id, "message": message})

    def deliver(self, message: Any) -> None:
        if isinstance(message, dict) and message.get("type") == "cancel":
            self.cancelled.set()
        self.inbox.put_nowait(message)


RpcHandler = Callable[[Client, Any], Awaitable[Any]]
ChannelHandler = Callable[[Channel, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Namespace:
    """The endpoints of one websocket path (`/llm`, `/embedding`, `/system`, `/files`, `/repository`)."""

    name: str
    rpcs: Mapping[str, RpcHandler] = field(default_factory=dict)
    channels: Mapping[str, ChannelHandler] = field(default_factory=dict)


class Authenticator:
    """First come, first served: a client identifier is bound to the first passkey it used.

    When the server requires API tokens (`guard/auth.py`), the handshake's identifier and passkey are
    the token's two halves (`sk-lm-<id>:<secret>`, split by lmstudio-python 1.6+ and lmstudio-js), or
    the upgrade request already carried the token (user info in the SDK's host, `Authorization`)."""

    def __init__(self) -> None:
        self._passkeys: dict[str, str] = {}

    def check(self, frame: Any, context: AuthContext | None = None) -> Client | str:
        """The authenticated client, or why the handshake is refused. With `context` (the server
        requires API tokens), the handshake must also carry a token unless the upgrade's headers did."""
        if not isinstance(frame, dict) or frame.get("authVersion") != 1:
            return "Expected an authentication message with authVersion 1."
        identifier, passkey = frame.get("clientIdentifier"), frame.get("clientPasskey")
        for name, value in (("clientIdentifier", identifier), ("clientPasskey", passkey)):
            if not isinstance(value, str) or not 0 < len(value) <= MAX_CREDENTIAL_LENGTH:
                return f"'{name}' must be a string of 1 to {MAX_CREDENTIAL_LENGTH} characters."
        assert isinstance(identifier, str) and isinstance(passkey, str)
        if context is not None and not context.check_handshake(identifier, passkey):
            return context.refusal()
        known = self._passkeys.setdefault(identifier, passkey)
        if known != passkey:
            return f"Client identifier '{identifier}' is already in use with another passkey."
        return Client(identifier)


class Connection:
    """One authenticated websocket: reads frames, runs calls and channels as tasks, writes replies."""

    def __init__(
        self, websocket: WebSocket, namespace: Namespace, client: Client, *, max_json_depth: int = 64
    ) -> None:
        self.websocket = websocket
        self.max_json_depth = max_json_depth
        self.namespace = namespace
        self.client = client
        self.channels: dict[int, Channel] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self.closed = False

    async def send(self, frame: Mapping[str, Any]) -> None:
        if self.closed:
            return
        text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
        async with self._send_lock:
            try:
                await self.websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.closed = True

    async def serve(self) -> None:
        try:
            while True:
                text = await receive_text(self.websocket)
                if text is None:
                    await self.warn("Received a binary frame; the protocol's frames are JSON text.")
                else:
                    await self.dispatch(text)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.closed = True
            for task in list(self.tasks):
                task.cancel()
            for task in list(self.tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def dispatch(self, text: str) -> None:
        if json_too_deep(text.encode("utf-8", "surrogatepass"), self.max_json_depth):
            await self.warn(
                f"Received a frame nested deeper than {self.max_json_depth} levels (the max_json_depth "
                "setting); it was ignored."
            )
            return
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):
            await self.warn("Received a frame that is not valid JSON.")
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "rpcCall":
            self._start_call(frame)
        elif kind == "channelCreate":
            self._start_channel(frame)
        elif kind == "channelSend":
            channel = self._channel(frame)
            if channel is not None:
                channel.deliver(frame.get("message"))
        elif kind == "channelClose":
            channel = self._channel(frame)
            if channel is not None:
                channel.cancelled.set()
        elif kind == "keepAlive":
            await self.send({"type": "keepAliveAck"})
        elif kind == "communicationWarning":
            log.warning("SDK client %s warns: %s", self.client.identifier, frame.get("warning"))
        elif kind in ("channelAck", "keepAliveAck"):
            pass
        else:
            await self.warn(f"Received a frame of unknown type {kind!r}.")

    def _channel(self, frame: Mapping[str, Any]) -> Channel | None:
        channel_id = frame.get("channelId")
        return self.channels.get(channel_id) if isinstance(channel_id, int) else None

    async def warn(self, warning: str) -> None:
        log.warning("SDK protocol (%s): %s", self.namespace.name, warning)
        await self.send({"type": "communicationWarning", "warning": warning})

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _start_call(self, frame: dict[str, Any]) -> None:
        call_id, endpoint = frame.get("callId"), frame.get("endpoint")
        handler = self.namespace.rpcs.get(endpoint) if isinstance(endpoint, str) else None
        if not isinstance(call_id, int) or handler is None:
            self._spawn(
                self.warn(f"Received rpcCall for unknown endpoint, endpoint = {endpoint}, callId = {call_id}")
            )
            return
        self._spawn(self._run_call(handler, call_id, str(endpoint), frame.get("parameter")))

    async def _run_call(self, handler: RpcHandler, call_id: int, endpoint: str, parameter: Any) -> None:
        try:
            result = await handler(self.client, parameter)
        except asyncio.CancelledError:
            raise
        except OpenLMSError as exc:
            await self.send({"type": "rpcError", "callId": call_id, "error": sdk_error(exc)})
            return
        except Exception as exc:
            log.exception("SDK rpc %s/%s failed", self.namespace.name, endpoint)
            await self.send({"type": "rpcError", "callId": call_id, "error": sdk_unexpected_error(exc)})
            return
        reply: dict[str, Any] = {"type": "rpcResult", "callId": call_id}
        if result is not None:
            reply["result"] = result
        await self.send(reply)

    def _start_channel(self, frame: dict[str, Any]) -> None:
        channel_id, endpoint = frame.get("channelId"), frame.get("endpoint")
        handler = self.namespace.channels.get(endpoint) if isinstance(endpoint, str) else None
        if not isinstance(channel_id, int) or handler is None or channel_id in self.channels:
            self._spawn(
                self.warn(
                    f"Received channelCreate for unknown endpoint, endpoint = {endpoint}, "
                    f"channelId = {channel_id}"
                )
            )
            return
        channel = Channel(self, channel_id)
        self.channels[channel_id] = channel
        self._spawn(self._run_channel(handler, channel, str(endpoint), frame.get("creationParameter")))

    async def _run_channel(
        self, handler: ChannelHandler, channel: Channel, endpoint: str, parameter: Any
    ) -> None:
        error: dict[str, Any] | None = None
        try:
            await handler(channel, parameter)
        except asyncio.CancelledError:
            raise
        except OpenLMSError as exc:
            error = sdk_error(exc)
        except Exception as exc:
            log.exception("SDK channel %s/%s failed", self.namespace.name, endpoint)
            error = sdk_unexpected_error(exc)
        finally:
            self.channels.pop(channel.id, None)
        if error is None:
            await self.send({"type": "channelClose", "channelId": channel.id})
        else:
            await self.send({"type": "channelError", "channelId": channel.id, "error": error})


async def serve_websocket(
    websocket: WebSocket, namespace: Namespace, auth: Authenticator, *, max_json_depth: int = 64
) -> None:
    """Accept, authenticate (one reply frame), then serve frames until the client goes away."""
    await websocket.accept()
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            text = await receive_text(websocket) or "binary"  # a binary frame is not valid JSON text
        try:
            if json_too_deep(text.encode("utf-8", "surrogatepass"), max_json_depth):
                raise ValueError("too deep")
            checked: Client | str = auth.check(json.loads(text), websocket.scope.get(AUTH_SCOPE_KEY))
        except ValueError:
            checked = "The authentication message is not valid JSON."
    except (TimeoutError, WebSocketDisconnect, RuntimeError):
        with contextlib.suppress(Exception):
            await websocket.close(code=1008)
        return
    if isinstance(checked, str):
        # An error object (SerializedLMSExtendedError), not a bare string: lmstudio 1.5 raises
        # ValueError on a string instead of reporting "Authentication failed: ...".
        error = {"title": checked, "rootTitle": checked}
        await websocket.send_text(json.dumps({"success": False, "error": error}))
        await websocket.close(code=1008)
        return
    await websocket.send_text(json.dumps({"success": True}))
    await Connection(websocket, namespace, checked, max_json_depth=max_json_depth).serve()


async def receive_text(websocket: WebSocket) -> str | None:
    """The next frame's text; None for a binary frame. Raises WebSocketDisconnect when the client left."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if isinstance(text, str) else None
