"""What the dev node keeps next to its chain: bundles, the pool, finished statuses.

All of it lives in the node's database under ``ogevm:`` prefixes, so one LevelDB
directory holds the whole node and a write is as durable as a block write:

* ``ogevm:bundle:<bundle root>`` -> RLP list of a block's inference records, keyed by
  the root the block's ``extra_data`` holds (so it is written before the block is);
* ``ogevm:pool:<tx hash>`` -> the raw transaction, from acceptance until it finishes;
* ``ogevm:status:<tx hash>`` -> JSON ``{state, reason, block}`` of a finished tx;
* ``ogevm:revert:<tx hash>`` -> UTF-8 revert reason of an included tx that reverted, written
  when its block is built (receipts keep no return data, the builder's computations do);
* ``ogevm:preimage:<keccak>`` -> an address or storage slot of the state tries, written by
  the node's VM (:mod:`ogevm.node.preimages`).
"""

from __future__ import annotations

import json
from typing import Iterator, Sequence

import rlp
from eth.abc import AtomicDatabaseAPI, BlockHeaderAPI

from ogevm.pipe.bundle import bundle_root
from ogevm.records import InferenceRecord

_BUNDLE, _POOL, _STATUS, _REVERT = b"ogevm:bundle:", b"ogevm:pool:", b"ogevm:status:", b"ogevm:revert:"


class NodeStorage:
    """Bundles, pooled transactions, finished statuses and revert reasons in the node's database."""

    def __init__(self, db: AtomicDatabaseAPI) -> None:
        self.db = db

    def put_bundle(self, records: Sequence[InferenceRecord]) -> None:
        self.db[_BUNDLE + bundle_root(records)] = rlp.encode([r.encode() for r in records])

    def bundle(self, header: BlockHeaderAPI) -> list[InferenceRecord]:
        """The records of the block with ``header`` (empty if it has none stored)."""
        try:
            data = self.db[_BUNDLE + header.extra_data]
        except KeyError:
            return []
        return [InferenceRecord.decode(item) for item in rlp.decode(data)]

    def put_pooled(self, tx_hash: bytes, raw: bytes) -> None:
        self.db[_POOL + tx_hash] = raw

    def pooled(self) -> Iterator[tuple[bytes, bytes]]:
        """(tx hash, raw tx) of every accepted, unfinished transaction (LevelDB only)."""
        yield from self.db.prefixed(_POOL)

    def finish(self, tx_hash: bytes, state: str, reason: str | None, block: int | None) -> None:
        """Record a terminal status and forget the pooled transaction, atomically."""
        with self.db.atomic_batch() as batch:
            batch[_STATUS + tx_hash] = json.dumps({"state": state, "reason": reason, "block": block}).encode()
            if _POOL + tx_hash in batch:
                del batch[_POOL + tx_hash]

    def put_revert_reason(self, tx_hash: bytes, reason: str) -> None:
        self.db[_REVERT + tx_hash] = reason.encode()

    def revert_reason(self, tx_hash: bytes) -> str | None:
        """Why the included ``tx_hash`` reverted; None if it did not (or is not included)."""
        try:
            return self.db[_REVERT + tx_hash].decode()
        except KeyError:
            return None

    def forget(self, tx_hash: bytes) -> None:
        """Drop the pooled copy, the status and the revert reason of ``tx_hash``
        (``evm_revert`` undid it)."""
        with self.db.atomic_batch() as batch:
            for key in (_POOL + tx_hash, _STATUS + tx_hash, _REVERT + tx_hash):
                if key in batch:
                    del batch[key]

    def status(self, tx_hash: bytes) -> dict | None:
        try:
            return json.loads(self.db[_STATUS + tx_hash])
        except KeyError:
            return None
