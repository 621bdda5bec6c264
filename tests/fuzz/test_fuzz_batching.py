"""Fuzzing the executor's batching: a committed output never depends on what it was stacked with.

Random mixes of requests (random models, row counts and values; workers and ``max_batch``
drawn too) run through the executor with batching on, and each request runs alone (INLINE,
what ``eth_call`` computes): every result must be the same, byte for byte. The models are
the fixtures and adversarial ones whose rows meet along the batch axis, which must never be
stacked.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from eth_utils import keccak
from hypothesis import given, strategies as st
from onnx import TensorProto, helper, numpy_helper

from ogevm.abi import InferenceMode, ModelInferenceRequest
from ogevm.abi.codec import encode_run_model_inference
from ogevm.fixtures import FIXTURES
from ogevm.models import ModelStore
from ogevm.models.binding import bind_inputs, samples
from ogevm.models.runtime import ModelRuntime
from ogevm.pipe.executor import local_executor
from ogevm.precompile.modes import InlineProvider
from ogevm.records import InferenceRequest, RequestId
from ogevm.testing.strategies import arrays_for, input_from_arrays

from fuzz_budget import fuzz_settings, report

EXECUTORS = [(1, 64), (2, 64), (1, 4), (2, 8), (2, 2)]  # (workers, max_batch)


def _adversarial(name: str, nodes: list, initializers: list) -> bytes:
    """x [batch, 3] -> y [batch, 3] through ``nodes``: a model whose rows meet on axis 0."""
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
                              initializer=[numpy_helper.from_array(np.asarray(v), n) for n, v in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model.SerializeToString()


ADVERSARIAL = {
    # y = x - mean(x) over the batch axis
    "minus_batch_mean": _adversarial("minus_batch_mean", [
        helper.make_node("ReduceMean", ["x", "axis0"], ["m"], keepdims=1),
        helper.make_node("Sub", ["x", "m"], ["y"])], [("axis0", np.array([0], np.int64))]),
    # y = x + 0 * sum(relu(x - 1e6)) over the batch axis: a mix only huge values reveal
    "hidden_batch_sum": _adversarial("hidden_batch_sum", [
        helper.make_node("Sub", ["x", "big"], ["d"]), helper.make_node("Relu", ["d"], ["r"]),
        helper.make_node("ReduceSum", ["r", "axis0"], ["s"], keepdims=1),
        helper.make_node("Mul", ["s", "zero"], ["z"]), helper.make_node("Add", ["x", "z"], ["y"])],
        [("big", np.float32(1e6)), ("zero", np.float32(0)), ("axis0", np.array([0], np.int64))]),
}


class CountingRuntime(ModelRuntime):
    """A real runtime that counts its onnxruntime runs."""

    def __init__(self, store) -> None:
        super().__init__(store)
        self.runs = 0
        self._lock = threading.Lock()

    def run_raw(self, info, feeds):
        with self._lock:
            self.runs += 1
        return super().run_raw(info, feeds)


@pytest.fixture(scope="module")
def setup():
    store = ModelStore()
    models = {path.stem: store.add_file(path) for path in sorted((FIXTURES / "models").glob("*.onnx"))}
    models.update({name: store.add(data) for name, data in ADVERSARIAL.items()})
    assert not any(models[name].batchable for name in ADVERSARIAL)
    runtime = CountingRuntime(store)
    executors = [local_executor(runtime, workers=w, max_batch=m) for w, m in EXECUTORS]
    yield models, runtime, InlineProvider(store, ModelRuntime(store)), executors
    for executor in executors:
        executor.close()


COUNTS = {"mixes": 0, "requests": 0, "runs": 0, "differences": 0}


#: Float32 values with full mantissas: kernels' vector and scalar paths agree on simple
#: values (the ones hypothesis favours) more often than on these.
_MANTISSAS = st.builds(lambda m, e: float(np.float32(m * 2.0**e)), st.integers(-2**24, 2**24), st.integers(-30, -4))


def _arrays(spec, rows: int) -> st.SearchStrategy[np.ndarray]:
    if spec.type != "tensor(float)":
        return arrays_for(spec, batch=rows)
    shape = tuple(d if isinstance(d, int) else rows for d in spec.shape)
    count = int(np.prod(shape))
    simple = st.floats(-1e4, 1e4, width=32).map(lambda x: 0.0 if abs(x) < 2**-20 else x)  # exact in int128
    values = st.lists(st.one_of(_MANTISSAS, simple), min_size=count, max_size=count)
    return values.map(lambda v: np.array(v, np.float32).reshape(shape))


@st.composite
def mixes(draw, models):
    names = draw(st.lists(st.sampled_from(sorted(models)), min_size=1, max_size=3, unique=True))
    requests = []
    for index in range(draw(st.integers(1, 16))):  # few models per mix, so that stacks form
        name = draw(st.sampled_from(names))
        info = models[name]
        rows = draw(st.integers(1, 2) if name == "heavy" else st.sampled_from([1, 1, 1, 2, 2, 3, 4, 5, 8]))
        arrays = {spec.name: draw(_arrays(spec, rows)) for spec in info.inputs}
        call = ModelInferenceRequest(InferenceMode.VANILLA, info.cid, input_from_arrays(info, arrays))
        digest = keccak(encode_run_model_inference(call))
        requests.append(InferenceRequest(RequestId(index.to_bytes(32, "big"), draw(st.integers(0, 2))), digest,
                                         call, samples(info, call.input), bind_inputs(info, call.input)))
    return requests


@pytest.fixture(scope="module", autouse=True)
def counts():
    yield COUNTS
    report("batching", COUNTS["mixes"])
    print(f"fuzz batching: {COUNTS['requests']} requests in {COUNTS['runs']} onnxruntime runs, "
          f"{COUNTS['differences']} differences from the requests run alone")


@fuzz_settings(100)
@given(data=st.data())
def test_batched_results_equal_each_request_run_alone(setup, data):
    models, runtime, inline, executors = setup
    requests = data.draw(mixes(models))
    executor = data.draw(st.sampled_from(executors))
    before = runtime.runs
    batched = [record.result for record in executor.execute(requests)]
    alone = [inline.resolve(request) for request in requests]
    COUNTS["mixes"] += 1
    COUNTS["requests"] += len(requests)
    COUNTS["runs"] += runtime.runs - before
    COUNTS["differences"] += sum(b != a for b, a in zip(batched, alone))
    assert batched == alone


def test_the_fuzzer_stacked_requests():
    """Runs after the fuzzer: it was not vacuous, batching did merge requests."""
    assert COUNTS["mixes"] >= 1 and COUNTS["runs"] < COUNTS["requests"], COUNTS
