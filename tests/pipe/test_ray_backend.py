"""The Ray executor backend on a local Ray cluster: same records as the thread pool, one
node identity per actor, model routing, and faults (an actor killed mid-request, every
actor gone, an unregistered actor) that lose no transaction.

The PIPE property tests run with this backend too (``test_properties.py``).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from eth_keys import keys

pytest.importorskip("ray")

from ogevm.errors import ExecutorUnavailable, InvalidBlock  # noqa: E402
from ogevm.models.runtime import ModelRuntime  # noqa: E402
from ogevm.pipe.executor import InferenceExecutor, local_executor  # noqa: E402
from ogevm.pipe.mempool import TxState  # noqa: E402
from ogevm.pipe.pipeline import PipeConfig, Pipeline  # noqa: E402
from ogevm.pipe.ray_backend import RayBackend, WorkerGroup  # noqa: E402
from ogevm.verify.records import check_record  # noqa: E402
from ogevm.verify.registry import register_nodes  # noqa: E402
from ogevm.vm.chain import DevChain  # noqa: E402

from pipe_helpers import (  # noqa: E402
    GAS, NODE_KEY, Replica, assert_all_settled, call_for, deploy_all, inference_request, tensor,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def ray_executor(store, workers: int = 2, **options) -> InferenceExecutor:
    max_batch = options.pop("max_batch", 64)
    return InferenceExecutor(RayBackend(store, groups=(WorkerGroup(workers),), **options), store, max_batch=max_batch)


def requests_for(store, cid, n, first=0, rows=1):
    info = store[cid]
    width = info.inputs[0].shape[1]
    return [inference_request(info, call_for(cid, tensor([(i % 7 + j, 1) for j in range(rows * width)],
                                                         (rows, width))), (first + i).to_bytes(32, "big"))
            for i in range(n)]


@pytest.fixture(scope="module")
def executor(ray_cluster, fixture_store):
    executor = ray_executor(fixture_store)
    yield executor
    executor.close()


def test_records_equal_the_thread_pools_and_each_actor_signs_as_its_own_node(fixture_store, cids, executor):
    requests = [*requests_for(fixture_store, cids["linear_regression"], 6),
                *requests_for(fixture_store, cids["small_mlp"], 6, first=100)]
    local = local_executor(ModelRuntime(fixture_store), NODE_KEY)
    try:
        expected = local.execute(requests)
    finally:
        local.close()
    records = executor.execute(requests)
    assert [r.result for r in records] == [r.result for r in expected]
    nodes = {identity.node for identity in executor.identities()}
    assert len(nodes) == 2
    for record in records:
        check_record(record)  # the actor's signature, of the record alone or of its batch
        assert record.node in nodes


def test_an_idle_group_keeps_each_model_on_its_first_choice_actor(fixture_store, cids, executor):
    """One job at a time: every job of a model lands on the same actor (warm sessions)."""
    for name in ("linear_regression", "small_mlp"):
        signers = {executor.execute(requests_for(fixture_store, cids[name], 1, first=i))[0].node for i in range(5)}
        assert len(signers) == 1


def test_an_actor_killed_mid_request_has_its_job_retried_on_another(ray_cluster, fixture_store, cids):
    executor = ray_executor(fixture_store)
    backend: RayBackend = executor.backend
    try:
        pids = {actor.index: ray_cluster.get(actor.handle.pid.remote()) for actor in backend.actors}
        requests = requests_for(fixture_store, cids["heavy"], 1, rows=64)  # one job of 64 samples
        futures = executor.submit(requests)
        assert len(futures) == 1
        deadline = time.monotonic() + 30
        while not any(actor.load for actor in backend.actors) and time.monotonic() < deadline:
            time.sleep(0.005)
        (busy,) = [actor for actor in backend.actors if actor.load]
        time.sleep(0.05)  # the job runs for well over 100 ms: kill the process in the middle of it
        os.kill(pids[busy.index], signal.SIGKILL)
        records = futures[0].result(timeout=120)
        (survivor,) = [actor for actor in backend.actors if actor is not busy]
        assert {r.node for r in records} == {survivor.identity.node}
        assert [r.request_id for r in records] == [r.id for r in requests]
        assert not busy.alive and backend.retries == 1
    finally:
        executor.close()


def test_an_actor_running_a_job_past_the_timeout_is_killed_as_hung(ray_cluster, fixture_store, cids):
    executor = ray_executor(fixture_store, workers=1, job_timeout=0.05)
    backend: RayBackend = executor.backend
    try:
        requests = requests_for(fixture_store, cids["heavy"], 1, rows=256)  # over a second on its actor
        (future,) = executor.submit(requests)
        with pytest.raises(ExecutorUnavailable) as info:
            future.result(timeout=60)
        assert "worker 0 hung: its jobs ran past 0.05 s each" in info.value.reason
        assert info.value.request_ids == (requests[0].id,)
        assert not backend.live_actors() and backend.retries == 1
    finally:
        executor.close()


def test_jobs_queued_on_an_actor_each_get_the_timeout_after_the_ones_before(ray_cluster, fixture_store, cids):
    """Six calls of one job of about 0.3 s each on one actor take longer together than one
    job's timeout."""
    executor = ray_executor(fixture_store, workers=1, job_timeout=1.5, max_batch=1, jobs_per_call=1)
    backend: RayBackend = executor.backend
    try:
        requests = [request for i in range(6)
                    for request in requests_for(fixture_store, cids["heavy"], 1, first=i, rows=64)]
        futures = executor.submit(requests)
        assert len(futures) == 6
        records = [record for future in futures for record in future.result(timeout=120)]
        assert [r.request_id for r in records] == [r.id for r in requests]
        assert backend.live_actors() and backend.retries == 0
    finally:
        executor.close()


@pytest.mark.parametrize("workers, jobs_per_call, calls", [(1, 4, 3), (2, 4, 4), (2, 1, 10)])
def test_jobs_sent_together_share_ray_calls(ray_cluster, fixture_store, cids, workers, jobs_per_call, calls):
    """Ten single-request jobs: each actor gets its share in calls of at most jobs_per_call."""
    executor = ray_executor(fixture_store, workers=workers, jobs_per_call=jobs_per_call, max_batch=1)
    try:
        requests = requests_for(fixture_store, cids["small_mlp"], 10)
        records = executor.execute(requests)
        assert [r.request_id for r in records] == [r.id for r in requests]
        assert len({r.node for r in records}) == workers
        assert executor.backend.calls == calls
    finally:
        executor.close()


def test_a_closed_backend_fails_new_jobs_with_a_reason(ray_cluster, fixture_store, cids):
    executor = ray_executor(fixture_store, workers=1)
    executor.close()
    requests = requests_for(fixture_store, cids["linear_regression"], 2)
    with pytest.raises(ExecutorUnavailable) as info:
        for future in executor.submit(requests):
            future.result(timeout=10)
    assert info.value.reason == "the Ray backend was closed"
    assert set(info.value.request_ids) <= {r.id for r in requests}


def test_without_a_live_actor_a_job_fails_with_a_reason_naming_its_requests(ray_cluster, fixture_store, cids):
    executor = ray_executor(fixture_store, workers=1)
    try:
        (actor,) = executor.backend.actors
        ray_cluster.kill(actor.handle)
        requests = requests_for(fixture_store, cids["linear_regression"], 4)  # one stack of 4
        (future,) = executor.submit(requests)
        with pytest.raises(ExecutorUnavailable) as info:
            future.result(timeout=60)
        assert "no live Ray inference worker" in info.value.reason
        assert set(info.value.request_ids) == {r.id for r in requests}
    finally:
        executor.close()


def forecast_setup(store, cids, model="linear_regression"):
    chain = DevChain(store)
    (forecast,) = deploy_all(chain, [("PriceForecast", (cids[model], "x", "y"))])
    width = store[cids[model]].inputs[0].shape[1]
    return chain, forecast, width


def forecast_txs(chain, forecast, width, n, senders=(1, 2, 3, 4)):
    txs = []
    for i in range(n):
        sender = senders[i % len(senders)]
        nonce = chain.nonce(chain.accounts[sender].address) + i // len(senders)
        features = [(i + j, 1) for j in range(width)]
        txs.append(chain.sign(sender, forecast.address, forecast.interface.function("forecast").encode(features),
                              gas=GAS, nonce=nonce))
    return txs


def test_killing_an_actor_during_a_burst_loses_no_tx(ray_cluster, fixture_store, cids):
    chain, forecast, width = forecast_setup(fixture_store, cids, "heavy")
    executor = ray_executor(fixture_store, max_batch=2)
    try:
        register_nodes(chain, executor.identities())
        pipeline = Pipeline(chain, executor=executor)
        txs = forecast_txs(chain, forecast, width, 24)
        for tx in txs:
            pipeline.submit(tx)
        pipeline.advance()  # 12 jobs over two actors
        victim = executor.backend.actors[0]
        held = victim.load
        assert held > 0  # the kill lands while the actor holds jobs
        ray_cluster.kill(victim.handle)
        blocks = pipeline.run_until_idle()
        assert 1 <= executor.backend.retries <= held  # the jobs it held ran again, on the other actor
        assert_all_settled(pipeline, [tx.hash for tx in txs])
        included = [t.hash for built in blocks for t in built.block.transactions]
        assert sorted(included) == sorted(tx.hash for tx in txs)  # each once, none lost
        assert all(pipeline.pool.status(tx.hash).state is TxState.INCLUDED for tx in txs)
        replica = Replica(chain)
        replica.sync({built.block.number: built.records for built in blocks})
        assert replica.head == chain.head
    finally:
        executor.close()


def test_when_every_actor_is_gone_txs_go_back_to_the_rounds_and_end_rejected_with_the_reason(
        ray_cluster, fixture_store, cids):
    chain, forecast, width = forecast_setup(fixture_store, cids)
    executor = ray_executor(fixture_store, workers=1)
    try:
        register_nodes(chain, executor.identities())
        ray_cluster.kill(executor.backend.actors[0].handle)
        pipeline = Pipeline(chain, executor=executor, config=PipeConfig(max_rounds=2))
        txs = forecast_txs(chain, forecast, width, 3)
        for tx in txs:
            pipeline.submit(tx)
        pipeline.prepare()
        for tx in txs:
            status = pipeline.pool.status(tx.hash)
            assert status.state is TxState.REJECTED
            assert "did not settle" in status.reason and "no live Ray inference worker" in status.reason
    finally:
        executor.close()


def test_records_of_an_unregistered_actor_are_rejected_by_validators(ray_cluster, fixture_store, cids):
    chain, forecast, width = forecast_setup(fixture_store, cids)
    # actor 0 uses the genesis-registered development key: start from another one
    executor = ray_executor(fixture_store, workers=1, node_keys=[keys.PrivateKey(b"\x07" * 32)])
    try:
        pipeline = Pipeline(chain, executor=executor)
        for tx in forecast_txs(chain, forecast, width, 1):
            pipeline.submit(tx)
        (built,) = pipeline.run_until_idle()
        replica = Replica(chain)
        replica.sync(upto=built.block.number - 1)
        with pytest.raises(InvalidBlock) as info:
            replica.import_block(built.block, built.records)
        assert "not registered" in info.value.reason
    finally:
        executor.close()



@pytest.mark.zkml
def test_zkml_requests_are_proven_in_ray_tasks_from_shipped_circuit_files(ray_cluster, tmp_path):
    pytest.importorskip("ezkl", reason="ZKML needs the zkml extra (ezkl)")
    from ogevm.abi.types import InferenceMode
    from ogevm.fixtures import fixture_contract, fixture_model
    from ogevm.pipe.validator import BlockValidator
    from ogevm.verify.zkml import CircuitProofChecker, CircuitStore

    chain = DevChain(circuits=CircuitStore(tmp_path / "circuits"))
    linear = chain.add_model(fixture_model("linear_regression"))
    mixed = chain.deploy(fixture_contract("MixedModes"))
    chain.enable_zkml(linear.cid)
    executor = InferenceExecutor(RayBackend(chain.models, groups=(WorkerGroup(1),), circuits=chain.circuits),
                                 chain.models)
    try:
        pipeline = Pipeline(chain, executor=executor)
        data = mixed.interface.function("compareWithModes").encode(
            linear.cid, linear.cid, "x", "y", [(15, 1), (-2, 0), (325, 2), (1, 0)],
            InferenceMode.VANILLA, InferenceMode.ZKML)
        pipeline.submit(chain.sign(1, mixed.address, data))
        (built,) = pipeline.run_until_idle()
    finally:
        executor.close()
    vanilla, zkml = built.records
    assert zkml.mode is InferenceMode.ZKML and zkml.proof and zkml.result.error is None
    replica = Replica(chain)
    replica.validator = BlockValidator(replica.chain, chain.base_vm_class, dict(chain.models),
                                       CircuitProofChecker(chain.circuits))
    replica.sync({built.block.number: built.records})
    assert replica.head == chain.head
