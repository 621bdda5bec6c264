"""Properties of PIPE over random mixes of transactions.

For any mix of plain transfers, forecasts on two models, failing inferences and
dependent inferences, with several transactions per sender submitted in any order:

* every transaction ends included (or rejected with a reason: none is lost);
* each PIPE block is exactly the block INLINE execution of the same transactions, in
  the same order and at the same timestamp, gives: same header (state root, receipts
  root, gas used, bloom, hash) and same receipts (status, gas used, logs);
* a model-free validator accepts each PIPE block with its bundle;
* flipping one bit of one record's encoding, swapping two records, or giving a record
  attestation or proof bytes its mode does not carry gets the block rejected, even under a
  bundle root recomputed for the tampered records.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth.db.atomic import AtomicDB
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ogevm.errors import InvalidBlock
from ogevm.pipe.bundle import bundle_root
from ogevm.records import InferenceRecord
from ogevm.models.runtime import ModelRuntime
from ogevm.pipe.executor import InferenceExecutor, local_executor
from ogevm.pipe.mempool import TxState
from ogevm.pipe.pipeline import Pipeline
from ogevm.pipe.simulation import WorkerSimulator, process_workers
from ogevm.verify.registry import register_nodes
from ogevm.vm.chain import DevChain
from ogevm.vm.recording_db import RecordingDB

from pipe_helpers import (
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

KINDS = ("transfer", "forecast_linear", "forecast_mlp", "failing", "dependent")

number = st.tuples(st.integers(-400, 400), st.integers(0, 2))
tx_spec = st.fixed_dictionaries({
    "kind": st.sampled_from(KINDS),
    "sender": st.integers(1, 4),
    "tip": st.integers(0, 3),
    "features": st.lists(number, min_size=8, max_size=8),
})
mixes = st.lists(tx_spec, min_size=1, max_size=7)


class World:
    """A PIPE chain, its INLINE twin and a model-free replica, kept block for block in step.

    Built once per module (deployments are the slow part); each example adds blocks. The
    properties hold on any parent state, so examples need not start from genesis; if an
    example fails half-way the three chains are rebuilt before the next one.
    """

    CONTRACTS = ("forecast_linear", "forecast_mlp", "caller", "dependent")

    def __init__(self, store, cids, executor, simulation_workers: int = 0) -> None:
        self.store, self.cids = store, cids
        self.executor = executor
        self.simulation_workers = simulation_workers
        self.simulator = None
        self.reset()

    def reset(self) -> None:
        deploys = [
            ("PriceForecast", (self.cids["linear_regression"], "x", "y")),
            ("PriceForecast", (self.cids["small_mlp"], "x", "y")),
            ("InferenceCaller", ()),
            ("DependentInference", ()),
        ]
        db = RecordingDB(AtomicDB())
        self.chain, self.twin = DevChain(self.store, db=db), DevChain(self.store)
        if self.simulator is not None:
            self.simulator.close()
        if self.simulation_workers:  # worker processes following the chain's database
            chain_id = self.chain.chain.chain_id
            self.simulator = WorkerSimulator(self.chain, db, process_workers(self.chain.base_vm_class, chain_id),
                                             self.simulation_workers)
        register_nodes(self.chain, self.executor.identities())  # the twin imports those blocks
        for number in range(1, self.chain.head.block_number + 1):
            self.twin.chain.import_block(self.chain.chain.get_canonical_block_by_number(number))
        self.contracts = dict(zip(self.CONTRACTS, deploy_all(self.chain, deploys)))
        deploy_all(self.twin, deploys)
        self.replica = Replica(self.chain)
        self.replica.sync()

    def ensure_in_step(self) -> None:
        if not (self.chain.head == self.twin.head == self.replica.head):
            self.reset()

    def transaction(self, spec, nonce):
        c, cids = self.contracts, self.cids
        features = spec["features"]
        if spec["kind"] == "transfer":
            to, data, value = self.chain.accounts[0].address, b"", 1 + abs(features[0][0])
        else:
            value = 0
            if spec["kind"] == "forecast_linear":
                contract, args = c["forecast_linear"], ("forecast", features[:4])
            elif spec["kind"] == "forecast_mlp":
                contract, args = c["forecast_mlp"], ("forecast", features)
            elif spec["kind"] == "failing":
                bad = call_for(cids["log_model"], tensor([(-1 - abs(features[0][0]), features[0][1])], (1, 1)))
                contract, args = c["caller"], ("infer", bad)
            else:  # linear_regression, then log of its output (NaN / -inf revert when <= 0)
                contract = c["dependent"]
                args = ("chain", cids["linear_regression"], cids["log_model"], "x", "y", features[:4])
            to, data = contract.address, contract.interface.function(args[0]).encode(*args[1:])
        return self.chain.sign(spec["sender"], to, data, value=value, gas=GAS, nonce=nonce,
                               max_priority_fee_per_gas=spec["tip"] * GWEI,
                               max_fee_per_gas=(10 + spec["tip"]) * GWEI)


@pytest.fixture(scope="module", params=["threads", "ray", "simulation-processes"])
def world(request, fixture_store, cids):
    """The same properties with each executor backend (this process's threads, Ray actors),
    and with the simulation on two worker processes."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        from ogevm.pipe.ray_backend import RayBackend, WorkerGroup

        executor = InferenceExecutor(RayBackend(fixture_store, groups=(WorkerGroup(2),)), fixture_store, max_batch=8)
    else:
        executor = local_executor(ModelRuntime(fixture_store), NODE_KEY, 2, max_batch=8)
    world = World(fixture_store, cids, executor, simulation_workers=2 if request.param == "simulation-processes" else 0)
    yield world
    executor.close()
    if world.simulator is not None:
        world.simulator.close()


def forge(block, records):
    return block.copy(header=block.header.copy(extra_data=bundle_root(records)))


def assert_rejected(replica, block, records, fragment=""):
    head = replica.head
    with pytest.raises(InvalidBlock) as info:
        replica.import_block(block, records)
    assert fragment in info.value.reason
    assert replica.head == head


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mix=mixes, data=st.data())
def test_pipe_blocks_equal_inline_blocks_and_validate_without_models(world, mix, data):
    world.ensure_in_step()
    chain, twin, replica = world.chain, world.twin, world.replica

    # explicit nonces: each sender's txs in mix order, submitted in any order
    next_nonce: dict[int, int] = {}
    txs = []
    for spec in mix:
        account = chain.accounts[spec["sender"]].address
        nonce = next_nonce.get(spec["sender"], chain.nonce(account))
        next_nonce[spec["sender"]] = nonce + 1
        txs.append(world.transaction(spec, nonce))
    pipeline = Pipeline(chain, executor=world.executor, simulator=world.simulator)
    for tx in data.draw(st.permutations(txs), label="submission order"):
        pipeline.submit(tx)
    blocks = pipeline.run_until_idle()

    # nothing lost; and nothing here can be invalid, so everything is included
    assert_all_settled(pipeline, [tx.hash for tx in txs])
    assert all(pipeline.pool.status(tx.hash).state is TxState.INCLUDED for tx in txs)
    included = [t.hash for built in blocks for t in built.block.transactions]
    assert sorted(included) == sorted(tx.hash for tx in txs)

    for built in blocks:
        block, records = built.block, built.records
        # INLINE on the twin, same order, same timestamp: the very same block
        twin_block, _ = mine_inline_like(twin, block)
        pipe_receipts, inline_receipts = receipts_of(chain, block), receipts_of(twin, twin_block)
        assert [(receipt_ok(r), r.gas_used, r.logs) for r in pipe_receipts] == \
               [(receipt_ok(r), r.gas_used, r.logs) for r in inline_receipts]
        assert twin_block.header == block.header
        event(f"records per block: {min(len(records), 4)}{'+' if len(records) > 4 else ''}")
        event("a revert in the block" if not all(receipt_ok(r) for r in pipe_receipts) else "no revert")

        if records:
            # one flipped bit in one record's encoding
            i = data.draw(st.integers(0, len(records) - 1), label="record")
            encoded = records[i].encode()
            position = data.draw(st.integers(0, len(encoded) - 1), label="byte")
            flipped = bytearray(encoded)
            flipped[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
            try:
                decoded = InferenceRecord.decode(bytes(flipped))
            except Exception:
                decoded = None  # a corrupted bundle does not even decode
            event("flip: " + ("does not decode" if decoded is None else
                              "same record" if decoded == records[i] else "another record"))
            if decoded is not None and decoded != records[i]:
                tampered = [*records[:i], decoded, *records[i + 1:]]
                assert_rejected(replica, block, tampered, "does not match the root")
                assert_rejected(replica, forge(block, tampered), tampered)
            # bytes added in the attestation or proof field, which no VANILLA signature covers
            field = data.draw(st.sampled_from(["attestation", "proof"]), label="unsigned field")
            extra = data.draw(st.binary(min_size=1, max_size=64), label="extra bytes")
            tampered = [*records[:i], replace(records[i], **{field: extra}), *records[i + 1:]]
            assert_rejected(replica, forge(block, tampered), tampered, f"record {i}")
            # two records swapped
            if len(records) >= 2:
                j = data.draw(st.integers(0, len(records) - 2), label="swap")
                swapped = [*records[:j], records[j + 1], records[j], *records[j + 2:]]
                assert_rejected(replica, block, swapped, "does not match the root")
                assert_rejected(replica, forge(block, swapped), swapped)
        # the genuine block and bundle: accepted by the model-free replica
        assert replica.import_block(block, records).header == block.header
    assert chain.head == twin.head == replica.head
