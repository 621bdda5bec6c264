"""PIPE end to end: rounds, committed failures, divergence, deferral, and no lost transaction."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from eth._utils.address import generate_contract_address

from ogevm.abi.codec import decode_revert_reason
from ogevm.fixtures import fixture_contract
from ogevm.pipe.mempool import TxState
from ogevm.pipe.pipeline import PipeConfig, Pipeline
from ogevm.vm.chain import DeployedContract, DevChain

from pipe_helpers import (
    FEATURES,
    GAS,
    GWEI,
    NODE_KEY,
    Replica,
    assert_all_settled,
    call_for,
    deploy_all,
    mine_inline_like,
    receipt_ok,
    receipts_of,
    tensor,
)

def contracts_for(cids):
    return [
        ("PriceForecast", (cids["linear_regression"], "x", "y")),
        ("DependentInference", ()),
        ("InferenceCaller", ()),
    ]


@pytest.fixture
def world(fixture_store, cids):
    """A PIPE chain and an INLINE twin with the same contracts at the same addresses."""
    chain, twin = DevChain(fixture_store), DevChain(fixture_store)
    contracts = deploy_all(chain, contracts_for(cids))
    assert [c.address for c in deploy_all(twin, contracts_for(cids))] == [c.address for c in contracts]
    assert chain.head == twin.head
    return chain, twin, dict(zip(("forecast", "dependent", "caller"), contracts))


def sign_call(chain, contract, name, *args, sender=0, nonce=None, tip=0):
    data = contract.interface.function(name).encode(*args)
    return chain.sign(sender, contract.address, data, gas=GAS, nonce=nonce, max_priority_fee_per_gas=tip,
                      max_fee_per_gas=10 * GWEI + tip)


def test_dependent_inference_is_resolved_in_rounds_and_equals_inline(world, cids):
    chain, twin, contracts = world
    dependent = contracts["dependent"]
    pipeline = Pipeline(chain, NODE_KEY)
    heard = []
    pipeline.pool.listeners.append(heard.append)
    tx = sign_call(chain, dependent, "chain", cids["linear_regression"], cids["log_model"], "x", "y", FEATURES)
    pipeline.submit(tx)
    # round 1: the simulation asks for the first result only; the tx is then ready
    assert pipeline.prepare() == 1
    entry = pipeline.pool.get(tx.hash)
    assert pipeline.pool.status(tx.hash).state is TxState.READY and entry.rounds == 1
    # the replay, with the real first result, asks for the second: rolled back, back to the rounds
    rolled_back = pipeline.build_block(seal_empty=False)
    assert rolled_back.block is None and list(rolled_back.deferred) == [tx.hash]
    assert rolled_back.divergent[tx.hash].id.index == 1
    status = pipeline.pool.status(tx.hash)
    assert status.state is TxState.DEFERRED
    assert status.reason == f"divergence: no precomputed result for request 0x{tx.hash.hex()}:1"
    assert status.requests == (f"0x{tx.hash.hex()}:0", f"0x{tx.hash.hex()}:1")
    assert pipeline.prepare() == 1  # round 2 runs the request the replay found, no simulation
    assert pipeline.pool.status(tx.hash).state is TxState.READY and entry.rounds == 2
    assert [r.model_cid for r in entry.requests] == [cids["linear_regression"], cids["log_model"]]
    built = pipeline.build_block()
    assert [r.request_id.index for r in built.records] == [0, 1]
    assert entry.passes == 3  # a 2-round tx: one simulation, two replays
    assert pipeline.pool.status(tx.hash).state is TxState.INCLUDED
    assert pipeline.pool.status(tx.hash).block_number == built.block.number
    (receipt,) = receipts_of(chain, built.block)
    assert receipt_ok(receipt)
    value, decimals = dependent.call("lastResult")
    assert abs(value / 10**decimals - 1.9600948) < 1e-6  # ln(7.1)
    twin_block, _ = mine_inline_like(twin, built.block)
    assert twin_block.header == built.block.header
    Replica(chain).sync({built.block.number: built.records})
    # its path, as an explorer shows it: every step heard by a listener, in order, with the passes so far
    path = [(t.state, t.rounds, t.passes) for t in entry.history]
    assert path == [(TxState.PENDING, 0, 0), (TxState.SIMULATED, 0, 1), (TxState.INFERRING, 1, 1),
                    (TxState.READY, 1, 1), (TxState.DEFERRED, 1, 2), (TxState.SIMULATED, 1, 2),
                    (TxState.INFERRING, 2, 2), (TxState.READY, 2, 2), (TxState.INCLUDED, 2, 3)]
    assert heard == entry.history and heard[-1].block_number == built.block.number
    assert heard[4].reason == status.reason and [t.at for t in heard] == sorted(t.at for t in heard)


def test_a_dependent_inference_needing_more_rounds_than_allowed_is_rejected(world, cids):
    chain, _, contracts = world
    pipeline = Pipeline(chain, NODE_KEY, config=PipeConfig(max_rounds=1))
    tx = sign_call(chain, contracts["dependent"], "chain", cids["linear_regression"], cids["log_model"], "x", "y",
                   FEATURES)
    plain = sign_call(chain, contracts["forecast"], "forecast", FEATURES, sender=1)
    pipeline.submit(tx)
    pipeline.submit(plain)
    blocks = pipeline.run_until_idle()
    status = pipeline.pool.status(tx.hash)
    assert status.state is TxState.REJECTED
    assert status.reason == "inference did not settle after 1 rounds"
    assert [t.hash for b in blocks for t in b.block.transactions] == [plain.hash]
    assert_all_settled(pipeline, [tx.hash, plain.hash])


def test_a_failed_inference_is_included_as_a_revert_exactly_as_inline(world, cids):
    chain, twin, contracts = world
    caller = contracts["caller"]
    bad = call_for(cids["log_model"], tensor([-1], (1, 1)))
    pipeline = Pipeline(chain, NODE_KEY)
    failing = sign_call(chain, caller, "infer", bad)
    caught = sign_call(chain, caller, "tryInfer", bad, sender=1)
    for tx in (failing, caught):
        pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    assert {t.hash for t in built.block.transactions} == {failing.hash, caught.hash}
    errors = {r.request_id.tx_hash: r.result.error for r in built.records}
    assert errors == {failing.hash: "output 'y' contains NaN", caught.hash: "output 'y' contains NaN"}
    receipts = {t.hash: r for t, r in zip(built.block.transactions, receipts_of(chain, built.block))}
    assert not receipt_ok(receipts[failing.hash]) and receipt_ok(receipts[caught.hash])
    assert caller.call("lastReason") == ("output 'y' contains NaN",)
    assert pipeline.pool.status(failing.hash).state is TxState.INCLUDED  # a revert is an inclusion
    # INLINE on the twin: same revert reason, same receipts, same header
    twin_block, computations = mine_inline_like(twin, built.block)
    reasons = {t.hash: decode_revert_reason(c.output) for t, c in zip(twin_block.transactions, computations)}
    assert reasons[failing.hash] == "output 'y' contains NaN"
    assert twin_block.header == built.block.header
    assert receipts_of(twin, twin_block) == receipts_of(chain, built.block)
    Replica(chain).sync({built.block.number: built.records})


def test_an_earlier_tx_of_another_sender_makes_a_later_one_diverge(world, cids):
    """Sender 1 deploys a forecast contract; sender 2 calls it in the same batch. Simulated
    on the head, the call hits an empty account and asks for nothing; in the block it runs
    after the deployment (higher tip) and asks for a result nobody computed."""
    chain, twin, _ = world
    pipeline = Pipeline(chain, NODE_KEY)
    creator = chain.accounts[1]
    interface = fixture_contract("PriceForecast")
    deploy = chain.sign(1, None, interface.bytecode + interface.constructor_args(cids["linear_regression"], "x", "y"),
                        gas=3_000_000, max_priority_fee_per_gas=5 * GWEI, max_fee_per_gas=20 * GWEI)
    address = generate_contract_address(creator.address, chain.nonce(creator.address))
    data = interface.function("forecast").encode(FEATURES)
    later = [chain.sign(2, address, data, gas=GAS, nonce=n, max_priority_fee_per_gas=GWEI, max_fee_per_gas=20 * GWEI)
             for n in (0, 1)]
    hashes = [pipeline.submit(tx) for tx in (deploy, *later)]

    pipeline.prepare()
    assert pipeline.pool.get(later[0].hash).requests == ()  # empty account on the head
    first = pipeline.build_block()
    assert [t.hash for t in first.block.transactions] == [deploy.hash]
    assert first.records == []
    status = pipeline.pool.status(later[0].hash)
    assert status.state is TxState.DEFERRED
    assert status.reason.startswith("divergence"), status.reason
    assert f"0x{later[0].hash.hex()}:0" in status.reason
    assert list(first.deferred) == [later[0].hash]
    # the sender's next tx depends on it: not included, not deferred, still waiting
    assert pipeline.pool.status(later[1].hash).state is TxState.READY

    pipeline.prepare()  # the request the replay met runs, without another simulation
    assert pipeline.pool.status(later[0].hash).requests == (f"0x{later[0].hash.hex()}:0",)
    # the follower was ready from its simulation on the old head too: its replay finds its
    # request the same way, one block later
    second = pipeline.build_block()
    assert [t.hash for t in second.block.transactions] == [later[0].hash]
    assert list(second.deferred) == [later[1].hash]
    assert pipeline.prepare() == 1
    third = pipeline.build_block()
    assert [t.hash for t in third.block.transactions] == [later[1].hash]
    assert third.block.number == second.block.number + 1 == first.block.number + 2
    assert all(receipt_ok(r) for b in (second, third) for r in receipts_of(chain, b.block))
    assert [pipeline.pool.get(tx.hash).deferrals for tx in later] == [1, 1]
    assert [pipeline.pool.get(tx.hash).passes for tx in later] == [3, 3]  # simulation + 2 replays
    assert_all_settled(pipeline, hashes)
    forecast = DeployedContract(chain, interface, address)
    assert forecast.call("predictionCount") == (2,)
    assert forecast.call("latestPrediction") == (71, 1)
    # every block equals INLINE execution, and a model-free replica accepts them
    for built in (first, second, third):
        twin_block, _ = mine_inline_like(twin, built.block)
        assert twin_block.header == built.block.header
    Replica(chain).sync({b.block.number: b.records for b in (first, second, third)})


def _tamper_digests(pipeline, tx_hash):
    entry = pipeline.pool.get(tx_hash)
    assert entry.records
    entry.records = {rid: replace(rec, result=replace(rec.result, digest=b"\xee" * 32))
                     for rid, rec in entry.records.items()}


def test_a_tx_that_keeps_diverging_is_rejected_after_max_deferrals(world, cids):
    chain, _, contracts = world
    forecast = contracts["forecast"]
    pipeline = Pipeline(chain, NODE_KEY, config=PipeConfig(max_deferrals=2))
    victim = sign_call(chain, forecast, "forecast", FEATURES, sender=1)
    follower = sign_call(chain, forecast, "forecast", FEATURES, sender=1, nonce=1)
    bystander = sign_call(chain, forecast, "forecast", [(2, 0), (2, 0), (2, 0), (2, 0)], sender=2)
    hashes = [pipeline.submit(tx) for tx in (victim, follower, bystander)]
    included = []
    for attempt in range(1, 4):
        pipeline.prepare()
        assert pipeline.pool.status(victim.hash).state is TxState.READY
        _tamper_digests(pipeline, victim.hash)  # results now answer other calldata
        built = pipeline.build_block()
        included += [t.hash for t in built.block.transactions]
        assert list(built.deferred) == [victim.hash]
        status = pipeline.pool.status(victim.hash)
        assert status.reason is not None and "computed for other calldata" in status.reason
        if attempt <= 2:
            assert status.state is TxState.DEFERRED and status.reason.startswith("divergence")
        else:
            assert status.state is TxState.REJECTED
            assert status.reason.startswith("diverged 3 times; last: divergence")
    assert included == [bystander.hash]
    # nothing is lost: the follower's nonce can no longer be reached, and it says why
    pipeline.run_until_idle()
    assert_all_settled(pipeline, hashes)
    assert pipeline.pool.status(follower.hash).state is TxState.REJECTED
    assert len(pipeline.pool) == 0


def test_a_tx_that_becomes_invalid_in_simulation_is_rejected_with_its_followers(world):
    chain, _, _ = world
    pipeline = Pipeline(chain, NODE_KEY)
    sender = chain.accounts[3]
    balance = chain.balance(sender.address)
    fee = 21_000 * 2 * GWEI
    drain = chain.sign(3, chain.accounts[4].address, value=balance - fee, gas=21_000, max_fee_per_gas=2 * GWEI)
    broke = chain.sign(3, chain.accounts[4].address, value=1, gas=21_000, nonce=1, max_fee_per_gas=2 * GWEI)
    after = chain.sign(3, chain.accounts[4].address, value=1, gas=21_000, nonce=2, max_fee_per_gas=2 * GWEI)
    hashes = [pipeline.submit(tx) for tx in (drain, broke, after)]  # each is fine against the head
    (built,) = pipeline.run_until_idle()
    assert [t.hash for t in built.block.transactions] == [drain.hash]
    assert pipeline.pool.status(broke.hash).state is TxState.REJECTED
    assert "insufficient funds" in pipeline.pool.status(broke.hash).reason
    assert pipeline.pool.status(after.hash).reason == f"depends on rejected tx 0x{broke.hash.hex()}"
    assert_all_settled(pipeline, hashes)


def test_block_order_is_by_tip_with_each_senders_nonces_in_order(world):
    chain, _, contracts = world
    forecast = contracts["forecast"]
    pipeline = Pipeline(chain, NODE_KEY)
    txs = {
        "a0": sign_call(chain, forecast, "forecast", FEATURES, sender=4, nonce=0, tip=1 * GWEI),
        "a1": sign_call(chain, forecast, "forecast", FEATURES, sender=4, nonce=1, tip=9 * GWEI),
        "b0": sign_call(chain, forecast, "forecast", FEATURES, sender=5, nonce=0, tip=5 * GWEI),
        "c0": sign_call(chain, forecast, "forecast", FEATURES, sender=6, nonce=0, tip=3 * GWEI),
    }
    for tx in reversed(list(txs.values())):
        pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    names = {tx.hash: name for name, tx in txs.items()}
    assert [names[t.hash] for t in built.block.transactions] == ["b0", "c0", "a0", "a1"]
    assert [names[r.request_id.tx_hash] for r in built.records] == ["b0", "c0", "a0", "a1"]
    assert forecast.call("predictionCount") == (4,)


def test_rejecting_a_diverging_tx_settles_its_senders_later_txs_without_an_empty_block(world):
    """When the builder's outcome rejects a tx (too many divergences), the sender's later
    txs can never be included. Simulation already rejects such followers at once ("depends
    on rejected tx 0x…"); after a rejection in ``build_block`` they stay READY instead, so
    ``run_until_idle`` seals a block with nothing in it only to find their nonce invalid."""
    chain, _, contracts = world
    forecast = contracts["forecast"]
    pipeline = Pipeline(chain, NODE_KEY, config=PipeConfig(max_deferrals=0))
    victim = sign_call(chain, forecast, "forecast", FEATURES, sender=1)
    follower = sign_call(chain, forecast, "forecast", FEATURES, sender=1, nonce=1)
    for tx in (victim, follower):
        pipeline.submit(tx)
    pipeline.prepare()
    _tamper_digests(pipeline, victim.hash)
    pipeline.build_block()
    assert pipeline.pool.status(victim.hash).state is TxState.REJECTED
    head = chain.head.block_number
    blocks = pipeline.run_until_idle()
    status = pipeline.pool.status(follower.hash)
    assert status.state is TxState.REJECTED
    assert status.reason == f"depends on rejected tx 0x{victim.hash.hex()}"
    assert [len(b.block.transactions) for b in blocks] == [] and chain.head.block_number == head


def test_a_senders_queue_larger_than_a_block_waits_instead_of_being_rejected(fixture_store, cids):
    chain = DevChain(fixture_store)
    (forecast,) = deploy_all(chain, [("PriceForecast", (cids["heavy"], "x", "y"))])
    pipeline = Pipeline(chain, NODE_KEY)
    features = [(k % 7 - 3, 1) for k in range(64)]
    data = forecast.interface.function("forecast").encode(features)
    start = chain.nonce(chain.accounts[0].address)
    # each call uses ~1M gas: 34 of them need more than one 30M-gas block
    hashes = [pipeline.submit(chain.sign(0, forecast.address, data, gas=1_100_000, nonce=start + i))
              for i in range(34)]
    blocks = pipeline.run_until_idle()
    assert len(blocks) >= 2
    assert all(pipeline.pool.status(h).state is TxState.INCLUDED for h in hashes)
    assert forecast.call("predictionCount") == (34,)


def test_a_single_round_tx_costs_two_evm_passes(world):
    """One simulation captures the request; once its result is in, the tx is ready without a
    confirming simulation, and the replay is the second and last pass."""
    chain, twin, contracts = world
    forecast = contracts["forecast"]
    pipeline = Pipeline(chain, NODE_KEY)
    txs = [sign_call(chain, forecast, "forecast", FEATURES, sender=s) for s in (1, 2, 3)]
    txs.append(sign_call(chain, forecast, "forecast", FEATURES, sender=1, nonce=1))
    for tx in txs:
        pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    assert {t.hash for t in built.block.transactions} == {t.hash for t in txs}
    assert [pipeline.pool.get(t.hash).passes for t in txs] == [2, 2, 2, 2]
    assert pipeline.passes_per_included_tx() == 2.0
    twin_block, _ = mine_inline_like(twin, built.block)
    assert twin_block.header == built.block.header


def test_a_burst_is_simulated_in_steps_oldest_runs_first_and_none_is_lost(world):
    """With ``simulation_step_txs`` 2 a step simulates the two oldest runs; ``prepare`` goes
    on until every tx is ready, and the block equals INLINE's."""
    chain, twin, contracts = world
    pipeline = Pipeline(chain, NODE_KEY, config=PipeConfig(simulation_step_txs=2))
    txs = [sign_call(chain, contracts["forecast"], "forecast", FEATURES, sender=s) for s in (5, 4, 3, 2, 1)]
    for tx in txs:
        pipeline.submit(tx)
    pipeline.step()
    assert [pipeline.pool.get(t.hash).simulated for t in txs] == [True, True, False, False, False]
    pipeline.prepare()
    assert [pipeline.pool.get(t.hash).state for t in txs] == [TxState.READY] * 5
    (built,) = pipeline.run_until_idle()
    assert {t.hash for t in built.block.transactions} == {t.hash for t in txs}
    assert pipeline.passes_per_included_tx() == 2.0
    twin_block, _ = mine_inline_like(twin, built.block)
    assert twin_block.header == built.block.header


def test_a_step_simulates_at_least_one_tx():
    with pytest.raises(ValueError, match="at least 1"):
        PipeConfig(simulation_step_txs=0)


def test_a_step_takes_a_long_run_part_way_and_the_rest_joins_it_later(world):
    """One sender's five txs with ``simulation_step_txs`` 2: steps of two txs, each later one
    executed alone on top of the run (still two EVM passes per tx)."""
    chain, twin, contracts = world
    pipeline = Pipeline(chain, NODE_KEY, config=PipeConfig(simulation_step_txs=2))
    txs = [sign_call(chain, contracts["forecast"], "forecast", FEATURES, sender=3, nonce=n) for n in range(5)]
    for tx in txs:
        pipeline.submit(tx)
    pipeline.step()
    assert [pipeline.pool.get(t.hash).simulated for t in txs] == [True, True, False, False, False]
    pipeline.step()
    assert [pipeline.pool.get(t.hash).simulated for t in txs] == [True, True, True, True, False]
    (built,) = pipeline.run_until_idle()
    assert [t.hash for t in built.block.transactions] == [t.hash for t in txs]
    assert [pipeline.pool.get(t.hash).passes for t in txs] == [2] * 5
    twin_block, _ = mine_inline_like(twin, built.block)
    assert twin_block.header == built.block.header


def test_a_tx_is_ready_when_its_last_result_arrives_not_at_the_next_step(world):
    """The builder can take a tx as soon as its inference is in, while the next step may still
    be simulating other txs."""
    chain, _, contracts = world
    pipeline = Pipeline(chain, NODE_KEY)
    tx = sign_call(chain, contracts["forecast"], "forecast", FEATURES, sender=2)
    pipeline.submit(tx)
    pipeline.step()
    deadline = time.monotonic() + 30
    while pipeline.running() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert pipeline.pool.get(tx.hash).state is TxState.READY


def test_a_tx_joining_the_run_keeps_the_request_a_replay_found(world, cids):
    """A replay found a dependent request; then the sender's next tx arrives, on the same
    head. The run's kept simulation knows only the first request: it must not erase the one
    the replay found (the tx would diverge again and again, then be rejected)."""
    chain, twin, contracts = world
    pipeline = Pipeline(chain, NODE_KEY)
    tx = sign_call(chain, contracts["dependent"], "chain", cids["linear_regression"], cids["log_model"], "x", "y",
                   FEATURES, sender=2)
    pipeline.submit(tx)
    pipeline.prepare()
    assert pipeline.build_block(seal_empty=False).block is None  # deferred: the replay met request 1
    later = sign_call(chain, contracts["forecast"], "forecast", FEATURES, sender=2, nonce=1)
    pipeline.submit(later)
    pipeline.prepare()
    assert [r.id.index for r in pipeline.pool.get(tx.hash).requests] == [0, 1]
    (built,) = pipeline.run_until_idle()
    assert [t.hash for t in built.block.transactions] == [tx.hash, later.hash]
    assert pipeline.pool.get(tx.hash).deferrals == 1
    assert mine_inline_like(twin, built.block)[0].header == built.block.header
