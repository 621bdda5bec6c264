"""JSON-RPC 2.0 over HTTP (aiohttp): single and batch requests, standard error codes.

Node work is blocking (py-evm, onnxruntime), so each call runs in a thread pool and the
event loop only parses and answers. Bodies over ``MAX_BODY_BYTES`` are refused with a
JSON-RPC error and HTTP 413.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from ogevm.node.rpc import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, RpcError, RpcMethods

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_BATCH = 1000
log = logging.getLogger("ogevm.node")


def _error(request_id: Any, error: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


class RpcServer:
    """Serves ``methods`` on ``host:port``; start with :meth:`start` from an event loop."""

    def __init__(self, methods: RpcMethods, host: str = "127.0.0.1", port: int = 8545, threads: int = 8) -> None:
        self.methods = methods
        self.host, self.port = host, port
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ogevm-rpc")
        self.app = web.Application(client_max_size=MAX_BODY_BYTES * 2)
        self.app.router.add_post("/", self._handle)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # an ephemeral port: report the real one
            self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return web.json_response(_error(None, RpcError(INVALID_REQUEST, "request body too large")), status=413)
        body = await request.read()
        if len(body) > MAX_BODY_BYTES:
            return web.json_response(_error(None, RpcError(INVALID_REQUEST, "request body too large")), status=413)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return web.json_response(_error(None, RpcError(PARSE_ERROR, "parse error: body is not JSON")))
        if isinstance(payload, list):
            if not payload:
                return web.json_response(_error(None, RpcError(INVALID_REQUEST, "empty batch")))
            if len(payload) > MAX_BATCH:
                return web.json_response(_error(None, RpcError(INVALID_REQUEST, f"batch over {MAX_BATCH} calls")))
            answers = await asyncio.gather(*(self._one(item) for item in payload))
            return web.json_response([a for a in answers if a is not None])
        answer = await self._one(payload)
        return web.json_response(answer if answer is not None else {})

    async def _one(self, item: Any) -> dict | None:
        if not isinstance(item, dict) or item.get("jsonrpc") != "2.0" or not isinstance(item.get("method"), str):
            request_id = item.get("id") if isinstance(item, dict) else None
            return _error(request_id, RpcError(INVALID_REQUEST, "invalid request: expected a JSON-RPC 2.0 object"))
        request_id = item.get("id")
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._pool, self.methods.call, item["method"], item.get("params"))
        except RpcError as exc:
            return _error(request_id, exc)
        except Exception as exc:  # a bug: answer, log, keep serving
            log.exception("internal error in %s", item["method"])
            return _error(request_id, RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}"))
        if "id" not in item:
            return None  # a notification
        return {"jsonrpc": "2.0", "id": request_id, "result": result}
