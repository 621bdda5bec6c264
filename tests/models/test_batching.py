"""Batching never changes a result: the row-independence analysis, the bit-identity check,
and committed outputs equal to the same requests run alone."""

from __future__ import annotations

import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from eth_utils import keccak
from onnx import TensorProto, helper, numpy_helper

from ogevm.abi import InferenceMode, ModelInferenceRequest, ModelInput, Number, NumberTensor
from ogevm.abi.codec import encode_run_model_inference
from ogevm.models import ModelStore
from ogevm.models.batching import BATCH_BUCKETS, row_mixing, verified_batch_sizes
from ogevm.models.binding import bind_inputs, samples
from ogevm.models.runtime import ModelRuntime
from ogevm.models.store import TensorSpec, session_options
from ogevm.pipe.executor import local_executor
from ogevm.precompile.modes import InlineProvider
from ogevm.records import InferenceRequest, RequestId

from test_store import FIXTURES, MODELS

FLOAT = TensorProto.FLOAT
X = helper.make_tensor_value_info("x", FLOAT, ["batch", 4])


def build(nodes, inputs=(X,), outputs=None, initializers=(), opset=18, out_shape=("batch", 4)) -> onnx.ModelProto:
    if outputs is None:
        outputs = [helper.make_tensor_value_info("y", FLOAT, list(out_shape))]
    graph = helper.make_graph(nodes, "m", list(inputs), list(outputs), initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def const(name, values, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name=name)


def node(op, inputs, outputs=("y",), **attributes):
    return helper.make_node(op, list(inputs), list(outputs), **attributes)


# -- the static analysis

@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_models_rows_are_independent_except_the_fixed_shape_one(name):
    """Every fixture keeps rows apart (elementwise ops, MatMul/Gemm on batch-free weights,
    Softmax/ArgMax/ReduceSum over axis 1, Unsqueeze at axes 1 and 2, per-sample MatMul of
    heavy's 256x256 stacks, ZipMap and LabelEncoder); fixed_shape has no batch dimension."""
    reason = row_mixing(onnx.load(MODELS / name))
    if name == "fixed_shape.onnx":
        assert reason == "input 'x' has no symbolic leading dimension"
    else:
        assert reason is None


def _sum_axis_0_keep():
    return [node("ReduceSum", ["x", "axis0"], ["s"], keepdims=1)], [const("axis0", [0], np.int64)]


MIXING = {
    # y = x - mean(x) over the batch axis: one sender's output depends on another's input
    "x minus its mean over axis 0": (
        [node("ReduceMean", ["x", "axis0"], ["m"], keepdims=1), node("Sub", ["x", "m"])],
        [const("axis0", [0], np.int64)], "works across axis 0"),
    "shape-dependent": (
        [node("Shape", ["x"], ["s"]), node("Cast", ["s"], ["f"], to=FLOAT), node("Mul", ["x", "f"])],
        [], "(Shape): operator not on the row-independent list"),
    "ReduceSum over axis 0": (
        [*_sum_axis_0_keep()[0], node("Add", ["x", "s"])], _sum_axis_0_keep()[1], "works across axis 0"),
    # a value-dependent mix: 0 * sum(relu(x - 1e6)) is 0 unless one row is huge, then NaN/inf
    "x + 0 * sum(relu(x - 1e6)) over axis 0": (
        [node("Sub", ["x", "big"], ["d"]), node("Relu", ["d"], ["r"]),
         node("ReduceSum", ["r", "axis0"], ["s"], keepdims=1), node("Mul", ["s", "zero"], ["z"]),
         node("Add", ["x", "z"])],
        [const("big", 1e6), const("zero", 0.0), const("axis0", [0], np.int64)], "works across axis 0"),
    "MatMul contracting the batch axis": (
        [node("MatMul", ["w", "x"])], [const("w", np.eye(4))], "node 'y' (MatMul)"),
    "Transpose moving axis 0": ([node("Transpose", ["x"], perm=[1, 0])], [], "moves the batch axis"),
    "Transpose by default (reversed)": ([node("Transpose", ["x"])], [], "moves the batch axis"),
    "constant spanning axis 0": (
        [node("Add", ["x", "c"])], [const("c", np.ones((3, 4)))], "batch-free 'c' spans axis 0"),
    "Softmax over axis 0": ([node("Softmax", ["x"], axis=0)], [], "works across axis 0"),
    "ArgMax with its default axis 0": ([node("ArgMax", ["x"])], [], "works across axis 0"),
    "ReduceMax over every axis": ([node("ReduceMax", ["x"], keepdims=1)], [], "reduces over every axis"),
    "Gemm with transA": ([node("Gemm", ["x", "w"], transA=1)], [const("w", np.eye(4))], "transA"),
    "Gemm bias with rows": (
        [node("Gemm", ["x", "w", "c"])], [const("w", np.eye(4)), const("c", np.ones((3, 4)))], "spans axis 0"),
    "Reshape flattening the batch": (
        [node("Reshape", ["x", "s"])], [const("s", [-1], np.int64)], "does not keep the batch axis"),
    "Reshape regrouping rows": (
        [node("Reshape", ["x", "s"])], [const("s", [-1, 8], np.int64)], "does not keep the batch axis"),
    "Flatten at axis 0": ([node("Flatten", ["x"], axis=0)], [], "merges the batch axis"),
    "Squeeze without axes": ([node("Squeeze", ["x"])], [], "squeezes a batch of one"),
    "Concat along axis 0": ([node("Concat", ["x", "x"], axis=0)], [], "works across axis 0"),
    "Gather of rows": ([node("Gather", ["x", "i"])], [const("i", [0], np.int64)], "works across axis 0"),
    "Slice without axes": (
        [node("Slice", ["x", "b", "e"])], [const("b", [0], np.int64), const("e", [1], np.int64)],
        "slices axis 0"),
    "MaxPool indices": (
        [node("Unsqueeze", ["x", "a"], ["u"]), node("MaxPool", ["u"], ["y", "i"], kernel_shape=[1])],
        [const("a", [1], np.int64)], "computes over the whole batch"),
    "BatchNormalization in training mode": (
        [node("Unsqueeze", ["x", "a"], ["u"]),
         node("BatchNormalization", ["u", "one", "zero", "zero", "one"], ["y"], training_mode=1)],
        [const("a", [1], np.int64), const("one", [1.0]), const("zero", [0.0])], "computes over the whole batch"),
    "random noise": ([node("RandomNormalLike", ["x"], ["n"]), node("Add", ["x", "n"])], [],
                     "not a function of the inputs"),
    "an output without the batch axis": (
        [node("Identity", ["c"])], [const("c", [1.0])], "output 'y' does not carry the batch axis"),
}


@pytest.mark.parametrize("case", MIXING)
def test_constructs_that_let_rows_meet_are_not_batchable(case):
    nodes, initializers, reason = MIXING[case]
    assert reason in row_mixing(build(nodes, initializers=initializers))


def test_x_minus_its_mean_really_mixes_rows_and_the_store_keeps_it_unstacked():
    """The first finding's model: accepted by the store, but never stacked."""
    nodes, initializers, _ = MIXING["x minus its mean over axis 0"]
    data = build(nodes, initializers=initializers).SerializeToString()
    session = ort.InferenceSession(data, session_options(), providers=["CPUExecutionProvider"])
    rows = np.array([[1, 2, 3, 4], [10, 20, 30, 40]], np.float32)
    assert not np.array_equal(session.run(None, {"x": rows})[0][:1], session.run(None, {"x": rows[:1]})[0])
    info = ModelStore().add(data)
    assert not info.batchable and info.batch_sizes == ()


def test_no_inputs_and_a_sequence_output_is_not_batchable():
    model = build([node("Constant", [], ["c"], value=const("v", [1.0])), node("SequenceConstruct", ["c"])],
                  inputs=(), outputs=(helper.make_value_info("y", helper.make_sequence_type_proto(
                      helper.make_tensor_type_proto(FLOAT, [1]))),))
    assert row_mixing(model) == "the model has no inputs: nothing to stack"


@pytest.mark.parametrize("inputs, reason", [
    ([helper.make_tensor_value_info("x", FLOAT, ["n", 4]), helper.make_tensor_value_info("z", FLOAT, ["m", 4])],
     "inputs have different leading dimensions (m, n)"),
    ([helper.make_tensor_value_info("x", FLOAT, [None, 4])], "input 'x' has no symbolic leading dimension"),
    ([helper.make_tensor_value_info("x", FLOAT, ["n", "n"])], "input 'x' uses its batch symbol beyond axis 0"),
])
def test_inputs_must_share_one_symbolic_leading_dimension(inputs, reason):
    assert row_mixing(build([node("Identity", ["x"])], inputs=inputs)) == reason


def test_control_flow_is_not_batchable_even_on_batch_free_inputs():
    """A subgraph may read any tensor of the outer graph, the batch included."""
    branch = helper.make_graph([node("Identity", ["x"], ["out"])], "branch", [],
                               [helper.make_tensor_value_info("out", FLOAT, None)])
    model = build([node("If", ["flag"], ["y"], then_branch=branch, else_branch=branch)],
                  initializers=[const("flag", True, np.bool_)])
    assert "control flow" in row_mixing(model)


ROW_WISE = {
    "embedding lookup": (
        [node("Clip", ["x", "low", "high"], ["c"]), node("Cast", ["c"], ["i"], to=TensorProto.INT64),
         node("Gather", ["table", "i"], ["g"]), node("Reshape", ["g", "s"])],
        [const("low", 0.0), const("high", 5.0), const("table", np.arange(12).reshape(6, 2)),
         const("s", [0, -1], np.int64)], ("batch", 8)),
    "Reshape keeping axis 0": (
        [node("Reshape", ["x", "s"], ["r"]), node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
         node("Flatten", ["t"])], [const("s", [0, 2, 2], np.int64)], ("batch", 4)),
    "Conv on per-sample channels": (
        [node("Unsqueeze", ["x", "a"], ["u"]), node("Conv", ["u", "w", "b"], ["c"]),
         node("GlobalAveragePool", ["c"], ["p"]), node("Squeeze", ["p", "a2"])],
        [const("a", [1], np.int64), const("a2", [-1], np.int64), const("w", np.ones((2, 1, 3))),
         const("b", [0.5, -0.5])], ("batch", 2)),
    "LayerNormalization and Softmax over the features": (
        [node("LayerNormalization", ["x", "g", "b"], ["n"]), node("Softmax", ["n"])],
        [const("g", np.ones(4)), const("b", np.zeros(4))], ("batch", 4)),
}


@pytest.mark.parametrize("case", ROW_WISE)
def test_row_wise_constructs_are_batchable_and_stack_bit_identically(case):
    nodes, initializers, out_shape = ROW_WISE[case]
    model = build(nodes, initializers=initializers, out_shape=out_shape)
    assert row_mixing(model) is None
    info = ModelStore().add(model.SerializeToString())
    assert info.batchable and info.batch_sizes


def test_reshape_with_minus_1_keeps_the_batch_axis_only_with_the_row_size_fixed():
    assert row_mixing(build([node("Reshape", ["x", "s"])], initializers=[const("s", [-1, 2, 2], np.int64)])) is None
    symbolic_width = [helper.make_tensor_value_info("x", FLOAT, ["batch", "width"])]
    assert "does not keep the batch axis" in row_mixing(
        build([node("Reshape", ["x", "s"])], inputs=symbolic_width, initializers=[const("s", [-1, 2], np.int64)]))


def test_ml_row_operators_need_an_n_by_c_input():
    """On a rank-1 input an ai.onnx.ml row operator sees one sample of N features."""
    def normalizer(shape):
        graph = helper.make_graph([helper.make_node("Normalizer", ["x"], ["y"], domain="ai.onnx.ml", norm="L2")],
                                  "m", [helper.make_tensor_value_info("x", FLOAT, shape)],
                                  [helper.make_tensor_value_info("y", FLOAT, shape)])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                       helper.make_opsetid("ai.onnx.ml", 3)])

    assert row_mixing(normalizer(["batch", 3])) is None
    assert "is not [N, C]" in row_mixing(normalizer(["batch"]))


def test_softmax_before_opset_13_defaults_to_axis_1():
    assert row_mixing(build([node("Softmax", ["x"])], opset=11)) is None
    rank_1 = [helper.make_tensor_value_info("x", FLOAT, ["batch"])]
    assert "works across axis 0" in row_mixing(build([node("Softmax", ["x"])], inputs=rank_1))


def test_declared_shapes_cannot_hide_a_rank_change():
    """A model may declare any intermediate shape; the analysis infers ranks from the nodes."""
    model = build([node("Unsqueeze", ["x", "a"], ["u"]), node("Add", ["u", "x"])],
                  initializers=[const("a", [2], np.int64)])
    model.graph.value_info.append(helper.make_tensor_value_info("u", FLOAT, ["batch", 4]))
    assert "broadcasting moves the batch axis of 'x'" in row_mixing(model)


# -- the bit-identity check

SPECS = (TensorSpec("x", "tensor(float)", ("batch", 3)),)


def test_the_check_keeps_the_sizes_whose_rows_match_their_runs_alone():
    """A kernel whose last bit changes from 8 rows on (as a vectorised loop would)."""

    def run(feeds):
        x = feeds["x"] / np.float32(3)
        if len(x) >= 8:
            x = np.nextafter(x, np.float32(np.inf))
        return [x]

    assert verified_batch_sizes(run, SPECS) == (2, 4)
    assert verified_batch_sizes(lambda feeds: [feeds["x"] / 3], SPECS) == BATCH_BUCKETS


def test_the_check_compares_every_position():
    def last_row_differs_in_stacks_of_4(feeds):
        x = feeds["x"].copy()
        if len(x) == 4:
            x[-1] = np.nextafter(x[-1], np.float32(np.inf))
        return [x]

    assert verified_batch_sizes(last_row_differs_in_stacks_of_4, SPECS) == (2,)


def test_nans_match_whatever_their_payload():
    """Any NaN output is the same error result: its bits never reach a commitment."""
    nan = np.float32(np.nan)
    assert nan.tobytes() != (-nan).tobytes()

    def other_nan_in_stacks(feeds):
        x = feeds["x"]
        return [np.where(x < 0, nan if len(x) == 1 else -nan, x)]

    assert verified_batch_sizes(other_nan_in_stacks, SPECS) == BATCH_BUCKETS


def test_the_check_is_bounded_in_time_and_fails_closed():
    def slow(feeds):
        time.sleep(0.002 * len(feeds["x"]))
        return [feeds["x"]]

    started = time.perf_counter()
    sizes = verified_batch_sizes(slow, SPECS, budget=0.1)
    assert time.perf_counter() - started < 0.3
    assert sizes == BATCH_BUCKETS[:len(sizes)] and len(sizes) < len(BATCH_BUCKETS)

    def broken(feeds):
        raise RuntimeError("kernel failure")

    assert verified_batch_sizes(broken, SPECS) == ()
    free_width = (TensorSpec("x", "tensor(float)", ("batch", "width")),)
    assert verified_batch_sizes(lambda feeds: [feeds["x"]], free_width) == ()


# -- committed outputs equal the request alone (finding F4 on log_model)

LOG_VALUES = [(17, 1), (3, 0), (250, 2), (9, 3), (123, 1), (5, 0), (77, 2), (2, 0), (61, 1)]


def log_request(info, value: tuple[int, int], i: int) -> InferenceRequest:
    call = ModelInferenceRequest(InferenceMode.VANILLA, info.cid,
                                 ModelInput((NumberTensor("x", (Number(*value),), (1, 1)),), ()))
    return InferenceRequest(RequestId(i.to_bytes(32, "big"), 0), keccak(encode_run_model_inference(call)), call,
                            samples(info, call.input), bind_inputs(info, call.input))


def test_log_model_outputs_through_the_executor_equal_eth_call_bit_for_bit():
    store = ModelStore()
    info = store.add_file(MODELS / "log_model.onnx")
    runtime = ModelRuntime(store)
    requests = [log_request(info, value, i) for i, value in enumerate(LOG_VALUES)]
    # the finding: the nine rows in one run differ from the same rows alone
    stacked = runtime.run_raw(info, {"x": np.concatenate([r.feeds["x"] for r in requests])})[0]
    alone = [runtime.run_raw(info, r.feeds)[0] for r in requests]
    assert any(stacked[i:i + 1].tobytes() != alone[i].tobytes() for i in range(len(requests)))
    inline = InlineProvider(store, runtime)
    executor = local_executor(runtime, workers=1, batching=True)
    try:
        assert [r.result for r in executor.execute(requests)] == [inline.resolve(r) for r in requests]
    finally:
        executor.close()
