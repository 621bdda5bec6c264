"""What every namespace of the dev node's JSON-RPC shares: the error object, the value codecs,
the dispatch of a method name to its parsed-params handler, and the lookups of blocks, state
and fees the namespaces build on."""

from __future__ import annotations

from typing import Any, Callable

from eth.abc import BlockHeaderAPI
from eth.exceptions import HeaderNotFound

from ogevm.errors import TransactionRejected
from ogevm.node import params
from ogevm.node.node import DevNode
from ogevm.node.params import BlockRef, Param, ParamError

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700, -32600, -32601, -32602, -32603)
EXECUTION_REVERTED = 3
TX_REJECTED = -32003
DEFAULT_PRIORITY_FEE = 1_000_000_000

ADDRESS = Param("address", params.address)
BLOCK = Param("block", params.block, "latest")
TX_HASH = Param("hash", params.hash32)
FULL = Param("fullTransactions", params.boolean, False)
FILTER_ID = Param("filterId", params.string)
CALL = Param("transaction", params.call_object)


class RpcError(Exception):
    """A JSON-RPC error object: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def qty(value: int) -> str:
    return hex(value)


def data(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class Namespace:
    """The base of every namespace class: the node, its chain, the method table (every
    ``rpc_`` method of the final class) and the lookups they share."""

    def __init__(self, node: DevNode) -> None:
        self.node = node
        self.chain = node.chain
        self.table: dict[str, Callable[..., Any]] = {
            name[len("rpc_"):]: getattr(self, name) for name in dir(self) if name.startswith("rpc_")
        }

    def call(self, method: str, values: Any) -> Any:
        """Dispatch ``method`` with the JSON params ``values``. Raises :class:`RpcError`."""
        handler = self.table.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
        if values is None:
            values = []
        if not isinstance(values, list):
            raise RpcError(INVALID_PARAMS, "invalid params: params must be an array")
        try:
            return handler(*params.parse_params(getattr(handler, "params", ()), values))
        except ParamError as exc:
            raise RpcError(INVALID_PARAMS, f"invalid params: {exc}") from exc

    def _header(self, block: BlockRef, name: str = "block") -> BlockHeaderAPI:
        """The header a parsed block parameter names; ParamError if there is none."""
        head = self.chain.head
        if block == "earliest":
            return self.chain.chain.get_canonical_block_header_by_number(0)
        if isinstance(block, str):
            return head
        if isinstance(block, bytes):
            try:
                return self.chain.chain.get_block_header_by_hash(block)
            except HeaderNotFound as exc:
                raise ParamError(name, f"unknown block {data(block)}") from exc
        if block > head.block_number:
            raise ParamError(name, f"block {block} is beyond the head {head.block_number}")
        return self.chain.chain.get_canonical_block_header_by_number(block)

    def _state(self, block: BlockRef):
        return self.chain.chain.get_vm(self._header(block)).state

    def _pending_nonce(self, address: bytes, nonce: int) -> int:
        queued = {e.nonce for e in self.node.pipeline.pool.entries() if e.sender == address}
        while nonce in queued:
            nonce += 1
        return nonce

    def _next_base_fee(self) -> int:
        return self.chain.base_vm_class.create_header_from_parent(self.chain.head).base_fee_per_gas

    def _submit(self, send: Callable[[], bytes]) -> str:
        """The hash ``send()`` admitted, or its refusal as an RPC error."""
        try:
            return data(send())
        except TransactionRejected as exc:
            raise RpcError(TX_REJECTED if "invalid raw" not in exc.reason else INVALID_PARAMS, exc.reason) from exc
