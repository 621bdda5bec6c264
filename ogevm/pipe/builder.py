"""The block builder: replays ready transactions with their precomputed results.

No model runs here. Each transaction is replayed in REPLAY mode under a snapshot; one
that asks for a result it does not have (a *divergence*: earlier transactions in the
block changed what it computes) is rolled back and handed back for re-simulation,
together with the later transactions of its sender, which depend on it.

The block's scheduled calls run first, in its pre-processing, with the results the
pipeline requested for them ahead of time (:mod:`ogevm.pipe.scheduler`); their records
open the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence, Type

from eth.abc import BlockAPI, ChainAPI, ComputationAPI, ReceiptAPI
from eth.vm.base import VM

from ogevm.errors import InvalidTransaction
from ogevm.models.store import ModelInfo
from ogevm.pipe.bundle import bundle_root
from ogevm.pipe.mempool import PoolEntry
from ogevm.pipe.ordering import best_transactions
from ogevm.pipe.scheduler import scheduled_records
from ogevm.precompile.modes import ReplayProvider
from ogevm.records import InferenceRecord, InferenceRequest, RequestId
from ogevm.vm.blocks import PendingBlock
from ogevm.vm.scheduler import TaskRun


@dataclass
class BuiltBlock:
    """A sealed block, its inference bundle, and what happened to each candidate.

    ``receipts`` and ``computations`` are aligned with ``block.transactions``. ``block`` is
    None when the build was asked not to seal an empty block and nothing was included.
    ``divergent`` holds, for each deferred tx, the request its replay had no result for.
    ``scheduled`` lists the block's scheduled calls and their outcomes.
    """

    block: BlockAPI | None
    records: list[InferenceRecord]
    receipts: list[ReceiptAPI] = field(default_factory=list)
    computations: list[ComputationAPI] = field(default_factory=list)
    included: list[PoolEntry] = field(default_factory=list)
    deferred: dict[bytes, str] = field(default_factory=dict)
    invalid: dict[bytes, str] = field(default_factory=dict)
    divergent: dict[bytes, InferenceRequest] = field(default_factory=dict)
    scheduled: tuple[TaskRun, ...] = ()


class BlockBuilder:
    """Builds blocks on ``chain`` with the inference fork ``vm_class``."""

    def __init__(self, chain: ChainAPI, vm_class: Type[VM], catalogue: Mapping[str, ModelInfo]) -> None:
        self.chain = chain
        self.vm_class = vm_class
        self.catalogue = catalogue

    def build(self, candidates: Sequence[PoolEntry], timestamp: int | None = None,
              before_seal: Callable[[list[InferenceRecord]], None] | None = None,
              seal_empty: bool = True, scheduled: Mapping[RequestId, InferenceRecord] = {}) -> BuiltBlock:
        """Replay ``candidates`` (ready entries) into a new canonical block.

        ``before_seal(records)`` runs before the block is persisted (a node stores the
        bundle there, so no block is ever on disk without its bundle). With
        ``seal_empty=False`` nothing is sealed when no candidate could be included.
        Each replay attempt counts as an EVM pass of its entry.

        Returns the block and its records; entries that diverged are in ``deferred``,
        entries that cannot be included at all in ``invalid``, with reasons. Entries of a
        sender after a deferred, invalid or non-fitting one wait for a later block.

        ``scheduled`` holds the results computed for the block's scheduled calls; a call
        that needs one it lacks is deferred by the VM (see :mod:`ogevm.vm.scheduler`).
        """
        results = {rid: record.result for rid, record in scheduled.items()}
        results.update((rid, record.result) for entry in candidates for rid, record in entry.records.items())
        provider = ReplayProvider(self.catalogue, results)
        pending = PendingBlock(self.chain, self.vm_class.with_provider(provider), timestamp=timestamp)
        runs = pending.vm.scheduled_runs
        base_fee = pending.header.base_fee_per_gas
        included, deferred, invalid, blocked = [], {}, {}, set()
        records = scheduled_records(runs, provider, scheduled)
        for entry in best_transactions(candidates, base_fee):
            if entry.sender in blocked:
                continue
            if entry.tx.gas > pending.gas_remaining:
                blocked.add(entry.sender)
                continue
            entry.passes += 1
            try:
                kept = pending.apply(entry.tx, keep=lambda _: entry.hash not in provider.divergences)
            except InvalidTransaction as exc:
                invalid[entry.hash] = str(exc)
                blocked.add(entry.sender)
                continue
            if kept is None:
                deferred[entry.hash] = provider.divergences[entry.hash]
                blocked.add(entry.sender)
                continue
            included.append(entry)
            records.extend(entry.records[request.id] for request in provider.used.get(entry.hash, ()))
        divergent = {tx_hash: request for tx_hash, request in provider.divergent.items() if tx_hash in deferred}
        if not included and not seal_empty:
            return BuiltBlock(None, [], included=included, deferred=deferred, invalid=invalid, divergent=divergent)
        if before_seal is not None:
            before_seal(records)
        block = pending.seal(extra_data=bundle_root(records))
        return BuiltBlock(block, records, pending.receipts, pending.computations, included, deferred, invalid,
                          divergent, runs)
