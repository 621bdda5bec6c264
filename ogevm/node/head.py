"""Edits of the canonical chain that only a dev node makes: moving the head back to an
earlier block (``evm_revert``) and re-sealing the head with another state (``anvil_setBalance``
and the other state setters).

py-evm only moves the head forward (a new block must score higher). :func:`set_head` rewrites,
in one atomic batch, what py-evm keeps about the canonical chain: block number -> hash,
transaction hash -> (block number, index), the head pointer and the two gap records that say
where the chain ends, so that the next block is built and persisted as on any head. Blocks
that stop being canonical stay stored (their hash still finds them), as after a reorg.
"""

from __future__ import annotations

from typing import Callable

import rlp
from eth.abc import BlockHeaderAPI, ChainDatabaseAPI, StateAPI
from eth.db.chain import BlockDataKey
from eth.db.chain_gaps import GENESIS_CHAIN_GAPS
from eth.db.schema import SchemaV1
from eth.rlp.sedes import chain_gaps

_GAP_KEYS = (SchemaV1.make_header_chain_gaps_lookup_key(), SchemaV1.make_chain_gaps_lookup_key())


def set_head(chaindb: ChainDatabaseAPI, header: BlockHeaderAPI) -> None:
    """Make the stored ``header`` the canonical head: the canonical blocks above its number,
    and another block at its number, stop being canonical."""
    old_head = chaindb.get_canonical_head()
    number = header.block_number
    dropped = [chaindb.get_canonical_block_header_by_number(n) for n in range(number, old_head.block_number + 1)]
    with chaindb.db.atomic_batch() as batch:
        for old in dropped:
            if old.hash != header.hash:
                for tx_hash in chaindb.get_block_transaction_hashes(old):
                    del batch[SchemaV1.make_transaction_hash_to_block_lookup_key(tx_hash)]
            if old.block_number > number:
                del batch[SchemaV1.make_block_number_to_hash_lookup_key(old.block_number)]
        for index, tx_hash in enumerate(chaindb.get_block_transaction_hashes(header)):
            batch[SchemaV1.make_transaction_hash_to_block_lookup_key(tx_hash)] = rlp.encode(BlockDataKey(number, index))
        batch[SchemaV1.make_block_number_to_hash_lookup_key(number)] = rlp.encode(header.hash, sedes=rlp.sedes.binary)
        batch[SchemaV1.make_canonical_head_hash_lookup_key()] = header.hash
        for key in _GAP_KEYS:  # the chain ends at ``number`` again
            gaps = rlp.decode(chaindb.db[key], sedes=chain_gaps) if key in chaindb.db else GENESIS_CHAIN_GAPS
            below = tuple((low, min(high, number)) for low, high in gaps[0] if low <= number)
            batch[key] = rlp.encode((below, number + 1), sedes=chain_gaps)


def reseal_head(chain, edit: Callable[[StateAPI], None]) -> BlockHeaderAPI:
    """Apply ``edit`` to the head's state and make the head that state's: a copy of the head
    header with the new ``stateRoot`` (so a new hash), same number, transactions, receipts and
    time. ``chain`` is a py-evm chain. Returns the new head.

    A validator would refuse the re-sealed block: its transactions, executed on its parent,
    give the old state root, not this one (anvil and Hardhat also keep such an "irregular"
    state; they keep the old header).
    """
    head = chain.get_canonical_head()
    state = chain.get_vm(head).state
    edit(state)
    state.persist()
    new_head = head.copy(state_root=state.state_root)
    chaindb = chain.chaindb
    with chaindb.db.atomic_batch() as batch:
        batch[new_head.hash] = rlp.encode(new_head)
        batch[SchemaV1.make_block_hash_to_score_lookup_key(new_head.hash)] = rlp.encode(
            chaindb.get_score(head.hash), sedes=rlp.sedes.big_endian_int)
    set_head(chaindb, new_head)
    return new_head
