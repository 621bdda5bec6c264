"""The inference executor: batching is exact (stacks only at verified sizes, padded, and
equal to each request alone), failures stay per request, records are signed (a job's
VANILLA records as one batch)."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ogevm.abi import InferenceMode
from ogevm.models.runtime import ModelRuntime
from ogevm.pipe.executor import InferenceExecutor, ThreadPoolBackend, local_executor
from ogevm.pipe.worker import InferenceWorker
from ogevm.precompile.modes import InlineProvider
from ogevm.records import InferenceRequest, RequestId
from ogevm.testing.strategies import valid_input_for
from ogevm.verify.records import InvalidRecord, check_record
from ogevm.verify.tee import SimulatedEnclave
from ogevm.verify.vanilla import recover_signer

from pipe_helpers import NODE, NODE_KEY, call_for, inference_request, tensor


class CountingRuntime(ModelRuntime):
    """A real runtime that counts onnxruntime runs and the rows of each."""

    def __init__(self, store) -> None:
        super().__init__(store)
        self.runs: list[tuple[str, int]] = []
        self._count_lock = threading.Lock()

    def run_raw(self, info, feeds):
        with self._count_lock:
            self.runs.append((info.cid, len(next(iter(feeds.values())))))
        return super().run_raw(info, feeds)


@pytest.fixture(scope="module")
def runtime(fixture_store):
    return ModelRuntime(fixture_store)


@pytest.fixture(scope="module")
def inline(fixture_store, runtime):
    return InlineProvider(fixture_store, runtime)


@pytest.fixture(scope="module")
def executors(runtime):
    batched = local_executor(runtime, NODE_KEY, 2, batching=True, max_batch=5)
    single = local_executor(runtime, NODE_KEY, 2, batching=False)
    yield batched, single
    batched.backend.close()
    single.backend.close()


def tx_hash(i: int) -> bytes:
    return i.to_bytes(32, "big")


def assert_signed_by_the_node(records) -> None:
    """Every record passes the validator's signature checks as the node's."""
    for record in records:
        check_record(record)
        assert record.node == NODE


def rows_request(fixture_store, cids, model, rows, i, index=0, name="x"):
    info = fixture_store[cids[model]]
    return inference_request(info, call_for(info.cid, tensor(
        [v for row in rows for v in row], (len(rows), len(rows[0])), name)), tx_hash(i), index)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_batched_outputs_equal_unbatched_and_inline(fixture_store, cids, executors, inline, data):
    batched, single = executors
    requests = []
    hashes = data.draw(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=12, unique=True))
    for h in hashes:
        info = fixture_store[cids[data.draw(st.sampled_from(["linear_regression", "small_mlp"]))]]
        model_input = data.draw(valid_input_for(info, batch=st.integers(1, 3)))
        call = call_for(info.cid, *model_input.numbers)
        requests.append(inference_request(info, call, h, data.draw(st.integers(0, 3))))
    with_batching = batched.execute(requests)
    without = single.execute(requests)
    expected = [inline.resolve(request) for request in requests]
    assert [r.result for r in with_batching] == [r.result for r in without] == expected
    assert all(r.result.output is not None for r in with_batching)
    assert [r.request_id for r in with_batching] == [r.id for r in requests]
    assert all(r.batch is None for r in without)  # jobs of one request: signed alone
    assert_signed_by_the_node(with_batching + without)


def test_a_nan_in_a_stacked_batch_fails_only_its_own_request(fixture_store, cids, inline):
    runtime = CountingRuntime(fixture_store)
    executor = local_executor(runtime, NODE_KEY, 1)
    assert 2 in fixture_store[cids["log_model"]].batch_sizes
    values = [[2], [-1], [(5, 1)], [-3]]
    requests = [rows_request(fixture_store, cids, "log_model", [v], i) for i, v in enumerate(values)]
    records = executor.execute(requests)
    assert runtime.runs == [(cids["log_model"], 2)] * 2  # stacked runs only
    errors = [r.result.error for r in records]
    assert [e is not None for e in errors] == [False, True, False, True]
    assert all("contains NaN" in errors[i] for i in (1, 3))
    assert records[0].result.output.numbers[0].values[0] == (6931472, 7)  # ln 2 in float32
    assert [r.result for r in records] == [inline.resolve(r) for r in requests]
    assert_signed_by_the_node(records)
    assert [r.batch.index for r in records] == [0, 1, 0, 1]  # each stacked run is one signed batch


def test_a_request_onnxruntime_refuses_fails_alone(fixture_store, cids, inline):
    """Request 1's two inputs cannot be added (2 vs 3 rows): onnxruntime refuses it, and
    only request 1 gets the error, whether or not a stacked run was tried first."""
    runtime = CountingRuntime(fixture_store)
    executor = local_executor(runtime, NODE_KEY, 1)
    info = fixture_store[cids["two_inputs"]]

    def two(i, a_rows, b_rows):
        return inference_request(info, call_for(info.cid, tensor([1] * 3 * a_rows, (a_rows, 3), "a"),
                                                tensor([2] * 3 * b_rows, (b_rows, 3), "b")), tx_hash(i))

    requests = [two(0, 1, 1), two(1, 2, 3), two(2, 1, 1)]
    records = executor.execute(requests)
    assert [r.result for r in records] == [inline.resolve(r) for r in requests]
    assert records[0].result.output is not None and records[2].result.output is not None
    assert records[1].result.error.startswith("model execution failed")
    # every request was answered by a run that contained it
    assert sum(rows for _, rows in runtime.runs) >= 1 + 2 + 1


def test_batching_never_mixes_rows_of_different_requests(fixture_store, cids, inline):
    """A model with two batched inputs accepts a request whose inputs differ in leading size
    when one of them is 1 (broadcasting): INLINE gives request 0 two rows. Stacking such
    requests along the first input's rows shifts the other input's rows between requests."""
    executor = local_executor(ModelRuntime(fixture_store), NODE_KEY, 1)
    info = fixture_store[cids["two_inputs"]]
    r0 = inference_request(info, call_for(info.cid, tensor([1, 2, 3], (1, 3), "a"),
                                          tensor([10, 20, 30, 40, 50, 60], (2, 3), "b")), tx_hash(1))
    r1 = inference_request(info, call_for(info.cid, tensor([100, 200, 300, 400, 500, 600], (2, 3), "a"),
                                          tensor([7, 8, 9], (1, 3), "b")), tx_hash(2))
    expected = [inline.resolve(r0), inline.resolve(r1)]
    assert expected[0].output.numbers[0].shape == (2, 3)  # broadcast, valid INLINE
    records = executor.execute([r0, r1])
    assert [r.result for r in records] == expected


def test_records_carry_a_valid_vanilla_signature_of_the_node(fixture_store, cids):
    """The four stacked requests share one batch signature; the request alone is signed alone."""
    executor = local_executor(ModelRuntime(fixture_store), NODE_KEY, 1)
    requests = [rows_request(fixture_store, cids, "linear_regression", [[1, 2, 3, 4]], i) for i in range(4)]
    requests.append(rows_request(fixture_store, cids, "log_model", [[-1]], 9))
    records = executor.execute(requests)
    executor.close()
    assert [i.node for i in executor.identities()] == [NODE]
    assert_signed_by_the_node(records)
    for record, request in zip(records, requests):
        assert record.mode is InferenceMode.VANILLA and record.model_cid == request.model_cid
        assert record.result.digest == request.digest
    assert [r.batch.index for r in records[:4]] == [0, 1, 2, 3]
    assert len({(r.batch.root, r.signature) for r in records[:4]}) == 1
    assert records[4].batch is None and recover_signer(records[4].result, records[4].signature) == NODE
    # the signature binds the result: another request's result, or another output, does not verify
    with pytest.raises(InvalidRecord):
        check_record(replace(records[0], result=records[1].result))
    with pytest.raises(InvalidRecord):
        check_record(replace(records[4], signature=records[0].signature))
    changed = replace(records[0].result, output=None, error="x")
    for record in (records[0], records[4]):
        with pytest.raises(InvalidRecord):
            check_record(replace(record, result=replace(changed, request_id=record.request_id)))


def test_the_tee_records_of_a_stacked_job_are_signed_alone_by_the_enclave(fixture_store, cids):
    """One stacked run of VANILLA and TEE requests: the VANILLA records form the batch, each
    TEE record carries the enclave's own signature over its result and attestation."""
    runtime = CountingRuntime(fixture_store)
    enclave = SimulatedEnclave()
    executor = local_executor(runtime, NODE_KEY, 1, enclave=enclave)
    info = fixture_store[cids["linear_regression"]]
    modes = [InferenceMode.VANILLA, InferenceMode.TEE, InferenceMode.VANILLA, InferenceMode.TEE]
    requests = [inference_request(info, call_for(info.cid, tensor([i, 1, 2, 3], (1, 4)), mode=mode), tx_hash(i))
                for i, mode in enumerate(modes)]
    records = executor.execute(requests)
    executor.close()
    assert runtime.runs == [(info.cid, 4)]
    for record in records:
        check_record(record)
    assert [r.batch and r.batch.index for r in records] == [0, None, 1, None]
    assert [r.node for r in records] == [NODE, enclave.address, NODE, enclave.address]
    assert all(r.attestation == enclave.attestation.encode() for r in records[1::2])


@pytest.mark.parametrize("count, max_batch, workers, runs", [
    (1, 4, 2, [1]), (4, 4, 1, [4]), (4, 4, 2, [2, 2]), (5, 4, 1, [4, 1]), (10, 4, 2, [4, 4, 2]),
    (17, 8, 2, [8, 8, 1]), (9, 1, 2, [1] * 9),
    # the share per worker (3 rows) is not a verified size: stacks of 2, the last row alone
    (7, 64, 3, [2, 2, 2, 1]),
    # 7 rows in stacks of at most 4: the last 3 are padded to a run of 4
    (7, 8, 1, [4, 4]),
])
def test_one_model_runs_in_verified_stack_sizes_of_at_most_max_batch_shared_among_the_workers(
        fixture_store, cids, inline, count, max_batch, workers, runs):
    runtime = CountingRuntime(fixture_store)
    executor = local_executor(runtime, NODE_KEY, workers, max_batch=max_batch)
    requests = [rows_request(fixture_store, cids, "linear_regression", [[i, 1, 2, 3]], i) for i in range(count)]
    records = executor.execute(requests)
    assert sorted(rows for _, rows in runtime.runs) == sorted(runs)
    # y = 0.5 i - 1.25 + 4 + 2.25 + 0.1, padding rows dropped
    assert [r.result for r in records] == [inline.resolve(r) for r in requests]
    for i, record in enumerate(records):
        (value,) = record.result.output.numbers[0].values
        assert np.isclose(value.value / 10**value.decimals, 0.5 * i + 5.1, rtol=1e-6)
    executor.close()


def test_without_batching_every_request_runs_alone(fixture_store, cids):
    runtime = CountingRuntime(fixture_store)
    executor = local_executor(runtime, NODE_KEY, 2, batching=False)
    executor.execute([rows_request(fixture_store, cids, "linear_regression", [[i, 1, 2, 3]], i) for i in range(6)])
    assert sorted(runtime.runs) == [(cids["linear_regression"], 1)] * 6
    executor.close()


def test_a_multi_row_request_counts_its_rows_against_max_batch(fixture_store, cids, inline):
    runtime = CountingRuntime(fixture_store)
    executor = local_executor(runtime, NODE_KEY, 1, max_batch=4)
    requests = [rows_request(fixture_store, cids, "linear_regression", [[i, 2, 3, 4]] * 2, i) for i in range(3)]
    records = executor.execute(requests)
    assert [n for _, n in runtime.runs] == [4, 2]  # 2 + 2 fill a run of 4; a third would not fit
    assert [r.result for r in records] == [inline.resolve(r) for r in requests]


def test_a_request_whose_row_count_was_not_verified_runs_alone(fixture_store, cids, inline):
    """Three rows alone run at shape [3, ...], never checked against shape [1, ...]: stacked,
    its rows could get other bits than its own run alone (what eth_call computes)."""
    runtime = CountingRuntime(fixture_store)
    executor = local_executor(runtime, NODE_KEY, 1)
    assert 3 not in fixture_store[cids["linear_regression"]].batch_sizes
    requests = [rows_request(fixture_store, cids, "linear_regression", [[i, 2, 3, 4]] * rows, i)
                for i, rows in enumerate([3, 1, 1])]
    records = executor.execute(requests)
    assert sorted(n for _, n in runtime.runs) == [2, 3]
    assert [r.result for r in records] == [inline.resolve(r) for r in requests]


def test_the_worker_runs_alone_a_stack_its_own_check_did_not_admit(fixture_store, cids, inline):
    """A planner whose catalogue admits bigger stacks (another machine) cannot make this
    node run a shape it did not verify."""
    runtime = CountingRuntime(fixture_store)
    info = fixture_store[cids["log_model"]]
    assert 4 not in info.batch_sizes
    planner_view = {info.cid: replace(info, batch_sizes=(2, 4, 8))}
    executor = InferenceExecutor(ThreadPoolBackend(InferenceWorker(runtime, NODE_KEY), 1), planner_view)
    requests = [rows_request(fixture_store, cids, "log_model", [[(17 + 10 * i, 1)]], i) for i in range(4)]
    records = executor.execute(requests)
    assert sorted(runtime.runs) == [(info.cid, 1)] * 4
    assert [r.result for r in records] == [inline.resolve(r) for r in requests]
    executor.close()


def test_fixed_shape_requests_are_never_stacked(fixture_store, cids, inline):
    runtime = CountingRuntime(fixture_store)
    executor = local_executor(runtime, NODE_KEY, 2, max_batch=64)
    assert not fixture_store[cids["fixed_shape"]].batchable
    requests = [rows_request(fixture_store, cids, "fixed_shape", [[i, 2, 3, 4]], i) for i in range(5)]
    records = executor.execute(requests)
    assert sorted(runtime.runs) == [(cids["fixed_shape"], 1)] * 5  # no failed stacked attempt
    assert [r.result for r in records] == [inline.resolve(r) for r in requests]
    assert records[1].result.output.numbers[0].values == ((-15, 1), (85, 1))  # x = [1, 2, 3, 4]
    executor.close()


def test_unknown_model_gives_an_error_result(fixture_store, cids, executors, inline):
    batched, _ = executors
    good = rows_request(fixture_store, cids, "linear_regression", [[1, 2, 3, 4]], 1)
    unknown = InferenceRequest(RequestId(tx_hash(2), 0), good.digest,
                               good.call._replace(model_cid="bafkreinotamodel"), good.samples, good.feeds)
    records = batched.execute([good, unknown])
    assert records[0].result.output is not None
    assert "unknown model" in records[1].result.error
    assert records[1].result == inline.resolve(unknown)


def test_two_workers_give_the_same_records_as_one(fixture_store, cids):
    runtime = ModelRuntime(fixture_store)
    requests = []
    for i in range(24):
        model = ["linear_regression", "small_mlp", "log_model", "fixed_shape"][i % 4]
        width = {"linear_regression": 4, "small_mlp": 8, "log_model": 1, "fixed_shape": 4}[model]
        rows = [[(i * 7 + j) % 11 - 3 for j in range(width)] for _ in range(1 if model == "fixed_shape" else 1 + i % 3)]
        requests.append(rows_request(fixture_store, cids, model, rows, i, index=i % 2))
    one = local_executor(runtime, NODE_KEY, 1, max_batch=4)
    two = local_executor(runtime, NODE_KEY, 2, max_batch=4)
    records = two.execute(requests)
    assert [r.result for r in one.execute(requests)] == [r.result for r in records]
    assert any(r.result.error for r in records)  # log of negatives, kept per request
    assert_signed_by_the_node(records)
    one.backend.close()
    two.backend.close()
