"""Models whose work depends on their inputs (finding F3), built with onnx.helper.

Each builder returns ONNX bytes. Some must be refused when added, the others admitted
and charged in proportion to their work; ``REFUSED`` and ``ADMITTED`` list them.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def _model(nodes, inputs, outputs, initializers=(), domains=()) -> bytes:
    graph = helper.make_graph(nodes, "adversarial", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", OPSET), *(helper.make_opsetid(d, 1) for d in domains)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    return model.SerializeToString()


def _tensor(name, elem_type, shape):
    return helper.make_tensor_value_info(name, elem_type, shape)


def constant_of_shape() -> bytes:
    """y = zeros(s): the input's *values* set the output's size."""
    return _model([helper.make_node("ConstantOfShape", ["s"], ["y"])],
                  [_tensor("s", INT64, [2])], [_tensor("y", FLOAT, ["rows", "columns"])])


def constant_of_shape_lying() -> bytes:
    """The same, declaring a small symbolic output shape that inference would otherwise trust."""
    return _model([helper.make_node("ConstantOfShape", ["s"], ["y"])],
                  [_tensor("s", INT64, [2]), _tensor("x", FLOAT, ["n"])],
                  [_tensor("y", FLOAT, ["n", "n"])])


def _doubling_body() -> onnx.GraphProto:
    return helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]),
         helper.make_node("Add", ["v", "v"], ["v_out"])],
        "body",
        [_tensor("i", INT64, []), _tensor("cond", BOOL, []), _tensor("v", FLOAT, ["n", 4])],
        [_tensor("cond_out", BOOL, []), _tensor("v_out", FLOAT, ["n", 4])],
    )


def loop_input_trip_count() -> bytes:
    """A Loop whose trip count is an input: one call could run it 2^63 times."""
    return _model([helper.make_node("Loop", ["trips", "", "x"], ["y"], body=_doubling_body())],
                  [_tensor("trips", INT64, []), _tensor("x", FLOAT, ["n", 4])],
                  [_tensor("y", FLOAT, ["n", 4])])


def loop_constant_trip_count() -> bytes:
    """The same Loop run a constant 3 times (a Constant node): onnx leaves its body unshaped."""
    trips = helper.make_node("Constant", [], ["trips"], value_int=3)
    loop = helper.make_node("Loop", ["trips", "", "x"], ["y"], body=_doubling_body())
    return _model([trips, loop], [_tensor("x", FLOAT, ["n", 4])], [_tensor("y", FLOAT, ["n", 4])])


def range_output() -> bytes:
    """y = range(0, limit): the output length is an input value."""
    zero = numpy_helper.from_array(np.array(0, dtype=np.int64), "zero")
    one = numpy_helper.from_array(np.array(1, dtype=np.int64), "one")
    return _model([helper.make_node("Range", ["zero", "limit", "one"], ["y"])],
                  [_tensor("limit", INT64, [])], [_tensor("y", INT64, ["length"])], [zero, one])


def scan_model() -> bytes:
    """A Scan (refused: its iterations are not bounded by a constant here)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["acc", "row"], ["acc_out"]),
         helper.make_node("Identity", ["acc_out"], ["row_out"])],
        "scan_body",
        [_tensor("acc", FLOAT, [4]), _tensor("row", FLOAT, [4])],
        [_tensor("acc_out", FLOAT, [4]), _tensor("row_out", FLOAT, [4])],
    )
    node = helper.make_node("Scan", ["init", "x"], ["total", "rows"], body=body,
                            num_scan_inputs=1)
    return _model([node], [_tensor("init", FLOAT, [4]), _tensor("x", FLOAT, ["n", 4])],
                  [_tensor("total", FLOAT, [4]), _tensor("rows", FLOAT, ["n", 4])])


def custom_op() -> bytes:
    """An op of onnxruntime's own domain, whose cost nothing here knows."""
    return _model([helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")],
                  [_tensor("x", FLOAT, ["n"])], [_tensor("y", FLOAT, ["n"])],
                  domains=("com.microsoft",))


def sequence_without_inputs() -> bytes:
    """No inputs and a sequence output (finding F9), built by SequenceConstruct."""
    value = numpy_helper.from_array(np.ones((2, 3), dtype=np.float32), "c")
    seq_type = helper.make_sequence_type_proto(helper.make_tensor_type_proto(FLOAT, [2, 3]))
    return _model([helper.make_node("SequenceConstruct", ["c", "c"], ["s"])],
                  [], [helper.make_value_info("s", seq_type)], [value])


def transpose_matmul() -> bytes:
    """y = x^T x: [d, d] out of an [n, d] input, 2*n*d^2 operations."""
    return _model([helper.make_node("Transpose", ["x"], ["xt"]),
                   helper.make_node("MatMul", ["xt", "x"], ["y"])],
                  [_tensor("x", FLOAT, ["n", "d"])], [_tensor("y", FLOAT, ["d", "d"])])


def reduce_sum() -> bytes:
    """y = sum(x): one output element out of a large input."""
    return _model([helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)],
                  [_tensor("x", FLOAT, [1, "n"])], [_tensor("y", FLOAT, [])])


def if_two_branches() -> bytes:
    """y = x @ x if c else x + x, for a square x [d, d]: both branches are charged."""
    then_branch = helper.make_graph([helper.make_node("MatMul", ["x", "x"], ["t"])], "then", [],
                                    [_tensor("t", FLOAT, ["d", "d"])])
    else_branch = helper.make_graph([helper.make_node("Add", ["x", "x"], ["e"])], "else", [],
                                    [_tensor("e", FLOAT, ["d", "d"])])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_branch, else_branch=else_branch)
    return _model([node], [_tensor("c", BOOL, []), _tensor("x", FLOAT, ["d", "d"])],
                  [_tensor("y", FLOAT, ["d", "d"])])


def reshape_by_own_shape() -> bytes:
    """y = reshape(x, shape(x)): a shape computed from shapes only, which inference resolves."""
    return _model([helper.make_node("Shape", ["x"], ["s"]),
                   helper.make_node("Reshape", ["x", "s"], ["y"])],
                  [_tensor("x", FLOAT, [None, 4])], [_tensor("y", FLOAT, ["m", 4])])


def reshape_minus_one(target: list[int]) -> bytes:
    """y = relu(reshape(x, target)) for an [n, 4] input and a constant target with a -1,
    which onnx's shape inference leaves unknown (it does no arithmetic on symbols)."""
    shape = numpy_helper.from_array(np.array(target, dtype=np.int64), "shape")
    return _model([helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Relu", ["r"], ["y"])],
                  [_tensor("x", FLOAT, ["n", 4])], [_tensor("y", FLOAT, [f"d{i}" for i in range(len(target))])],
                  [shape])


def zipmap_without_inputs() -> bytes:
    """No inputs, a ZipMap sequence output: admitted, one row."""
    probs = numpy_helper.from_array(np.array([[0.25, 0.75]], dtype=np.float32), "probs")
    out_type = helper.make_sequence_type_proto(
        helper.make_map_type_proto(INT64, helper.make_tensor_type_proto(FLOAT, [])))
    node = helper.make_node("ZipMap", ["probs"], ["p"], domain="ai.onnx.ml", classlabels_int64s=[0, 1])
    return _model([node], [], [helper.make_value_info("p", out_type)], [probs], domains=("ai.onnx.ml",))


def tree_classifier() -> bytes:
    """A one-split ai.onnx.ml tree ensemble, whose output shapes onnx does not infer."""
    node = helper.make_node(
        "TreeEnsembleClassifier", ["x"], ["label", "scores"], domain="ai.onnx.ml",
        classlabels_int64s=[0, 1, 2], nodes_nodeids=[0, 1, 2], nodes_treeids=[0, 0, 0],
        nodes_featureids=[0, 0, 0], nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_values=[0.5, 0.0, 0.0], nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
        class_ids=[0, 2], class_nodeids=[1, 2], class_treeids=[0, 0], class_weights=[1.0, 1.0])
    return _model([node], [_tensor("x", FLOAT, ["n", 4])],
                  [_tensor("label", INT64, ["n"]), _tensor("scores", FLOAT, ["n", 3])], domains=("ai.onnx.ml",))


#: Refused when added, with a phrase their reason contains.
REFUSED = {
    "constant_of_shape": (constant_of_shape, "may depend on input values"),
    "constant_of_shape_lying": (constant_of_shape_lying, "may depend on input values"),
    "loop_input_trip_count": (loop_input_trip_count, "trip count is not a constant"),
    "loop_constant_trip_count": (loop_constant_trip_count, "(input of the 'body' graph of Loop node 'y')"),
    "range_output": (range_output, "may depend on input values"),
    "scan_model": (scan_model, "Scan node"),
    "custom_op": (custom_op, "com.microsoft.Gelu"),
    "sequence_without_inputs": (sequence_without_inputs, "not a tensor"),
}
#: Admitted, and charged by their input shapes.
ADMITTED = {
    "transpose_matmul": transpose_matmul,
    "reduce_sum": reduce_sum,
    "if_two_branches": if_two_branches,
    "reshape_by_own_shape": reshape_by_own_shape,
    "zipmap_without_inputs": zipmap_without_inputs,
    "tree_classifier": tree_classifier,
}
