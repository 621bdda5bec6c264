"""Preimages of the state trie's keys, kept by the dev node for ``anvil_dumpState``.

The state trie is keyed by ``keccak(address)`` and each storage trie by ``keccak(slot)``: the
trie alone cannot say which accounts and slots it holds. As geth does with
``--cache.preimages``, the node's VM keeps the preimage of every key it writes, and stores them
with the state each time the state is persisted (a sealed block, a state setter, the genesis)
under ``ogevm:preimage:<keccak>``. Simulations and calls never persist, so they store none.
"""

from __future__ import annotations

from typing import Type

from eth.db.account import AccountDB
from eth.vm.base import VM
from eth_utils import keccak

PREIMAGE = b"ogevm:preimage:"


class PreimageAccountDB(AccountDB):
    """py-evm's account database, keeping the preimages of the keys it writes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._preimages: dict[bytes, bytes] = {}

    def _set_account(self, address, account) -> None:
        self._preimages[keccak(address)] = address
        super()._set_account(address, account)

    def set_storage(self, address, slot: int, value: int) -> None:
        key = slot.to_bytes(32, "big")
        self._preimages[keccak(key)] = key
        super().set_storage(address, slot, value)

    def persist(self):
        witness = super().persist()
        with self._raw_store_db.atomic_batch() as batch:
            for digest, preimage in self._preimages.items():
                batch[PREIMAGE + digest] = preimage
        self._preimages = {}
        return witness


def with_preimages(vm_class: Type[VM]) -> Type[VM]:
    """``vm_class`` whose states keep preimages (:class:`PreimageAccountDB`)."""
    state_class = vm_class._state_class
    return vm_class.configure(_state_class=state_class.configure(account_db_class=PreimageAccountDB))
