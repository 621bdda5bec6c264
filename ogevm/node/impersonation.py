"""Impersonated transactions (``anvil_impersonateAccount``): sent from an address without its key.

An impersonated transaction is an EIP-1559 transaction whose signature is a *marker*, not a
signature: ``r = 0`` (no valid secp256k1 signature has it, so no key can produce it) and
``s`` = the sender's address. :class:`ImpersonatedTransaction` reads its sender from the
marker. The dev node builds one only in ``eth_sendTransaction`` from an address it
impersonates, and reads one back (:func:`decode_stored`) only from its own pool and blocks;
from there it goes through PIPE and the pool's admission rules (nonce, balance, fees) as any
other transaction.

Everywhere else, ``eth_sendRawTransaction``, py-evm's block import and ogevm's validator, the
bytes decode as an ordinary transaction with an invalid signature: a validator rejects a block
that holds one. Such blocks are valid on this dev node only.
"""

from __future__ import annotations

import threading
from typing import Iterator, Sequence

from eth.abc import SignedTransactionAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.vm.forks.prague.transactions import PragueTypedTransaction
from eth_typing import Address

from ogevm.abc import Simulator

#: The ``r`` of every impersonation marker.
MARKER_R = 0
DYNAMIC_FEE_TYPE = 2


class ImpersonatedTransaction(PragueTypedTransaction):
    """A type-2 transaction whose sender is the address in its marker signature."""

    def get_sender(self) -> Address:
        return _marked_sender(self)

    def check_signature_validity(self) -> None:
        """Nothing to check: the node made the marker for an address it impersonates."""


def impersonated(builder, sender: bytes, chain_id: int, to: bytes | None, data: bytes, value: int, gas: int,
                 nonce: int, max_fee: int, tip: int) -> ImpersonatedTransaction:
    """An EIP-1559 transaction from ``sender`` carrying the impersonation marker."""
    marked = builder.new_dynamic_fee_transaction(
        chain_id=chain_id, nonce=nonce, max_priority_fee_per_gas=tip, max_fee_per_gas=max_fee, gas=gas,
        to=to or CREATE_CONTRACT_ADDRESS, value=value, data=data, access_list=(),
        y_parity=0, r=MARKER_R, s=int.from_bytes(sender, "big"))
    return ImpersonatedTransaction.decode(marked.encode())


def is_marked(tx: SignedTransactionAPI) -> bool:
    """Whether ``tx`` carries the impersonation marker (decoded as an ordinary transaction)."""
    return getattr(tx, "type_id", None) == DYNAMIC_FEE_TYPE and tx.r == MARKER_R and tx.s < 2**160


def decode_stored(builder, raw: bytes) -> SignedTransactionAPI:
    """A transaction this node stored itself (pool copy): marked ones keep their sender."""
    tx = builder.decode(raw)
    return ImpersonatedTransaction.decode(raw) if is_marked(tx) else tx


def sender_of(tx: SignedTransactionAPI) -> bytes:
    """The sender of a transaction read back from this node's blocks, marked ones included."""
    return _marked_sender(tx) if is_marked(tx) else tx.sender


def _marked_sender(tx: SignedTransactionAPI) -> Address:
    return Address(tx.s.to_bytes(20, "big"))


class SplitSimulator(Simulator):
    """Runs holding an impersonated transaction are simulated by ``local``, the others by
    ``workers``: simulation workers receive raw bytes, which cannot carry a given sender."""

    def __init__(self, workers: Simulator, local: Simulator) -> None:
        self.workers, self.local = workers, local
        self.remote = workers.remote
        self._local_lock = threading.Lock()  # the pipeline may simulate from two threads

    def simulate(self, runs: Sequence) -> list:
        marked = [any(isinstance(tx, ImpersonatedTransaction) for tx in txs) for txs, _ in runs]
        remote = iter(self.workers.simulate([run for run, m in zip(runs, marked) if not m]))
        local: Iterator = iter(())
        if any(marked):
            with self._local_lock:
                local = iter(self.local.simulate([run for run, m in zip(runs, marked) if m]))
        return [next(local) if m else next(remote) for m in marked]

    def close(self) -> None:
        self.workers.close()
        self.local.close()
