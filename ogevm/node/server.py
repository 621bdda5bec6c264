"""JSON-RPC 2.0 over HTTP and WebSocket (aiohttp): single and batch requests, standard error codes.

Node work is blocking (py-evm, onnxruntime), so each call runs in a thread pool and the
event loop only parses and answers. The transport refuses, with a JSON-RPC error object
and never a crash, whatever no method should see: bodies over ``MAX_BODY_BYTES`` (HTTP 413,
chunked ones included), JSON nested deeper than ``MAX_DEPTH`` (checked before parsing: the
C parser recurses, and py-evm raises the recursion limit far above what the stack holds),
NaN/Infinity, bad ids, empty or oversize batches. Every answer is valid JSON.

A ``GET /`` asking for a WebSocket upgrade becomes a JSON-RPC session on the same port: each
text (or binary) frame is a request body, decoded and answered exactly as over HTTP, plus
``eth_subscribe`` / ``eth_unsubscribe`` (``ogevm.node.subscriptions``). A frame over
``MAX_BODY_BYTES`` closes the connection (code 1009); a connection has at most
``MAX_WS_IN_FLIGHT`` requests whose answers are not yet written, then it stops reading.
Any other ``GET /`` is the explorer page.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, hdrs, web

from ogevm import explorer
from ogevm.node.rpc import INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, RpcError, RpcMethods
from ogevm.node.subscriptions import METHODS as SUBSCRIPTION_METHODS
from ogevm.node.subscriptions import Session, SubscriptionHub, SubscriptionLimits

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_BATCH = 1000
#: Deepest bracket nesting a body may have; real requests need fewer than 10 levels.
MAX_DEPTH = 64
#: Requests of one WebSocket connection whose answers are not yet written to it.
MAX_WS_IN_FLIGHT = 32
JSON_CONTENT_TYPES = frozenset({"application/json", "application/json-rpc", "application/jsonrequest"})
log = logging.getLogger("ogevm.node")

_NOT_SYNTAX = bytes(b for b in range(256) if b not in b'"[]{}')
_DEPTH_STEP = np.zeros(256, np.int8)
_DEPTH_STEP[list(b"[{")] = 1
_DEPTH_STEP[list(b"]}")] = -1


class Refused(Exception):
    """A body the transport does not pass on: answered with ``error`` and HTTP ``status``."""

    def __init__(self, code: int, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.error, self.status = RpcError(code, message), status


def nesting_depth(body: bytes) -> int:
    """The deepest bracket nesting of a JSON text, brackets inside strings not counted."""
    # drop escapes as the parser reads them, left to right: "\\" pairs, then escaped quotes;
    # what remains of quotes delimits strings. Linear time, vectorised, no recursion.
    syntax = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_SYNTAX)
    chars = np.frombuffer(syntax, np.uint8)
    if not chars.size:
        return 0
    in_string = np.logical_xor.accumulate(chars == ord('"'))
    steps = np.where(in_string, 0, _DEPTH_STEP[chars])
    return int(np.cumsum(steps, dtype=np.int32).max())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number is out of the range of a double")
    return value


def decode_body(body: bytes) -> Any:
    """The JSON value of a request body. Raises :class:`Refused`."""
    if not body.strip():
        raise Refused(PARSE_ERROR, "parse error: empty body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(PARSE_ERROR, f"parse error: body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if nesting_depth(body) > MAX_DEPTH:
        raise Refused(INVALID_REQUEST, f"invalid request: JSON nested deeper than {MAX_DEPTH} levels")
    try:
        payload = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as exc:
        raise Refused(PARSE_ERROR, f"parse error: body is not JSON ({exc})") from exc
    if isinstance(payload, list):
        if not payload:
            raise Refused(INVALID_REQUEST, "invalid request: empty batch")
        if len(payload) > MAX_BATCH:
            raise Refused(INVALID_REQUEST, f"invalid request: batch of {len(payload)} calls; the limit is {MAX_BATCH}")
    elif not isinstance(payload, dict):
        raise Refused(INVALID_REQUEST, "invalid request: expected a JSON-RPC 2.0 object or a batch (array)")
    return payload


def _valid_id(request_id: Any) -> bool:
    """JSON-RPC ids are strings, numbers or null (parsing already refused NaN/Infinity)."""
    return request_id is None or isinstance(request_id, (str, float)) or \
        (isinstance(request_id, int) and not isinstance(request_id, bool))


def _error(request_id: Any, error: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


def _encode(answer: dict) -> str:
    """``answer`` as JSON text; a result that is not valid JSON (a bug) becomes -32603."""
    try:
        return json.dumps(answer, allow_nan=False)
    except (TypeError, ValueError) as exc:
        log.exception("answer to id %r is not JSON", answer.get("id"))
        return json.dumps(_error(answer.get("id"), RpcError(INTERNAL_ERROR, f"internal error: result is not JSON: {exc}")))


def _respond(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="application/json")


class RpcServer:
    """Serves ``methods`` on ``host:port`` (HTTP and WebSocket); start with :meth:`start` from
    an event loop. ``limits`` bound each WebSocket connection's subscriptions."""

    def __init__(self, methods: RpcMethods, host: str = "127.0.0.1", port: int = 8545, threads: int = 8,
                 limits: SubscriptionLimits = SubscriptionLimits()) -> None:
        self.methods = methods
        self.hub = SubscriptionHub(methods.node)
        self.limits = limits
        self._sockets: set[web.WebSocketResponse] = set()
        self.host, self.port = host, port
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ogevm-rpc")
        self.app = web.Application()
        self.app.router.add_post("/", self._handle)
        self.app.router.add_get("/", self._get)
        explorer.add_routes(self.app)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self.hub.attach(asyncio.get_running_loop())
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # an ephemeral port: report the real one
            self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.hub.detach()
        for socket in list(self._sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        """``GET /``: a WebSocket upgrade is a JSON-RPC session; a browser gets the explorer page."""
        if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket":
            return await self._websocket(request)  # a bad handshake is HTTP 400 with the reason
        return await explorer.page(request)

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            _check_content_type(request)
            body = await _read_body(request)
        except Refused as exc:
            return _respond(_encode(_error(None, exc.error)), exc.status)
        answer = await self._answer(body)
        return _respond(answer if answer is not None else "{}")

    async def _answer(self, body: bytes, session_call: Callable[[str, Any], Any] | None = None) -> str | None:
        """The answer text to a request body (one call or a batch); None for a single
        notification. ``session_call`` runs subscription methods (WebSocket only)."""
        try:
            payload = decode_body(body)
        except Refused as exc:
            return _encode(_error(None, exc.error))
        if isinstance(payload, list):
            answers = await asyncio.gather(*(self._one(item, session_call) for item in payload))
            return "[" + ", ".join(_encode(a) for a in answers if a is not None) + "]"
        answer = await self._one(payload, session_call)
        return _encode(answer) if answer is not None else None

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One JSON-RPC session: frames are answered concurrently (at most ``MAX_WS_IN_FLIGHT``
        unwritten), subscriptions notify until the client leaves or unsubscribes."""
        socket = web.WebSocketResponse(max_msg_size=MAX_BODY_BYTES)
        await socket.prepare(request)
        self._sockets.add(socket)
        session = self.hub.open(self.limits)
        writer = asyncio.create_task(_write(session, socket))
        slots = asyncio.Semaphore(MAX_WS_IN_FLIGHT)
        frames: set[asyncio.Task] = set()
        try:
            async for message in socket:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break  # an error (e.g. a frame over the size limit): aiohttp has closed it
                body = message.data if message.type is WSMsgType.BINARY else message.data.encode()
                await slots.acquire()
                frame = asyncio.create_task(self._frame(session, body, slots.release))
                frames.add(frame)
                frame.add_done_callback(frames.discard)
        finally:
            self.hub.close(session)
            self._sockets.discard(socket)
            for task in (*frames, writer):
                task.cancel()
            await asyncio.gather(*frames, writer, return_exceptions=True)
        return socket

    async def _frame(self, session: Session, body: bytes, release: Callable[[], None]) -> None:
        """Answer one frame; ``release`` its in-flight slot once the answer is written."""
        created: list[str] = []
        answer = None
        try:
            answer = await self._answer(body, functools.partial(session.call, created=created))
        finally:
            if answer is None:
                release()
            else:
                session.send(answer, release)
            session.announce(created)  # after the answer: no notification precedes its id

    async def _one(self, item: Any, session_call: Callable[[str, Any], Any] | None = None) -> dict | None:
        request_id = item.get("id") if isinstance(item, dict) else None
        if not _valid_id(request_id):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request: id must be a string, a number or null"))
        if not isinstance(item, dict) or item.get("jsonrpc") != "2.0" or not isinstance(item.get("method"), str):
            return _error(request_id, RpcError(INVALID_REQUEST, "invalid request: expected a JSON-RPC 2.0 object"))
        loop = asyncio.get_running_loop()
        try:
            if item["method"] in SUBSCRIPTION_METHODS:
                if session_call is None:
                    raise RpcError(METHOD_NOT_FOUND, f"{item['method']} is only available over WebSocket "
                                                     "(connect to ws:// on this port)")
                result = session_call(item["method"], item.get("params"))
            else:
                result = await loop.run_in_executor(self._pool, self.methods.call, item["method"], item.get("params"))
        except RpcError as exc:
            return _error(request_id, exc)
        except Exception as exc:  # a bug: answer, log, keep serving
            log.exception("internal error in %s", item["method"])
            return _error(request_id, RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}"))
        if "id" not in item:
            return None  # a notification
        return {"jsonrpc": "2.0", "id": request_id, "result": result}


class ThreadedServer:
    """An :class:`RpcServer` running on an event loop of its own, in a daemon thread: for
    programs without an event loop (tests, benchmarks, a node embedded in a script).
    ``url`` / ``ws_url`` answer once the constructor returns; :meth:`stop` closes it."""

    def __init__(self, methods: RpcMethods, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = RpcServer(methods, host, port, **options)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException:
            self.loop.close()
            raise
        self._thread = threading.Thread(target=self.loop.run_forever, name="ogevm-rpc-loop", daemon=True)
        self._thread.start()
        self.url = f"http://{host}:{self.server.port}/"
        self.ws_url = f"ws://{host}:{self.server.port}/"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()

def _check_content_type(request: web.Request) -> None:
    """JSON or no Content-Type at all (as geth accepts); anything else is HTTP 415."""
    if hdrs.CONTENT_TYPE in request.headers and request.content_type not in JSON_CONTENT_TYPES:
        raise Refused(INVALID_REQUEST, f"invalid request: Content-Type {request.content_type} is not supported; "
                                       "send application/json", status=415)


async def _read_body(request: web.Request) -> bytes:
    """The body, read only up to ``MAX_BODY_BYTES`` whether its length is announced or not."""
    too_large = Refused(INVALID_REQUEST, f"invalid request: request body too large (the limit is {MAX_BODY_BYTES} "
                                         "bytes)", status=413)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return bytes(body)


async def _write(session: Session, socket: web.WebSocketResponse) -> None:
    """Drain ``session`` to ``socket``; a client gone mid-stream closes the socket (the reader ends)."""
    try:
        await session.write(socket.send_str)
    except ConnectionError:
        await socket.close()
