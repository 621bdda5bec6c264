"""Admission through ``Pipeline.submit``: every rejection reason, replacement, capacity, gaps."""

from __future__ import annotations

import pytest
import rlp
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE
from eth_keys import keys

from ogevm.errors import TransactionRejected
from ogevm.pipe.admission import MAX_NONCE, MAX_TX_BYTES, AdmissionRules
from ogevm.pipe.mempool import PoolLimits, TxState
from ogevm.pipe.pipeline import PipeConfig, Pipeline
from ogevm.vm.accounts import DevAccount

from pipe_helpers import GWEI, NODE_KEY

SECPK1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# Fields of an EIP-1559 transaction's RLP payload (after the 0x02 type byte).
Y_PARITY, R, S = 9, 10, 11


def transfer(chain, sender=0, nonce=None, tip=0, max_fee=None, gas=21_000, value=1, data=b"", to=None):
    return chain.sign(sender, to or chain.accounts[9].address, data=data, value=value, gas=gas, nonce=nonce,
                      max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)


def rejection(pipeline, tx) -> str:
    before = {e.hash for e in pipeline.pool.entries()}
    with pytest.raises(TransactionRejected) as info:
        pipeline.submit(tx)
    assert {e.hash for e in pipeline.pool.entries()} == before  # nothing admitted, nothing evicted
    return info.value.reason


def with_signature_fields(chain, tx, **fields):
    """``tx`` decoded again from its raw bytes with some signature fields replaced."""
    raw = tx.encode()
    assert raw[0] == 2
    payload = rlp.decode(raw[1:])
    for name, value in fields.items():
        index = {"y_parity": Y_PARITY, "r": R, "s": S}[name]
        payload[index] = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return chain.vm_class.get_transaction_builder().decode(raw[:1] + rlp.encode(payload))


def test_a_valid_transaction_is_admitted_as_pending(chain, pipeline):
    tx = transfer(chain)
    assert pipeline.submit(tx) == tx.hash
    status = pipeline.pool.status(tx.hash)
    assert status.state is TxState.PENDING and status.reason is None and status.block_number is None
    assert len(pipeline.pool) == 1


@pytest.mark.parametrize("fields", [
    {"s": 0},
    {"r": 0},
    {"s": SECPK1_N},
    {"r": SECPK1_N + 5},
    {"y_parity": 5},
], ids=["s=0", "r=0", "s=N", "r>N", "v=5"])
def test_bad_signature_is_rejected(chain, pipeline, fields):
    tx = transfer(chain)
    bad = with_signature_fields(chain, tx, **fields)
    reason = rejection(pipeline, bad)
    assert reason.startswith("invalid signature"), reason
    assert len(pipeline.pool) == 0
    pipeline.submit(tx)  # the genuine one is still welcome


def test_malleated_high_s_signature_is_rejected_and_cannot_censor_the_original(chain, pipeline):
    """EIP-2: s must be at most N/2. The (N - s, 1 - v) twin of a valid signature recovers the
    same sender, so a pool that accepts it lets anyone who saw a tx block the genuine one
    (same sender and nonce, no fee bump: "replacement underpriced"), while py-evm refuses
    the twin at execution ("Invalid signature S value")."""
    tx = transfer(chain)
    twin = with_signature_fields(chain, tx, s=SECPK1_N - tx.s, y_parity=1 - tx.y_parity)
    assert twin.sender == tx.sender and twin.hash != tx.hash
    with pytest.raises(TransactionRejected) as info:
        pipeline.submit(twin)
    assert "signature" in info.value.reason
    assert pipeline.submit(tx) == tx.hash


def test_wrong_chain_id_is_rejected(chain, pipeline):
    builder = chain.vm_class.get_transaction_builder()
    unsigned = builder.new_unsigned_dynamic_fee_transaction(
        chain_id=1, nonce=0, max_priority_fee_per_gas=0, max_fee_per_gas=10 * GWEI, gas=21_000,
        to=chain.accounts[1].address, value=1, data=b"", access_list=())
    tx = unsigned.as_signed_transaction(chain.accounts[0].private_key, chain_id=1)
    assert tx.sender == chain.accounts[0].address  # a valid signature, for another chain
    assert rejection(pipeline, tx) == "wrong chain id 1; this chain is 31337"


def test_nonce_too_low_is_rejected(chain, pipeline):
    old = transfer(chain)
    chain.mine([old])
    assert rejection(pipeline, old) == "nonce too low: 0 < 1"
    assert rejection(pipeline, transfer(chain, nonce=0, value=2)) == "nonce too low: 0 < 1"


def test_admission_reads_each_new_head(chain, pipeline):
    """The state admission reads is made once per head: a block mined since is seen."""
    pipeline.submit(transfer(chain, sender=1))  # admission's view of this head is made
    chain.mine([transfer(chain, sender=0)])  # nonce 0 of sender 0 goes in directly
    assert rejection(pipeline, transfer(chain, sender=0, nonce=0, value=2)) == "nonce too low: 0 < 1"


def test_insufficient_funds_is_rejected(chain, pipeline):
    pauper = DevAccount(keys.PrivateKey(b"\x07" * 32))
    assert chain.balance(pauper.address) == 0
    tx = chain.sign(pauper, chain.accounts[0].address, value=0, gas=21_000, max_fee_per_gas=3 * GWEI)
    assert rejection(pipeline, tx) == f"insufficient funds for gas * price + value: 0 < {21_000 * 3 * GWEI}"
    # value counts too: a funded account cannot send more than it has
    rich = chain.accounts[0]
    balance = chain.balance(rich.address)
    greedy = transfer(chain, value=balance, max_fee=3 * GWEI)
    assert rejection(pipeline, greedy).startswith(f"insufficient funds for gas * price + value: {balance} < ")


def test_intrinsic_gas_too_low_is_rejected(chain, pipeline):
    assert rejection(pipeline, transfer(chain, gas=20_999)) == "intrinsic gas too low: 20999 < 21000"
    with_data = transfer(chain, gas=21_100, data=b"\x01" * 10)  # 21000 + 10 * 16 = 21160
    assert rejection(pipeline, with_data) == "intrinsic gas too low: 21100 < 21160"


def test_gas_between_intrinsic_and_the_eip7623_floor_is_rejected(chain, pipeline):
    data = b"\x01" * 1000  # intrinsic 21000 + 16 * 1000; floor 21000 + 10 * 4 * 1000
    tx = transfer(chain, gas=50_000, data=data)
    assert tx.intrinsic_gas == 37_000 < 50_000 < 61_000
    assert rejection(pipeline, tx) == "gas 50000 below the EIP-7623 calldata floor 61000"
    zeros = transfer(chain, gas=30_000, data=b"\x00" * 1000)  # 1000 tokens: floor 31000, intrinsic 25000
    assert rejection(pipeline, zeros) == "gas 30000 below the EIP-7623 calldata floor 31000"
    assert pipeline.submit(transfer(chain, gas=61_000, data=data))


def test_gas_above_the_block_limit_is_rejected(chain, pipeline):
    limit = chain.head.gas_limit
    reason = rejection(pipeline, transfer(chain, gas=limit + 1))
    assert reason == f"gas limit {limit + 1} exceeds the block gas limit {limit}"
    assert pipeline.submit(transfer(chain, gas=limit))


def test_oversized_transaction_is_rejected(chain, pipeline):
    tx = transfer(chain, gas=29_000_000, data=b"\x01" * (MAX_TX_BYTES + 1))
    assert len(tx.encode()) > MAX_TX_BYTES
    assert rejection(pipeline, tx) == f"oversized transaction: over {MAX_TX_BYTES} bytes"


def test_fee_below_the_base_fee_is_rejected(chain, pipeline):
    base_fee = chain.base_vm_class.create_header_from_parent(chain.head).base_fee_per_gas
    tx = transfer(chain, max_fee=base_fee - 1)
    assert rejection(pipeline, tx) == f"fee below the minimum: max fee {base_fee - 1} < base fee {base_fee}"
    assert pipeline.submit(transfer(chain, max_fee=base_fee))


def test_priority_fee_below_the_pool_minimum_is_rejected(chain, pipeline):
    rules = pipeline.pool.rules
    pipeline.pool.rules = AdmissionRules(rules.chain_id, rules.block_gas_limit, min_priority_fee=GWEI)
    reason = rejection(pipeline, transfer(chain, tip=GWEI - 1))
    assert reason == f"fee below the minimum: priority fee {GWEI - 1} < {GWEI}"
    assert pipeline.submit(transfer(chain, tip=GWEI))


def test_already_known_is_rejected(chain, pipeline):
    tx = transfer(chain)
    pipeline.submit(tx)
    assert rejection(pipeline, tx) == "already known"
    assert len(pipeline.pool) == 1 and pipeline.pool.status(tx.hash).state is TxState.PENDING


@pytest.mark.parametrize("tip, max_fee", [
    (GWEI * 109 // 100, 11 * GWEI),   # tip raised 9%
    (GWEI * 2, 10 * GWEI * 109 // 100),  # max fee raised 9%
    (GWEI, 10 * GWEI),               # same fees, other value
], ids=["tip+9%", "maxfee+9%", "no-bump"])
def test_replacement_under_ten_percent_is_underpriced(chain, pipeline, tip, max_fee):
    old = transfer(chain, nonce=0, tip=GWEI, max_fee=10 * GWEI)
    pipeline.submit(old)
    new = transfer(chain, nonce=0, tip=tip, max_fee=max_fee, value=7)
    assert rejection(pipeline, new).startswith("replacement transaction underpriced")
    assert pipeline.pool.status(old.hash).state is TxState.PENDING
    assert pipeline.pool.status(new.hash) is None


def test_replacement_with_ten_percent_bump_replaces(chain, pipeline):
    old = transfer(chain, nonce=0, tip=GWEI, max_fee=10 * GWEI)
    pipeline.submit(old)
    new = transfer(chain, nonce=0, tip=GWEI * 110 // 100, max_fee=11 * GWEI, value=7)
    pipeline.submit(new)
    replaced = pipeline.pool.status(old.hash)
    assert replaced.state is TxState.REJECTED and replaced.reason == f"replaced by 0x{new.hash.hex()}"
    assert pipeline.pool.status(new.hash).state is TxState.PENDING
    assert len(pipeline.pool) == 1
    # the replaced one cannot come back, the new one is what gets mined
    assert rejection(pipeline, old).startswith("replacement transaction underpriced")
    (built,) = pipeline.run_until_idle()
    assert [tx.hash for tx in built.block.transactions] == [new.hash]
    assert pipeline.pool.status(new.hash).state is TxState.INCLUDED
    assert pipeline.pool.status(old.hash).state is TxState.REJECTED


def test_a_tx_whose_inference_is_running_cannot_be_replaced(chain, pipeline):
    old = transfer(chain, nonce=0, tip=GWEI, max_fee=10 * GWEI)
    pipeline.submit(old)
    pipeline.pool.set_state(pipeline.pool.get(old.hash), TxState.INFERRING)
    new = transfer(chain, nonce=0, tip=2 * GWEI, max_fee=20 * GWEI)
    assert rejection(pipeline, new) == "cannot replace a transaction whose inference is running"


def test_a_full_pool_evicts_the_cheapest_for_a_better_tip_and_refuses_a_cheaper_one(chain):
    pipeline = Pipeline(chain, NODE_KEY, config=PipeConfig(pool=PoolLimits(capacity=3)))
    txs = [transfer(chain, sender=i, tip=(i + 1) * GWEI, max_fee=20 * GWEI) for i in range(3)]
    for tx in txs:
        pipeline.submit(tx)
    better = transfer(chain, sender=3, tip=5 * GWEI, max_fee=20 * GWEI)
    pipeline.submit(better)
    assert len(pipeline.pool) == 3
    evicted = pipeline.pool.status(txs[0].hash)
    assert evicted.state is TxState.REJECTED and evicted.reason.startswith("evicted")
    # cheaper than everything left (2 gwei), or only as cheap: refused, nothing evicted
    for tip in (GWEI, 2 * GWEI):
        cheap = transfer(chain, sender=4, tip=tip, max_fee=20 * GWEI)
        assert rejection(pipeline, cheap) == "transaction pool is full"
    assert {e.hash for e in pipeline.pool.entries()} == {txs[1].hash, txs[2].hash, better.hash}
    # a replacement needs no free slot
    bump = transfer(chain, sender=1, nonce=0, tip=4 * GWEI, max_fee=30 * GWEI)
    pipeline.submit(bump)
    assert len(pipeline.pool) == 3
    blocks = pipeline.run_until_idle()
    included = [tx.hash for b in blocks for tx in b.block.transactions]
    # best tip first
    assert included == [better.hash, bump.hash, txs[2].hash]


def test_a_gapped_nonce_waits_until_the_gap_is_filled(chain, pipeline):
    later = transfer(chain, nonce=1, value=2)
    pipeline.submit(later)
    assert pipeline.run_until_idle() == []
    assert pipeline.pool.status(later.hash).state is TxState.PENDING
    head = chain.head.block_number
    first = transfer(chain, nonce=0, value=1)
    pipeline.submit(first)
    (built,) = pipeline.run_until_idle()
    assert [tx.hash for tx in built.block.transactions] == [first.hash, later.hash]
    for tx in (first, later):
        status = pipeline.pool.status(tx.hash)
        assert status.state is TxState.INCLUDED and status.block_number == head + 1
    assert chain.nonce(chain.accounts[0].address) == 2
    assert len(pipeline.pool) == 0


# --- rules that make a block invalid elsewhere: none of them may reach a block -----------

def test_initcode_over_the_eip3860_limit_is_rejected_and_at_the_limit_admitted(chain, pipeline):
    over = chain.sign(0, None, b"\x00" * (MAX_INITCODE_SIZE + 1), gas=10_000_000)
    assert rejection(pipeline, over) == (
        f"initcode of {MAX_INITCODE_SIZE + 1} bytes exceeds the limit of {MAX_INITCODE_SIZE} (EIP-3860)")
    at_limit = chain.sign(0, None, b"\x00" * MAX_INITCODE_SIZE, gas=10_000_000)
    pipeline.submit(at_limit)
    (built,) = pipeline.run_until_idle()
    assert [tx.hash for tx in built.block.transactions] == [at_limit.hash]


def test_priority_fee_above_the_max_fee_is_rejected(chain, pipeline):
    tx = transfer(chain, tip=3 * GWEI, max_fee=2 * GWEI)
    assert rejection(pipeline, tx) == f"priority fee {3 * GWEI} above the max fee {2 * GWEI} (EIP-1559)"
    assert pipeline.submit(transfer(chain, tip=2 * GWEI, max_fee=2 * GWEI))


def test_nonce_at_the_eip2681_limit_is_rejected(chain, pipeline):
    assert rejection(pipeline, transfer(chain, nonce=MAX_NONCE)) == (
        f"nonce {MAX_NONCE} too high: the limit is 2^64-2 (EIP-2681)")
    assert pipeline.submit(transfer(chain, nonce=MAX_NONCE - 1))  # queued, behind a gap


def _set_code_tx(chain, authorizations):
    builder = chain.vm_class.get_transaction_builder()
    unsigned = builder.new_unsigned_set_code_transaction(
        chain_id=chain.chain.chain_id, nonce=0, max_priority_fee_per_gas=0, max_fee_per_gas=10 * GWEI,
        gas=100_000, to=chain.accounts[1].address, value=0, data=b"", access_list=(),
        authorization_list=authorizations)
    return unsigned.as_signed_transaction(chain.accounts[0].private_key, chain_id=chain.chain.chain_id)


def test_set_code_transaction_needs_an_authorization(chain, pipeline):
    assert rejection(pipeline, _set_code_tx(chain, [])) == (
        "a set-code transaction needs a non-empty authorization list (EIP-7702)")
    # an authorization with a bad signature is skipped at execution: the tx itself is valid
    bogus = {"chain_id": chain.chain.chain_id, "address": chain.accounts[2].address, "nonce": 0,
             "y_parity": 0, "r": 1, "s": 1}
    tx = _set_code_tx(chain, [bogus])
    pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    assert [t.hash for t in built.block.transactions] == [tx.hash]


def test_blob_transactions_are_rejected(chain, pipeline):
    builder = chain.vm_class.get_transaction_builder()
    unsigned = builder.new_unsigned_blob_transaction(
        chain.chain.chain_id, 0, 0, 10 * GWEI, 100_000, chain.accounts[1].address, 0, b"", (),
        10 * GWEI, (b"\x01" + b"\x00" * 31,))
    tx = unsigned.as_signed_transaction(chain.accounts[0].private_key, chain_id=chain.chain.chain_id)
    assert rejection(pipeline, tx) == "blob transactions (type 3) are not supported: this node keeps no blobs"


class _AdmitAll(AdmissionRules):
    """Rules that admit anything: what a pool with a gap in its checks would let through."""

    def check(self, transaction, state, base_fee):
        pass


def test_a_transaction_that_breaks_execution_is_rejected_and_production_goes_on(chain, pipeline):
    """Defence in depth behind admission: py-evm raises OutOfGas out of a whole transaction
    for oversize initcode; the simulation rejects that tx with the reason, and the next
    transaction of another sender is still mined."""
    pipeline.pool.rules = _AdmitAll(chain.chain.chain_id, chain.head.gas_limit)
    breaking = chain.sign(0, None, b"\x00" * (MAX_INITCODE_SIZE + 1), gas=10_000_000)
    pipeline.submit(breaking)
    fine = transfer(chain, sender=1)
    pipeline.submit(fine)
    (built,) = pipeline.run_until_idle()
    assert [tx.hash for tx in built.block.transactions] == [fine.hash]
    status = pipeline.pool.status(breaking.hash)
    assert status.state is TxState.REJECTED
    assert status.reason.startswith("cannot be executed: OutOfGas: Contract code size exceeds EIP-3860")


# --- pool limits ---------------------------------------------------------------------------

def test_a_sender_cannot_queue_more_than_its_limit_behind_a_gap(chain):
    pipeline = Pipeline(chain, NODE_KEY, config=PipeConfig(pool=PoolLimits(max_queued_per_sender=3)))
    for nonce in (5, 6, 7):
        pipeline.submit(transfer(chain, nonce=nonce))
    assert rejection(pipeline, transfer(chain, nonce=8)) == (
        "too many queued transactions: this sender already has 3 waiting behind a nonce gap (account nonce 0)")
    # executable ones are not limited by it, and another sender may queue as well
    for nonce in range(5):
        pipeline.submit(transfer(chain, nonce=nonce))
    pipeline.submit(transfer(chain, sender=1, nonce=4))
    assert len(pipeline.pool) == 9


def test_one_sender_flooding_the_pool_does_not_lock_others_out(chain):
    pipeline = Pipeline(chain, NODE_KEY, config=PipeConfig(pool=PoolLimits(capacity=20, account_slots=4)))
    flood = [transfer(chain, nonce=n, tip=5 * GWEI, max_fee=20 * GWEI) for n in range(20)]
    for tx in flood:
        pipeline.submit(tx)
    assert rejection(pipeline, transfer(chain, nonce=20, tip=9 * GWEI, max_fee=20 * GWEI)).startswith(
        "transaction pool is full and this sender holds the most transactions (20)")
    other = transfer(chain, sender=1, tip=0, max_fee=20 * GWEI)  # pays less, still gets in
    pipeline.submit(other)
    evicted = pipeline.pool.status(flood[-1].hash)
    assert evicted.state is TxState.REJECTED and "held the most transactions" in evicted.reason
    assert pipeline.pool.status(other.hash).state is TxState.PENDING
    blocks = pipeline.run_until_idle()
    included = {tx.hash for b in blocks for tx in b.block.transactions}
    assert other.hash in included and {tx.hash for tx in flood[:-1]} <= included


def test_a_queued_transaction_expires_when_its_gap_stays_open(chain):
    pipeline = Pipeline(chain, NODE_KEY, config=PipeConfig(pool=PoolLimits(queued_lifetime=0.0)))
    stuck = transfer(chain, nonce=2)
    pipeline.submit(stuck)
    pipeline.run_until_idle()
    status = pipeline.pool.status(stuck.hash)
    assert status.state is TxState.REJECTED
    assert status.reason == "dropped: nonce gap before it (at nonce 0) not filled within 0 s"
    assert len(pipeline.pool) == 0
