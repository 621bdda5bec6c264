"""Deterministic gas cost of a model, computed from its ONNX graph when it is added.

The cost of one sample is ``GAS_MODEL_BASE + ceil(ops / MODEL_OPS_PER_GAS)``, where
``ops`` estimates the arithmetic of one sample: ``2*M*K*N`` for MatMul/Gemm, ``2 *
outputs * (kernel * in_channels / groups)`` for Conv, and one op per output element
for every other node. Symbolic dimensions are set to 1 before shape inference; a node
whose output shape stays unknown counts as one op.
"""

from __future__ import annotations

import math

import onnx
from onnx import shape_inference

from ogevm.constants import GAS_MODEL_BASE, MODEL_OPS_PER_GAS


def model_gas_per_sample(model: onnx.ModelProto) -> int:
    """Gas charged for one sample of ``model``."""
    return GAS_MODEL_BASE + math.ceil(estimate_ops(model) / MODEL_OPS_PER_GAS)


def estimate_ops(model: onnx.ModelProto) -> int:
    """Arithmetic operations of one sample of ``model`` (see the module docstring)."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in fixed.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_value = 1
    inferred = shape_inference.infer_shapes(fixed)
    shapes = {**_shapes(inferred.graph.input), **_shapes(inferred.graph.value_info),
              **_shapes(inferred.graph.output)}
    for init in inferred.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return sum(_node_ops(node, shapes) for node in inferred.graph.node)


def _shapes(values) -> dict[str, tuple[int, ...] | None]:
    result = {}
    for value in values:
        tensor = value.type.tensor_type
        dims = tensor.shape.dim if tensor.HasField("shape") else None
        if dims is None or any(not d.HasField("dim_value") for d in dims):
            result[value.name] = None
        else:
            result[value.name] = tuple(d.dim_value for d in dims)
    return result


def _node_ops(node: onnx.NodeProto, shapes: dict) -> int:
    out = shapes.get(node.output[0]) if node.output else None
    if out is None:
        return 1
    outputs = math.prod(out)
    if node.op_type in ("MatMul", "Gemm") and len(node.input) >= 2:
        a = shapes.get(node.input[0])
        if a:
            transposed = node.op_type == "Gemm" and any(
                attr.name == "transA" and attr.i for attr in node.attribute
            )
            k = a[-2] if transposed and len(a) >= 2 else a[-1]
            return 2 * outputs * k
    if node.op_type == "Conv" and len(node.input) >= 2:
        w = shapes.get(node.input[1])
        if w:
            return 2 * outputs * math.prod(w[1:])
    return max(outputs, 1)
