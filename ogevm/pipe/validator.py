"""The validator: imports a PIPE block with its bundle, without any model.

Checks are layered, cheapest first: the bundle's trie root against ``extra_data`` (on
the bundle's bytes when it arrives encoded); the records' order against the block's
transactions; every record against its mode's promise (signature, attestation, proof),
then every record against the inference-node registry as the parent block's state holds
it (EVM calls, so after all the stateless checks); then the block is replayed in REPLAY mode and must use exactly
the bundle's records, in order, diverge nowhere, and reach the header's state root.
The block's scheduled calls come first in that order; one of them that meets a request
without a record is deferred, not a divergence (:mod:`ogevm.vm.scheduler`).
Any failure raises :class:`~ogevm.errors.InvalidBlock` and imports nothing.
"""

from __future__ import annotations

from typing import Mapping, Sequence, Type

from eth.abc import BlockAPI, ChainAPI
from eth.exceptions import HeaderNotFound
from eth.vm.base import VM
from eth.vm.chain_context import ChainContext
from eth_utils import ValidationError

from ogevm.errors import InvalidBlock
from ogevm.models.store import ModelInfo
from ogevm.pipe.bundle import bundle_root, decode_records, encodings_root, split_bundle
from ogevm.records import InferenceRecord, MalformedBundle
from ogevm.pipe.mocks import check_mock_record, is_mock
from ogevm.precompile.modes import ReplayProvider
from ogevm.verify.records import InvalidRecord, ProofChecker, check_record, check_registration, verify_proof
from ogevm.verify.registry import RegistryView
from ogevm.vm.scheduler import scheduled_call_hashes

_HEADER_FIELDS = ("state_root", "receipt_root", "gas_used", "bloom", "transaction_root")


class BlockValidator:
    """Validates and imports PIPE blocks onto ``chain``.

    ``catalogue`` holds model descriptions only (no model bytes); which nodes may sign
    results comes from the registry on chain; ``proofs`` verifies ZKML proofs. In dev mode
    (``accept_mocks``) mocked results, signed by the development mock key, are accepted
    (:mod:`ogevm.pipe.mocks`); otherwise that unregistered key makes the block invalid.
    """

    def __init__(self, chain: ChainAPI, vm_class: Type[VM], catalogue: Mapping[str, ModelInfo],
                 proofs: ProofChecker | None = None, accept_mocks: bool = False) -> None:
        self.chain = chain
        self.vm_class = vm_class
        self.catalogue = catalogue
        self.proofs = proofs
        self.accept_mocks = accept_mocks

    def import_block(self, block: BlockAPI, records: Sequence[InferenceRecord]) -> BlockAPI:
        """Validate ``block`` with its bundle ``records`` and make it the canonical head.

        Raises :class:`InvalidBlock` with the first reason it is invalid.
        """
        self._check_root(block, bundle_root(records))
        return self._import(block, records)

    def import_encoded(self, block: BlockAPI, bundle: bytes) -> BlockAPI:
        """:meth:`import_block` with the bundle as it travels (``encode_bundle``): bytes that
        are not the one encoding of a record list make the block invalid too. The root is
        checked on the bytes, before any record is decoded."""
        try:
            encodings = split_bundle(bundle)
            self._check_root(block, encodings_root(encodings))
            records = decode_records(encodings)
        except MalformedBundle as exc:
            raise InvalidBlock(exc.reason) from exc
        return self._import(block, records)

    @staticmethod
    def _check_root(block: BlockAPI, root: bytes) -> None:
        if root != block.header.extra_data:
            raise InvalidBlock("inference bundle does not match the root in extra_data")

    def _import(self, block: BlockAPI, records: Sequence[InferenceRecord]) -> BlockAPI:
        """Everything :meth:`import_block` checks after the bundle root."""
        try:
            parent = self.chain.get_block_header_by_hash(block.header.parent_hash)
        except HeaderNotFound as exc:
            raise InvalidBlock(f"unknown parent 0x{block.header.parent_hash.hex()}") from exc
        parent_state = self.chain.get_vm(parent).state
        scheduled = scheduled_call_hashes(parent_state, block.number, block.header.timestamp)
        self._check_order(block, records, scheduled)
        registry = RegistryView(parent_state)
        for check in (self._check_record,
                      lambda record: self._check_registration(record, registry, block.header.timestamp)):
            for i, record in enumerate(records):  # every stateless check before any registry call
                try:
                    check(record)
                except InvalidRecord as exc:
                    raise InvalidBlock(f"record {i} ({record.request_id}): {exc.reason}") from exc
        results = {record.request_id: record.result for record in records}
        if len(results) != len(records):
            raise InvalidBlock("inference bundle lists a request twice")
        provider = ReplayProvider(self.catalogue, results)
        vm = self.vm_class.with_provider(provider)(
            header=self.vm_class.create_header_from_parent(parent),
            chaindb=self.chain.chaindb,
            chain_context=ChainContext(self.chain.chain_id),
            consensus_context=self.chain.consensus_context,
        )
        try:
            imported = vm.import_block(block).block
        except ValidationError as exc:
            raise InvalidBlock(f"block does not replay: {exc}") from exc
        divergences = {h: reason for h, reason in provider.divergences.items() if h not in scheduled}
        if divergences:
            tx_hash, reason = next(iter(divergences.items()))
            raise InvalidBlock(f"tx 0x{tx_hash.hex()} diverged on replay: {reason}")
        calls = [h for h in scheduled if h not in provider.divergences] + [tx.hash for tx in block.transactions]
        used = [request for call in calls for request in provider.used.get(call, ())]
        if len(used) != len(records):
            raise InvalidBlock(f"the block used {len(used)} inference results; the bundle has {len(records)}")
        for i, (request, record) in enumerate(zip(used, records)):
            if (request.id, request.mode, request.model_cid) != (record.request_id, record.mode, record.model_cid):
                raise InvalidBlock(f"record for {record.request_id} does not describe the request made")
            if self._mocked(record):
                continue
            try:
                verify_proof(record, request.feeds, registry, self.proofs)
            except InvalidRecord as exc:
                raise InvalidBlock(f"record {i} ({record.request_id}): {exc.reason}") from exc
        if imported.header != block.header:
            fields = [f for f in _HEADER_FIELDS if getattr(imported.header, f) != getattr(block.header, f)]
            raise InvalidBlock(f"replay does not reproduce the header: {', '.join(fields) or 'header'} differ")
        self.chain.persist_block(imported)
        return imported

    def _mocked(self, record: InferenceRecord) -> bool:
        """Whether ``record`` is a mocked result this (dev-mode) validator checks as such."""
        return self.accept_mocks and is_mock(record)

    def _check_record(self, record: InferenceRecord) -> None:
        """The stateless checks of ``record``: a mocked one's in dev mode, else its mode's."""
        if not is_mock(record):
            check_record(record)
        elif self.accept_mocks:
            check_mock_record(record)
        else:
            raise InvalidRecord("a mocked result (development mock key): only a validator in dev mode accepts it")

    def _check_registration(self, record: InferenceRecord, registry: RegistryView, timestamp: int) -> None:
        """The registry checks of ``record``; a mocked one (dev mode) names no registered node."""
        if not self._mocked(record):
            check_registration(record, registry, timestamp)

    @staticmethod
    def _check_order(block: BlockAPI, records: Sequence[InferenceRecord], scheduled: Sequence[bytes]) -> None:
        position = {call: i for i, call in enumerate((*scheduled, *(tx.hash for tx in block.transactions)))}
        keys = []
        for record in records:
            tx_index = position.get(record.request_id.tx_hash)
            if tx_index is None:
                raise InvalidBlock(f"record {record.request_id} names a transaction not in the block")
            keys.append((tx_index, record.request_id.index))
        if keys != sorted(keys):
            raise InvalidBlock("inference records are not in block order")
