"""Simulation on worker processes (and Ray actors): they follow the chain by the changes each
block wrote, give the same outcomes as simulating in process, and a dead worker is replaced
without losing a transaction."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from eth.db.atomic import AtomicDB
from eth_keys import keys

from ogevm.abc import Simulator
from ogevm.fixtures import fixture_model
from ogevm.models.store import ModelStore
from ogevm.pipe.mempool import TxState
from ogevm.pipe.pipeline import Pipeline
from ogevm.pipe.simulation import (
    MAX_FORECAST_BLOCKS,
    LocalSimulator,
    SimulationWorker,
    WorkerSimulator,
    process_workers,
)
from ogevm.vm.accounts import DevAccount
from ogevm.vm.chain import DevChain
from ogevm.vm.recording_db import RecordingDB, apply_changes

from pipe_helpers import FEATURES, GAS, NODE_KEY, Replica, assert_all_settled, deploy_all, mine_inline_like


@pytest.fixture
def recorded(fixture_store):
    """A chain on a RecordingDB."""
    db = RecordingDB(AtomicDB())
    return DevChain(fixture_store, db=db), db


def test_a_copy_that_applies_the_recorded_changes_has_the_same_chain(recorded):
    chain, db = recorded
    copy = AtomicDB()
    apply_changes(copy, db.contents())
    db.drain()
    chain.send(1, chain.accounts[2].address, value=5)
    changes = db.drain()
    assert changes and db.drain() == {}
    apply_changes(copy, changes)
    follower = SimulationWorker(chain.base_vm_class, chain.chain.chain_id)
    follower.load(copy.wrapped_db.kv_store)  # the copy holds everything a new worker needs
    assert follower.chain.get_canonical_head() == chain.head
    state = follower.chain.get_vm(follower.chain.get_canonical_head()).state
    assert state.get_balance(chain.accounts[2].address) == chain.balance(chain.accounts[2].address)


def test_an_aborted_batch_is_not_recorded(recorded):
    _, db = recorded
    db.drain()
    with pytest.raises(RuntimeError):
        with db.atomic_batch() as batch:
            batch[b"key"] = b"value"
            raise RuntimeError("abort")
    assert db.drain() == {} and b"key" not in db
    with db.atomic_batch() as batch:
        batch[b"key"] = b"value"
    assert db.drain() == {b"key": b"value"}


def _forecast_txs(chain, forecast, senders=(1, 2, 3), per_sender=2):
    data = forecast.interface.function("forecast").encode(FEATURES)
    return [chain.sign(s, forecast.address, data, gas=GAS, nonce=chain.nonce(chain.accounts[s].address) + k)
            for s in senders for k in range(per_sender)]


@pytest.fixture
def workers(recorded, cids):
    """Two worker processes following the recorded chain, which has a forecast contract."""
    chain, db = recorded
    (forecast,) = deploy_all(chain, [("PriceForecast", (cids["linear_regression"], "x", "y"))])
    simulator = WorkerSimulator(chain, db, process_workers(chain.base_vm_class, chain.chain.chain_id), 2)
    yield chain, forecast, simulator
    simulator.close()


def test_workers_give_the_outcomes_of_simulating_in_process(workers):
    chain, forecast, simulator = workers
    txs = _forecast_txs(chain, forecast)
    runs = [(txs[i:i + 2], {}) for i in range(0, len(txs), 2)]
    bad = chain.sign(4, forecast.address, b"\x01\x02", gas=GAS, nonce=5)  # nonce gap: cannot be applied
    runs.append(([bad], {}))
    remote, local = simulator.simulate(runs), LocalSimulator(chain).simulate(runs)
    assert [[(tuple(r.id for r in reqs), why, ran) for reqs, why, ran in o] for o in remote] == \
           [[(tuple(r.id for r in reqs), why, ran) for reqs, why, ran in o] for o in local]
    assert [[r.digest for r in reqs] for o in remote for reqs, _, _ in o] == \
           [[r.digest for r in reqs] for o in local for reqs, _, _ in o]
    assert "nonce" in remote[-1][0][1]


@pytest.mark.parametrize("where", ["process", "workers"])
def test_a_transaction_joining_a_simulated_run_costs_only_its_own_pass(workers, where):
    """The run's earlier transactions stay simulated, on the same head and after a new block."""
    chain, forecast, simulator = workers
    if where == "process":
        simulator = LocalSimulator(chain)
    first, second, third = _forecast_txs(chain, forecast, senders=(1,), per_sender=3)
    (before,) = simulator.simulate([([first, second], {})])
    (after,) = simulator.simulate([([first, second, third], {})])
    assert [ran for _, _, ran in before] == [True, True]
    assert [ran for _, _, ran in after] == [False, False, True]
    assert [reqs for reqs, _, _ in after[:2]] == [reqs for reqs, _, _ in before]
    assert after[2][0][0].id.tx_hash == third.hash
    chain.send(5, chain.accounts[6].address, value=1)  # a new head
    (again,) = simulator.simulate([([first, second, third], {})])
    assert [ran for _, _, ran in again] == [False, False, False]
    assert [reqs for reqs, _, _ in again] == [reqs for reqs, _, _ in after]


@pytest.mark.parametrize("where", ["process", "workers"])
def test_a_run_goes_on_over_blocks_without_its_included_transactions(workers, where):
    """Transactions a block included leave the run, the rest keep their outcome and a joining
    one runs on the run's state; more than MAX_FORECAST_BLOCKS blocks later the run runs again."""
    chain, forecast, simulator = workers
    if where == "process":
        simulator = LocalSimulator(chain)
    first, second, third = _forecast_txs(chain, forecast, senders=(1,), per_sender=3)
    (before,) = simulator.simulate([([first, second], {})])
    chain.mine([first])
    (after,) = simulator.simulate([([second, third], {})])
    assert [ran for _, _, ran in after] == [False, True]
    assert after[0][0] == before[1][0] and after[1][0][0].id.tx_hash == third.hash
    for _ in range(MAX_FORECAST_BLOCKS):
        chain.send(5, chain.accounts[6].address, value=1)
    (again,) = simulator.simulate([([second, third], {})])
    assert [ran for _, _, ran in again] == [True, True]


@pytest.mark.parametrize("where", ["process", "workers"])
def test_a_transaction_refused_on_a_runs_older_state_is_simulated_on_the_head(workers, where):
    """A joining transaction the run's state cannot pay for, but the head can (the sender was
    paid in a block since), is not rejected: its run is simulated again on the head."""
    chain, forecast, simulator = workers
    if where == "process":
        simulator = LocalSimulator(chain)
    payer = DevAccount(keys.PrivateKey(b"\x09" * 32))
    max_fee = 2 * chain.head.base_fee_per_gas
    chain.send(1, payer.address, value=21_000 * max_fee)  # enough for one transfer
    one, two = (chain.sign(payer, chain.accounts[2].address, nonce=n, gas=21_000, max_fee_per_gas=max_fee)
                for n in (0, 1))
    ((_, refused, _),) = LocalSimulator(chain).simulate([([one, two], {})])[0][1:]
    assert refused is not None  # the head cannot pay for both yet
    (alone,) = simulator.simulate([([one], {})])
    chain.send(1, payer.address, value=21_000 * max_fee)
    (both,) = simulator.simulate([([one, two], {})])
    assert [(why, ran) for _, why, ran in both] == [(None, True), (None, True)]


def assert_simulates_a_new_contract(chain, simulator, cid: str) -> None:
    """Deploy a forecast contract on ``cid`` (8 features) now; the simulator must see it."""
    (later,) = deploy_all(chain, [("PriceForecast", (cid, "x", "y"))])
    tx = chain.sign(1, later.address, later.interface.function("forecast").encode([(1, 0)] * 8), gas=GAS)
    ((requests, reason, _),), = simulator.simulate([([tx], {})])
    assert reason is None and [r.model_cid for r in requests] == [cid]


def test_workers_follow_new_blocks_and_models(cids):
    """A model added and a contract deployed after the workers started reach their copy."""
    store = ModelStore()
    store.add_file(fixture_model("linear_regression"))
    db = RecordingDB(AtomicDB())
    chain = DevChain(store, db=db)
    simulator = WorkerSimulator(chain, db, process_workers(chain.base_vm_class, chain.chain.chain_id), 1)
    try:
        store.add_file(fixture_model("small_mlp"))
        assert_simulates_a_new_contract(chain, simulator, cids["small_mlp"])
    finally:
        simulator.close()


def test_a_killed_worker_is_replaced_and_no_transaction_is_lost(workers, fixture_store):
    chain, forecast, simulator = workers
    twin = DevChain(fixture_store)
    for number in range(1, chain.head.block_number + 1):
        twin.chain.import_block(chain.chain.get_canonical_block_by_number(number))
    pipeline = Pipeline(chain, NODE_KEY, simulator=simulator)
    txs = _forecast_txs(chain, forecast)
    for tx in txs:
        pipeline.submit(tx)
    os.kill(simulator.workers[0].process.pid, signal.SIGKILL)
    simulator.workers[0].process.wait()
    blocks = pipeline.run_until_idle()
    assert simulator.restarts == 1
    assert_all_settled(pipeline, [tx.hash for tx in txs])
    assert all(pipeline.pool.status(tx.hash).state is TxState.INCLUDED for tx in txs)
    assert pipeline.passes_per_included_tx() == 2.0
    for built in blocks:
        assert mine_inline_like(twin, built.block)[0].header == built.block.header
    Replica(chain).sync({b.block.number: b.records for b in blocks})


@pytest.mark.ray
def test_ray_actors_run_the_same_worker_protocol(recorded, cids, ray_cluster):
    from ogevm.pipe.simulation import ray_workers

    chain, db = recorded
    (forecast,) = deploy_all(chain, [("PriceForecast", (cids["linear_regression"], "x", "y"))])
    simulator = WorkerSimulator(chain, db, ray_workers(chain.base_vm_class, chain.chain.chain_id, num_cpus=0.5), 2)
    try:
        pipeline = Pipeline(chain, NODE_KEY, simulator=simulator)
        txs = _forecast_txs(chain, forecast)
        for tx in txs:
            pipeline.submit(tx)
        ray_cluster.kill(simulator.workers[1].actor)
        blocks = pipeline.run_until_idle()
        assert simulator.restarts == 1
        assert all(pipeline.pool.status(tx.hash).state is TxState.INCLUDED for tx in txs)
        assert sum(len(b.block.transactions) for b in blocks) == len(txs)
        # the next block's changes reach the actors: a contract deployed now is simulated there
        assert_simulates_a_new_contract(chain, simulator, cids["small_mlp"])
    finally:
        simulator.close()


class HeldSimulator(Simulator):
    """Simulates in this process but counts as remote (the pipeline simulates in the
    background), and holds each outcome until the test releases it."""

    remote = True

    def __init__(self, chain) -> None:
        self.inner = LocalSimulator(chain)
        self.simulated, self.release = threading.Event(), threading.Event()

    def simulate(self, runs):
        outcomes = self.inner.simulate(runs)
        self.simulated.set()
        assert self.release.wait(30), "the test never released the simulation"
        return outcomes

    def close(self) -> None:
        pass


def test_a_block_built_during_a_background_simulation_does_not_reject_on_the_old_head(fixture_store):
    """P's two transfers exceed P's balance on the old head (the second is rejected there),
    but the block built meanwhile pays P: the rejection waits for a simulation on the new
    head, where both transfers are valid and go in."""
    chain = DevChain(fixture_store)
    payee, pauper = chain.accounts[2].address, DevAccount(keys.PrivateKey(b"\x07" * 32))
    fee = 2 * chain.head.base_fee_per_gas
    cost = 21_000 * fee + 1
    chain.send(1, pauper.address, value=cost)
    simulator = HeldSimulator(chain)
    pipeline = Pipeline(chain, NODE_KEY, simulator=simulator)
    simulator.release.set()
    top_up = pipeline.submit(chain.sign(1, pauper.address, value=10 * cost, gas=21_000))
    pipeline.prepare()
    assert pipeline.pool.status(top_up).state is TxState.READY
    spends = [pipeline.submit(chain.sign(pauper, payee, value=1, gas=21_000, max_fee_per_gas=fee, nonce=n))
              for n in (0, 1)]
    simulator.release.clear()
    simulator.simulated.clear()
    pipeline.advance()  # returns while the background simulation holds its outcome
    assert simulator.simulated.wait(30)
    built = pipeline.build_block(seal_empty=False)  # meanwhile: the top-up goes in
    assert [tx.hash for tx in built.block.transactions] == [top_up]
    simulator.release.set()
    pipeline.join()
    assert [pipeline.pool.status(h).state for h in spends] == [TxState.READY, TxState.PENDING]
    blocks = pipeline.run_until_idle()
    assert [tx.hash for b in blocks for tx in b.block.transactions] == spends
    assert_all_settled(pipeline, [top_up, *spends])


def test_an_error_of_a_background_step_is_raised_by_the_next_advance(fixture_store):
    chain = DevChain(fixture_store)
    simulator = HeldSimulator(chain)
    simulator.simulate = lambda runs: 1 / 0
    pipeline = Pipeline(chain, NODE_KEY, simulator=simulator)
    pipeline.submit(chain.sign(1, chain.accounts[2].address, value=1, gas=21_000))
    pipeline.advance()
    with pytest.raises(ZeroDivisionError):
        pipeline.join()
    with pytest.raises(ZeroDivisionError):
        pipeline.advance()  # the error surfaces where the producer counts its failures
