"""JSON-RPC methods of the dev node, one module per namespace:

* :mod:`~ogevm.node.rpc.eth` (chain, state, transactions, blocks), :mod:`~ogevm.node.rpc.calls`
  (``eth_call``, gas, access lists), :mod:`~ogevm.node.rpc.filters` (logs and filters);
* :mod:`~ogevm.node.rpc.net` (``web3_*``, ``net_*``);
* :mod:`~ogevm.node.rpc.og` (models, inference records, PIPE), :mod:`~ogevm.node.rpc.mock`
  (mocked inference);
* :mod:`~ogevm.node.rpc.dev` (``evm_*``, ``anvil_*``, ``hardhat_*``);
* :mod:`~ogevm.node.rpc.txpool` (``txpool_*``);
* :mod:`~ogevm.node.rpc.debug` (``debug_trace*``: call and inference traces).

:class:`RpcMethods` is all of them on one node. Each method declares its params
(``ogevm.node.params``), receives them parsed and returns JSON-ready values; a bad param is
code -32602 naming it, a revert code 3 with the revert data, as anvil and geth answer. The
answers' shapes are in :mod:`~ogevm.node.rpc.shapes`. Documented in ``docs/RPC.md``.
"""

from ogevm.node.rpc.base import (
    DEFAULT_PRIORITY_FEE,
    EXECUTION_REVERTED,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    TX_REJECTED,
    RpcError,
    data,
    qty,
)
from ogevm.node.rpc.calls import CallMethods
from ogevm.node.rpc.debug import DebugMethods
from ogevm.node.rpc.dev import DevMethods
from ogevm.node.rpc.eth import EthMethods
from ogevm.node.rpc.filters import FilterMethods
from ogevm.node.rpc.mock import MockMethods
from ogevm.node.rpc.net import NetMethods
from ogevm.node.rpc.og import OgMethods
from ogevm.node.rpc.shapes import block_json, log_json, log_matches, receipt_json, record_json, tx_json
from ogevm.node.rpc.txpool import TxpoolMethods


class RpcMethods(EthMethods, DebugMethods, CallMethods, FilterMethods, NetMethods, OgMethods, MockMethods, DevMethods,
                 TxpoolMethods):
    """The method table of a :class:`~ogevm.node.node.DevNode`: every namespace. Each ``rpc_``
    method declares its params (:func:`ogevm.node.params.takes`) and receives them parsed."""


__all__ = [
    "DEFAULT_PRIORITY_FEE", "EXECUTION_REVERTED", "INTERNAL_ERROR", "INVALID_PARAMS", "INVALID_REQUEST",
    "METHOD_NOT_FOUND", "PARSE_ERROR", "TX_REJECTED", "RpcError", "RpcMethods", "block_json", "data", "log_json",
    "log_matches", "qty", "receipt_json", "record_json", "tx_json",
]
