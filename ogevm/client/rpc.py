"""JSON-RPC over HTTP with the standard library, and the errors a node answers."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from typing import Any

from ogevm.abi.codec import decode_revert_reason
from ogevm.errors import OgevmError, TransactionFailed

#: JSON-RPC error code of a revert (as geth and anvil answer ``eth_call``).
EXECUTION_REVERTED = 3
#: JSON-RPC error code of a transaction the pool refuses.
TX_REJECTED = -32003


class RpcCallError(OgevmError):
    """The node answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method, self.code, self.message, self.data = method, code, message, data


class NodeUnavailable(OgevmError, ConnectionError):
    """The node could not be reached (or answered something that is not JSON-RPC)."""


class RpcConnection:
    """JSON-RPC calls to the node at ``rpc_url``."""

    def __init__(self, rpc_url: str) -> None:
        self.rpc_url = rpc_url
        self._ids = itertools.count(1)
        self._chain_id: int | None = None

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; returns ``result``. Raises RpcCallError or NodeUnavailable."""
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                           "params": list(params)}).encode()
        request = urllib.request.Request(self.rpc_url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:  # e.g. 413 with a JSON-RPC error body
            raw = exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise NodeUnavailable(f"cannot reach {self.rpc_url}: {exc}") from exc
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise NodeUnavailable(f"{self.rpc_url} did not answer JSON-RPC: {raw[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise NodeUnavailable(f"{self.rpc_url} answered an unexpected {type(answer).__name__}")
        if "error" in answer:
            error = answer["error"]
            raise RpcCallError(method, error.get("code", 0), error.get("message", ""), error.get("data"))
        return answer.get("result")

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.rpc("eth_chainId"), 16)
        return self._chain_id


def revert_error(exc: RpcCallError) -> TransactionFailed:
    """A revert answer (code 3) as TransactionFailed with the decoded reason and the data."""
    data = bytes.fromhex(exc.data[2:]) if isinstance(exc.data, str) and exc.data.startswith("0x") else b""
    reason = decode_revert_reason(data) if data else None
    if reason is None:
        reason = exc.message.removeprefix("execution reverted").lstrip(": ") or None
    return TransactionFailed(reason, data)
