"""``txpool_*`` in geth's shapes: *pending* transactions can run now (no nonce gap before
them), *queued* ones wait behind a gap. Every pooled transaction is one of the two, whatever
its PIPE state (``og_getTransactionStatus`` tells that)."""

from __future__ import annotations

from eth.constants import CREATE_CONTRACT_ADDRESS
from eth_utils import to_checksum_address

from ogevm.node.rpc.base import Namespace, qty
from ogevm.node.rpc.shapes import tx_json


class TxpoolMethods(Namespace):
    def rpc_txpool_status(self):
        pending, queued = self._split()
        return {"pending": qty(len(pending)), "queued": qty(len(queued))}

    def rpc_txpool_content(self):
        return {kind: _by_sender(entries, lambda tx: tx_json(tx, None, None))
                for kind, entries in zip(("pending", "queued"), self._split())}

    def rpc_txpool_inspect(self):
        return {kind: _by_sender(entries, _summary) for kind, entries in zip(("pending", "queued"), self._split())}

    def _split(self) -> tuple[list, list]:
        """(pending, queued) pool entries."""
        pool = self.node.pipeline.pool
        with pool.lock:
            pending = [entry for run in pool.executable(self.chain.state().get_nonce) for entry in run]
            runnable = {entry.hash for entry in pending}
            return pending, [entry for entry in pool.entries() if entry.hash not in runnable]


def _by_sender(entries, shape) -> dict:
    """``{checksummed sender: {decimal nonce: shape(tx)}}``, as geth nests them."""
    nested: dict[str, dict[str, object]] = {}
    for entry in sorted(entries, key=lambda e: (e.sender, e.nonce)):
        nested.setdefault(to_checksum_address(entry.sender), {})[str(entry.nonce)] = shape(entry.tx)
    return nested


def _summary(tx) -> str:
    to = "contract creation" if tx.to == CREATE_CONTRACT_ADDRESS else to_checksum_address(tx.to)
    return f"{to}: {tx.value} wei + {tx.gas} gas × {tx.max_fee_per_gas} wei"
