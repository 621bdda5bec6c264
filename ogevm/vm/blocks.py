"""Building a block transaction by transaction, without py-evm's O(n²) path.

``MiningChain.apply_transaction`` rebuilds the block's tries on every call. A
:class:`PendingBlock` keeps one VM and its state for the whole block instead: each
transaction runs under a snapshot and is either kept or undone, and the block is
sealed once. It runs the same block pre-processing as py-evm's import, so the block
it seals is one that ``Chain.import_block`` accepts.
"""

from __future__ import annotations

import time
from typing import Callable, Type

from eth.abc import (
    BlockAPI,
    ChainAPI,
    ComputationAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    VirtualMachineAPI,
)
from eth_utils import ValidationError
from eth.vm.base import VM
from eth.vm.chain_context import ChainContext

from ogevm.errors import InvalidTransaction


class PendingBlock:
    """A block being built on the canonical head of ``chain`` with ``vm_class``.

    The timestamp is the wall clock (as anvil's), or ``timestamp``; never before the parent's + 1.
    ``gas_limit`` overrides the parent's for simulations, which are never sealed.

    ``vm_class`` carries the results provider, so the same chain can build with INLINE,
    REPLAY or any other mode.
    """

    def __init__(self, chain: ChainAPI, vm_class: Type[VM], timestamp: int | None = None,
                 coinbase: bytes | None = None, gas_limit: int | None = None) -> None:
        parent = chain.get_canonical_head()
        now = int(time.time()) if timestamp is None else timestamp
        params = {"timestamp": max(now, parent.timestamp + 1)}
        if coinbase is not None:
            params["coinbase"] = coinbase
        header = vm_class.create_header_from_parent(parent, gas_limit=gas_limit or parent.gas_limit, **params)
        self.chain = chain
        self.vm: VirtualMachineAPI = vm_class(
            header=header,
            chaindb=chain.chaindb,
            chain_context=ChainContext(chain.chain_id),
            consensus_context=chain.consensus_context,
        )
        self.vm.block_preprocessing(self.vm.get_block())
        self.header = self.vm.get_header()
        self.transactions: list[SignedTransactionAPI] = []
        self.receipts: list[ReceiptAPI] = []
        self.computations: list[ComputationAPI] = []

    @property
    def gas_remaining(self) -> int:
        return self.header.gas_limit - self.header.gas_used

    def apply(
        self,
        transaction: SignedTransactionAPI,
        keep: Callable[[ComputationAPI], bool] = lambda computation: True,
    ) -> tuple[ReceiptAPI, ComputationAPI] | None:
        """Run ``transaction``; keep it if ``keep(computation)``, else undo it and return None.

        Raises :class:`InvalidTransaction` (state unchanged) when the transaction cannot
        be included at all: bad nonce, insufficient balance, over the block gas limit...
        """
        vm = self.vm
        try:
            vm.validate_transaction_against_header(self.header, transaction)
        except ValidationError as exc:
            raise InvalidTransaction(str(exc)) from exc
        vm.state.lock_changes()
        snapshot = vm.state.snapshot()
        try:
            computation = vm.state.apply_transaction(transaction)
        except ValidationError as exc:
            vm.state.revert(snapshot)
            raise InvalidTransaction(str(exc)) from exc
        except Exception as exc:  # py-evm lets some VM errors escape a whole transaction
            vm.state.revert(snapshot)
            raise InvalidTransaction(f"cannot be executed: {type(exc).__name__}: {exc}") from exc
        if not keep(computation):
            vm.state.revert(snapshot)
            return None
        vm.state.commit(snapshot)
        receipt = vm.make_receipt(self.header, transaction, computation, vm.state)
        vm.validate_receipt(receipt)
        self.header = vm.increment_blob_gas_used(vm.add_receipt_to_header(self.header, receipt), transaction)
        self.transactions.append(transaction)
        self.receipts.append(receipt)
        self.computations.append(computation)
        return receipt, computation

    def seal(self, extra_data: bytes = b"") -> BlockAPI:
        """Finish the block, persist it as the new canonical head and return it."""
        block = self.vm.set_block_transactions_and_withdrawals(
            self.vm.get_block(), self.header, self.transactions, self.receipts
        )
        block = self.vm.block_postprocessing(block)
        block = self.vm.mine_block(block, extra_data=extra_data).block
        self.chain.persist_block(block)
        return block
