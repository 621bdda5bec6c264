"""Snapshots of the dev node (``evm_snapshot`` / ``evm_revert``).

A snapshot holds what ``evm_revert`` puts back: the head block (so the state, and which
blocks are canonical), the pool's transactions with the inference results they had, the model catalogue
and the block clock. Reverting to a snapshot uses it up with every later one, and an unknown
or used id reverts nothing, as anvil and Hardhat answer. Snapshots live in memory only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from eth.abc import BlockHeaderAPI

from ogevm.errors import ModelNotFound
from ogevm.models.store import ModelInfo, ModelStore
from ogevm.node.clock import DevClock
from ogevm.pipe.mempool import PoolEntry, TxState


@dataclass(frozen=True)
class Snapshot:
    """What ``evm_revert`` restores (see the module's docstring)."""

    head: BlockHeaderAPI
    #: Copies of the pool's entries, ready to go back: pending, with the records they had.
    entries: tuple[PoolEntry, ...]
    models: frozenset[str]
    clock: DevClock
    #: How many transactions had finished (the node's finish log) when it was taken.
    finished: int


class Snapshots:
    """The live snapshots, by id (1, 2, ...)."""

    def __init__(self) -> None:
        self._taken: dict[int, Snapshot] = {}
        self._ids = itertools.count(1)

    def add(self, snapshot: Snapshot) -> int:
        snapshot_id = next(self._ids)
        self._taken[snapshot_id] = snapshot
        return snapshot_id

    def pop(self, snapshot_id: int) -> Snapshot | None:
        """The snapshot ``snapshot_id``, removed with every later one; None if unknown."""
        snapshot = self._taken.get(snapshot_id)
        if snapshot is not None:
            self._taken = {i: s for i, s in self._taken.items() if i < snapshot_id}
        return snapshot

    def __bool__(self) -> bool:
        return bool(self._taken)


def pending_copy(entry: PoolEntry) -> PoolEntry:
    """``entry`` as it goes back into a pool: pending again (it is simulated again on the
    restored head), keeping the inference results it had."""
    return replace(entry, state=TxState.PENDING, reason=None, records=dict(entry.records), simulated=False,
                   building=False, block_number=None, history=list(entry.history))


class DevModelStore(ModelStore):
    """The dev node's model store: ``evm_revert`` hides the models added after the snapshot
    (adding one again shows it). Hidden models keep their file in the store's directory."""

    def __init__(self, directory=None) -> None:
        self._hidden: set[str] = set()
        super().__init__(directory)

    def hide(self, cids) -> None:
        self._hidden.update(cids)

    def add(self, data: bytes) -> ModelInfo:
        info = super().add(data)
        self._hidden.discard(info.cid)
        return info

    def load(self, cid: str) -> bytes:
        if cid in self._hidden:
            raise ModelNotFound(cid)
        return super().load(cid)

    def __getitem__(self, cid: str) -> ModelInfo:
        if cid in self._hidden:
            raise KeyError(cid)
        return super().__getitem__(cid)

    def __iter__(self):
        return iter([cid for cid in super().__iter__() if cid not in self._hidden])

    def __len__(self) -> int:
        return sum(1 for _ in self)
