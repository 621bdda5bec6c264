"""Scheduled tasks: the genesis TaskScheduler, its system calls at the top of blocks, and
their inference through PIPE (requested ahead, replayed by the builder and the validator)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from eth_utils import keccak

from ogevm.errors import InvalidBlock, TransactionFailed
from ogevm.pipe.bundle import bundle_root
from ogevm.pipe.pipeline import Pipeline
from ogevm.records import RequestId, scheduled_call_hash
from ogevm.vm.chain import DeployedContract, DevChain
from ogevm.vm.scheduler import (
    ACTIVE_TASKS_SLOT,
    TASK_GAS_LIMIT,
    TASK_SCHEDULER_ADDRESS,
    TaskStatus,
    due_tasks,
    scheduler_interface,
)

from pipe_helpers import (
    FEATURES,
    GAS,
    GWEI,
    NODE_KEY,
    Replica,
    deploy_all,
    mine_inline_like,
    receipt_ok,
    receipts_of,
)

FAR = 10**6  # seconds: an end no test reaches
FIELDS = ("target", "owner", "endTime", "frequency", "nextRun", "runs", "lastRunBlock", "lastStatus", "active",
          "lastReason")
COUNT, REVERT, BURN_GAS, STOP_OWNED, REVERT_CUSTOM, PANIC = range(6)  # TaskHarness.Behaviour


def scheduler(chain: DevChain) -> DeployedContract:
    return DeployedContract(chain, scheduler_interface(), TASK_SCHEDULER_ADDRESS)


def task(chain: DevChain, task_id: int) -> dict:
    return dict(zip(FIELDS, scheduler(chain).call("getTask", task_id)[0]))


def register_tx(chain: DevChain, target: bytes, end: int, frequency: int, sender: int = 0, nonce: int | None = None):
    data = scheduler_interface().function("registerTask").encode(target, end, frequency)
    return chain.sign(sender, TASK_SCHEDULER_ADDRESS, data, gas=GAS, nonce=nonce)


def mine_at(chain: DevChain, dt: int, *txs):
    """Mine ``txs`` (INLINE) in a block stamped ``dt`` seconds after the head."""
    return chain.mine(list(txs), timestamp=chain.head.timestamp + dt)


def register(chain: DevChain, target: bytes, end_in: int, frequency: int, sender: int = 0) -> int:
    """Register a task in its own block (head + 1 s); returns its id."""
    return register_many(chain, [(target, end_in, frequency)], sender)[0]


def register_many(chain: DevChain, specs, sender: int = 0) -> list[int]:
    """Register ``(target, end_in, frequency)`` tasks in one block (head + 1 s, ends counted
    from it); returns their ids."""
    timestamp = chain.head.timestamp + 1
    nonce = chain.nonce(chain.accounts[sender].address)
    txs = [register_tx(chain, target, timestamp + end_in, frequency, sender, nonce + i)
           for i, (target, end_in, frequency) in enumerate(specs)]
    _, results = mine_at(chain, 1, *txs)
    assert all(r.success for r in results), [r.revert_reason for r in results]
    count = scheduler(chain).call("taskCount")[0]
    return list(range(count - len(specs) + 1, count + 1))


def transact_at(chain: DevChain, name: str, *args, sender: int = 0, dt: int = 1):
    """Send the scheduler's ``name(*args)`` in a block stamped ``dt`` seconds after the head."""
    data = scheduler_interface().function(name).encode(*args)
    _, (result,) = mine_at(chain, dt, chain.sign(sender, TASK_SCHEDULER_ADDRESS, data, gas=GAS))
    return result


def forecaster_args(cid: str):
    return ("VolatilityForecaster", (TASK_SCHEDULER_ADDRESS, cid, "x", "y", FEATURES))


# --- a task's inference through PIPE ------------------------------------------------------
@pytest.fixture
def world(fixture_store, cids):
    """A PIPE chain and an INLINE twin, each with a forecaster scheduled every 10 s (task 1)
    and a PriceForecast for transactions, at the same addresses and timestamps."""
    chain, twin = DevChain(fixture_store), DevChain(fixture_store)
    contracts = [forecaster_args(cids["linear_regression"]), ("PriceForecast", (cids["linear_regression"], "x", "y"))]
    forecaster, price = deploy_all(chain, contracts)
    deploy_all(twin, contracts)
    for c in (chain, twin):
        assert register(c, forecaster.address, FAR, 10) == 1
    assert chain.head == twin.head
    return chain, twin, forecaster, price


def test_a_scheduled_inference_runs_at_its_due_blocks_through_pipe_exactly_as_inline(world):
    chain, twin, forecaster, price = world
    pipeline = Pipeline(chain, NODE_KEY, next_timestamp=lambda parent: parent + 10)
    tx = chain.sign(1, price.address, price.interface.function("forecast").encode(FEATURES), gas=GAS,
                    max_fee_per_gas=10 * GWEI)
    built_blocks = []
    for dt, txs in ((10, ()), (5, ()), (5, (tx,))):  # due, not due (+5 s), due again (+10 s)
        for t in txs:
            pipeline.submit(t)
        pipeline.prepare()
        built = pipeline.build_block(timestamp=chain.head.timestamp + dt)
        twin_block, _ = mine_inline_like(twin, built.block)
        assert twin_block.header == built.block.header
        assert receipts_of(twin, twin_block) == receipts_of(chain, built.block)
        built_blocks.append(built)
    first, idle, last = built_blocks
    calls = [scheduled_call_hash(b.block.number, 1) for b in (first, last)]
    assert [r.request_id for r in first.records] == [RequestId(calls[0], 0)]
    assert idle.records == [] and idle.scheduled == ()
    # the task's record opens the bundle, before the transaction's
    assert [r.request_id for r in last.records] == [RequestId(calls[1], 0), RequestId(tx.hash, 0)]
    assert [run.status for run in first.scheduled + last.scheduled] == [TaskStatus.SUCCEEDED] * 2
    assert receipt_ok(receipts_of(chain, last.block)[0])
    # system calls are no transactions: no receipt, no share of the block's gas
    assert first.block.transactions == () and first.block.header.gas_used == 0
    # the first run fed 1, 2, 3, 4 to linear_regression (7.1) and rolled the window
    assert first.records[0].result.output.numbers[0].values[0] == (71, 1)
    assert forecaster.call("runs") == (2,)
    assert forecaster.call("window")[0][:3] == ((3, 0), (4, 0), (71, 1))
    state = task(chain, 1)
    assert (state["runs"], state["lastStatus"], state["lastRunBlock"], state["nextRun"]) == (
        2, TaskStatus.SUCCEEDED, last.block.number, last.block.header.timestamp + 10)
    assert task(twin, 1) == state
    # a model-free validator replays them
    Replica(chain).sync({b.block.number: b.records for b in built_blocks})


def test_a_validator_checks_the_place_and_presence_of_a_task_record(world):
    chain, _, _, price = world
    pipeline = Pipeline(chain, NODE_KEY, next_timestamp=lambda parent: parent + 10)
    pipeline.submit(chain.sign(1, price.address, price.interface.function("forecast").encode(FEATURES), gas=GAS,
                               max_fee_per_gas=10 * GWEI))
    pipeline.prepare()
    built = pipeline.build_block(timestamp=chain.head.timestamp + 10)
    task_record, tx_record = built.records
    replica = Replica(chain)
    replica.sync(upto=built.block.number - 1)

    def rejected(records):
        forged = built.block.copy(header=built.block.header.copy(extra_data=bundle_root(records)))
        with pytest.raises(InvalidBlock) as info:
            replica.import_block(forged, records)
        return info.value.reason

    assert "not in block order" in rejected([tx_record, task_record])
    # without its record the task is deferred on replay: not the state the header commits to
    assert "state_root" in rejected([tx_record])
    assert replica.import_block(built.block, built.records).header == built.block.header


def test_a_due_task_without_its_results_is_deferred_and_runs_in_the_next_block(world):
    chain, _, forecaster, _ = world
    pipeline = Pipeline(chain, NODE_KEY, next_timestamp=lambda parent: parent + 1)
    before = task(chain, 1)
    # built without a step of the rounds: nobody asked for the task's inference
    deferred = pipeline.build_block(timestamp=chain.head.timestamp + 10)
    (run,) = deferred.scheduled
    call = scheduled_call_hash(deferred.block.number, 1)
    assert (run.call_hash, run.status) == (call, TaskStatus.DEFERRED)
    assert run.reason == f"divergence: no precomputed result for request {RequestId(call, 0)}"
    assert deferred.records == []
    after = task(chain, 1)
    assert (after["lastStatus"], after["lastReason"]) == (TaskStatus.DEFERRED, run.reason)
    assert {k: after[k] for k in ("nextRun", "runs", "lastRunBlock")} == {
        k: before[k] for k in ("nextRun", "runs", "lastRunBlock")}
    assert forecaster.call("runs") == (0,)
    # still due: requested ahead of the next block, it runs there
    pipeline.prepare()
    ran = pipeline.build_block(timestamp=chain.head.timestamp + 1)
    assert [r.status for r in ran.scheduled] == [TaskStatus.SUCCEEDED]
    assert forecaster.call("latestPrediction") == (71, 1)
    assert task(chain, 1)["lastReason"] == ""
    Replica(chain).sync({ran.block.number: ran.records})


# --- outcomes of failing tasks ---------------------------------------------------------------
def test_failing_tasks_are_recorded_with_their_reason_and_the_block_goes_on(fixture_store):
    chain, twin = DevChain(fixture_store), DevChain(fixture_store)
    contracts = [("TaskHarness", (COUNT,)), ("TaskHarness", (REVERT,)), ("TaskHarness", (BURN_GAS,)),
                 ("InferenceCaller", ())]
    targets = deploy_all(chain, contracts)
    deploy_all(twin, contracts)
    for c in (chain, twin):  # each runs once: one second after registration, its end
        assert register_many(c, [(t.address, 1, 1) for t in targets]) == [1, 2, 3, 4]
    pipeline = Pipeline(chain, NODE_KEY, next_timestamp=lambda parent: parent + 1)
    transfer = chain.sign(1, b"\x42" * 20, value=1, gas=21_000, max_fee_per_gas=10 * GWEI)
    pipeline.submit(transfer)
    pipeline.prepare()
    built = pipeline.build_block(timestamp=chain.head.timestamp + 1)
    outcomes = [(run.task_id, run.status, run.reason) for run in built.scheduled]
    assert outcomes == [
        (1, TaskStatus.SUCCEEDED, ""),
        (2, TaskStatus.REVERTED, "TaskHarness: told to revert"),
        (3, TaskStatus.OUT_OF_GAS, f"out of gas (a task's call has {TASK_GAS_LIMIT} gas)"),
        (4, TaskStatus.REVERTED, "reverted without a reason: the contract has no run() function"),
    ]
    assert built.scheduled[2].gas_used == TASK_GAS_LIMIT
    # the block goes on: the transaction is in, and pays for its own gas only
    assert list(built.block.transactions) == [transfer]
    assert built.block.header.gas_used == 21_000
    for task_id, status, reason in outcomes:
        assert {k: task(chain, task_id)[k] for k in ("lastStatus", "lastReason", "runs", "active")} == {
            "lastStatus": status, "lastReason": reason, "runs": 1, "active": False}  # ended after one run
    counter = targets[0]
    assert counter.call("runs") == (1,) and counter.call("lastCaller") == ("0x" + TASK_SCHEDULER_ADDRESS.hex(),)
    assert scheduler(chain).call("activeTasks") == ((),)
    twin_block, _ = mine_inline_like(twin, built.block)
    assert twin_block.header == built.block.header
    Replica(chain).sync({built.block.number: built.records})


def test_reverts_without_a_string_reason_are_recorded_readably(fixture_store):
    chain = DevChain(fixture_store)
    targets = deploy_all(chain, [("TaskHarness", (REVERT_CUSTOM,)), ("TaskHarness", (PANIC,))])
    register_many(chain, [(t.address, 1, 1) for t in targets])
    mine_at(chain, 1)
    refused = keccak(b"Refused(uint256)")[:4] + (7).to_bytes(32, "big")
    assert [(task(chain, i)["lastStatus"], task(chain, i)["lastReason"]) for i in (1, 2)] == [
        (TaskStatus.REVERTED, f"reverted with data 0x{refused.hex()}"), (TaskStatus.REVERTED, "panic 0x01")]


def test_a_task_runs_only_when_the_scheduler_calls_it(fixture_store, cids):
    chain = DevChain(fixture_store)
    (forecaster,) = deploy_all(chain, [forecaster_args(cids["linear_regression"])])
    with pytest.raises(TransactionFailed, match="only the scheduler runs it"):
        forecaster.call("run")


# --- the schedule ------------------------------------------------------------------------------
def test_a_block_runs_at_most_four_due_tasks_the_most_overdue_first(fixture_store):
    chain = DevChain(fixture_store)
    (harness,) = deploy_all(chain, [("TaskHarness", (COUNT,))])
    assert scheduler(chain).call("MAX_TASKS_PER_BLOCK") == (4,)
    # ids 1-4 every 10 s, 5-6 every 5 s: all registered in one block, all due 20 s later
    ids = register_many(chain, [(harness.address, FAR, 10)] * 4 + [(harness.address, FAR, 5)] * 2)
    assert due_tasks(chain.state(), chain.head.timestamp + 20) == (5, 6, 1, 2)  # most overdue, then by id
    mine_at(chain, 20)
    assert [task(chain, i)["runs"] for i in ids] == [1, 1, 0, 0, 1, 1]
    mine_at(chain, 1)  # 3 and 4 waited; the others are not due again yet
    assert [task(chain, i)["runs"] for i in ids] == [1, 1, 1, 1, 1, 1]
    assert harness.call("runs") == (6,)


def test_a_task_ends_with_its_end_time(fixture_store):
    chain = DevChain(fixture_store)
    (harness,) = deploy_all(chain, [("TaskHarness", (COUNT,))])
    task_id = register(chain, harness.address, 25, 10)  # runs at +10 and +20 only
    for dt in (10, 10, 10, 10):
        mine_at(chain, dt)
    state = task(chain, task_id)
    assert (state["runs"], state["active"]) == (2, False)
    assert harness.call("runs") == (2,)
    # a task whose end passed without a run to end it leaves the active list at the next registration
    late = register(chain, harness.address, 15, 10)
    mine_at(chain, 100)
    assert scheduler(chain).call("activeTasks") == ((late,),)
    register(chain, harness.address, FAR, 10)
    assert scheduler(chain).call("activeTasks") == ((late + 1,),)
    assert task(chain, late)["active"] is False and task(chain, late)["runs"] == 0


def test_update_and_stop_belong_to_the_owner(fixture_store):
    chain = DevChain(fixture_store)
    (harness,) = deploy_all(chain, [("TaskHarness", (COUNT,))])
    task_id = register(chain, harness.address, FAR, 100)
    sched = scheduler(chain)
    end = chain.head.timestamp + FAR
    assert transact_at(chain, "updateTask", task_id, end, 3, sender=1).revert_reason == (
        "TaskScheduler: not the task's owner")
    result = transact_at(chain, "updateTask", task_id, end, 3)
    assert sched.events(result, "TaskUpdated") == [{"id": task_id, "endTime": end, "frequency": 3}]
    updated_at = chain.head.timestamp
    assert (task(chain, task_id)["frequency"], task(chain, task_id)["nextRun"]) == (3, updated_at + 3)
    mine_at(chain, 2)
    assert harness.call("runs") == (0,)
    mine_at(chain, 1)
    assert harness.call("runs") == (1,)
    assert transact_at(chain, "stopTask", task_id, sender=1).revert_reason == "TaskScheduler: not the task's owner"
    assert sched.events(transact_at(chain, "stopTask", task_id), "TaskStopped") == [{"id": task_id}]
    mine_at(chain, 100)
    assert harness.call("runs") == (1,)
    assert task(chain, task_id)["active"] is False and sched.call("activeTasks") == ((),)
    for name, args in (("stopTask", (task_id,)), ("updateTask", (task_id, end, 3))):
        assert transact_at(chain, name, *args).revert_reason == "TaskScheduler: no such active task"


def register_owned(chain: DevChain, owner: DeployedContract, target: DeployedContract, end_in: int, frequency: int):
    """``owner.registerOwned(scheduler, target, ...)`` sent in a block of its own (head + 1 s)."""
    end = chain.head.timestamp + 1 + end_in
    data = owner.interface.function("registerOwned").encode(TASK_SCHEDULER_ADDRESS, target.address, end, frequency)
    _, (result,) = mine_at(chain, 1, chain.sign(0, owner.address, data, gas=GAS))
    assert result.success, result.revert_reason


def test_a_task_may_stop_itself_in_its_own_run(fixture_store):
    chain = DevChain(fixture_store)
    (harness,) = deploy_all(chain, [("TaskHarness", (STOP_OWNED,))])
    register_owned(chain, harness, harness, FAR, 5)
    assert harness.call("taskId") == (1,)
    mine_at(chain, 5)
    state = task(chain, 1)
    assert (state["lastStatus"], state["runs"], state["active"]) == (TaskStatus.SUCCEEDED, 1, False)
    mine_at(chain, 5)
    assert harness.call("runs") == (1,)


def test_a_task_stopped_by_an_earlier_run_in_the_block_is_skipped(fixture_store):
    chain = DevChain(fixture_store)
    stopper, victim = deploy_all(chain, [("TaskHarness", (STOP_OWNED,)), ("TaskHarness", (COUNT,))])
    register(chain, stopper.address, FAR, 6)  # task 1, due at t + 6
    register_owned(chain, stopper, victim, FAR, 5)  # task 2, owned by the stopper, due at t + 6 too
    assert due_tasks(chain.state(), chain.head.timestamp + 5) == (1, 2)
    mine_at(chain, 5)
    assert victim.call("runs") == (0,)
    assert (task(chain, 2)["active"], task(chain, 2)["runs"], task(chain, 2)["lastStatus"]) == (
        False, 0, TaskStatus.PENDING)
    assert task(chain, 1)["runs"] == 1 and task(chain, 1)["active"]


# --- bad input -------------------------------------------------------------------------------
@pytest.fixture
def harness_chain(fixture_store):
    chain = DevChain(fixture_store)
    (harness,) = deploy_all(chain, [("TaskHarness", (COUNT,))])
    return chain, harness


@pytest.mark.parametrize("target, end_in, frequency, reason", [
    ("eoa", 100, 10, "target has no code"),
    ("zero", 100, 10, "target has no code"),
    ("scheduler", 100, 10, "the scheduler cannot be a task"),
    ("harness", 100, 0, "frequency must be 1 second to 365 days"),
    ("harness", 10**9, 365 * 86400 + 1, "frequency must be 1 second to 365 days"),
    ("harness", -10, 1, "endTime is before the first run"),
    ("harness", 5, 10, "endTime is before the first run"),
    ("harness", None, 10, "endTime beyond 2^64 - 1"),
])
def test_bad_registrations_revert_with_a_reason(harness_chain, target, end_in, frequency, reason):
    chain, harness = harness_chain
    address = {"eoa": chain.accounts[3].address, "zero": b"\x00" * 20, "scheduler": TASK_SCHEDULER_ADDRESS,
               "harness": harness.address}[target]
    timestamp = chain.head.timestamp + 1
    end = 2**64 if end_in is None else timestamp + end_in
    _, (result,) = mine_at(chain, 1, register_tx(chain, address, end, frequency))
    assert result.revert_reason == f"TaskScheduler: {reason}"
    assert scheduler(chain).call("taskCount") == (0,)


def test_malformed_calls_and_unknown_tasks_revert_readably(harness_chain):
    chain, _ = harness_chain
    sched = scheduler(chain)
    selector = scheduler_interface().function("registerTask").selector
    _, (result,) = mine_at(chain, 1, chain.sign(0, TASK_SCHEDULER_ADDRESS, selector + b"\x01" * 7))
    assert not result.success  # truncated arguments: a revert, the chain goes on
    for task_id in (0, 1, 2**256 - 1):
        with pytest.raises(TransactionFailed, match="TaskScheduler: unknown task"):
            sched.call("getTask", task_id)
    result = transact_at(chain, "recordRun", 1, int(TaskStatus.SUCCEEDED), "")
    assert result.revert_reason == "TaskScheduler: only the system records runs"


def test_at_most_64_tasks_are_active(harness_chain):
    chain, harness = harness_chain
    register_many(chain, [(harness.address, FAR, 1000)] * 64)
    result = transact_at(chain, "registerTask", harness.address, chain.head.timestamp + FAR, 1000)
    assert result.revert_reason == "TaskScheduler: too many active tasks"
    assert chain.state().get_storage(TASK_SCHEDULER_ADDRESS, ACTIVE_TASKS_SLOT) == 64


# --- the due rule, against a reference --------------------------------------------------------
@pytest.fixture(scope="module")
def scheduled_chain(fixture_store):
    """Ten tasks of varied frequencies and ends, some of them run once or twice already."""
    chain = DevChain(fixture_store)
    (harness,) = deploy_all(chain, [("TaskHarness", (COUNT,))])
    for i in range(10):
        register(chain, harness.address, 30 + 17 * i % 90, 1 + 7 * i % 23)
    for dt in (9, 13):
        mine_at(chain, dt)
    return chain


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(0, 150))
def test_due_tasks_follow_the_documented_rule(scheduled_chain, offset):
    chain = scheduled_chain
    timestamp = chain.head.timestamp + offset
    active = scheduler(chain).call("activeTasks")[0]
    tasks = {i: task(chain, i) for i in active}
    eligible = sorted((t["nextRun"], i) for i, t in tasks.items() if t["nextRun"] <= timestamp <= t["endTime"])
    assert due_tasks(chain.state(), timestamp) == tuple(i for _, i in eligible[:4])
    assert chain.state().get_storage(TASK_SCHEDULER_ADDRESS, ACTIVE_TASKS_SLOT) == len(active)
