"""Static cost of a model: its work and its largest tensor as functions of its input shapes.

A model is admitted only if both are bounded by the shapes of its inputs, so that the gas
of a call, computed from the call's input shapes before the model runs, pays for the work.
ONNX shape inference runs once, when the model is added, on a copy stripped of every
declared intermediate and output shape (a model does not vouch for its own shapes), with
the free input dimensions kept as symbols. Every value must then have a shape made of
integers and input symbols; anything else depends on input *values* and is refused.

The work of a node is a polynomial in the input symbols: ``2*M*K*N`` for MatMul and Gemm,
``2 * outputs * kernel * C_in/group`` for Conv, the gate formulas for RNN/GRU/LSTM, and
``inputs + outputs`` elements for every other node (a reduction over a large input is not
one op). An If counts both branches, a Loop its body times a constant trip count. The
rules and the refused constructs are listed in docs/SPEC.md §2.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from ogevm.constants import GAS_MODEL_BASE, MODEL_OPS_PER_GAS
from ogevm.errors import InvalidModel

#: A product of input symbols, each with its power, sorted by symbol.
Monomial = tuple[tuple[str, int], ...]

DEFAULT_DOMAINS = ("", "ai.onnx")
#: How many input shapes a model's cost remembers (see :meth:`ModelCost.at`).
_SHAPES_REMEMBERED = 64
ML_DOMAIN = "ai.onnx.ml"

#: Default-domain ops whose work no formula here bounds by their shapes.
UNBOUNDED_OPS = {
    "Scan": "its iteration count is not bounded by a constant",
    "DFT": "its cost is not bounded here",
    "STFT": "its cost is not bounded here",
    "RoiAlign": "its sampling depends on the box values",
    "Attention": "its cost is not bounded here",
}
#: ai.onnx.ml ops that touch each element a bounded number of times.
ML_ELEMENTWISE_OPS = frozenset({
    "ArrayFeatureExtractor", "Binarizer", "CategoryMapper", "FeatureVectorizer", "Imputer",
    "LabelEncoder", "Normalizer", "OneHotEncoder", "Scaler", "ZipMap",
})
#: ai.onnx.ml ops whose work is rows x (size of a weight attribute).
ML_WEIGHTED_OPS = {
    "LinearClassifier": ("coefficients",),
    "LinearRegressor": ("coefficients",),
    "SVMClassifier": ("support_vectors", "coefficients"),
    "SVMRegressor": ("support_vectors", "coefficients"),
    "TreeEnsembleClassifier": ("nodes_nodeids",),
    "TreeEnsembleRegressor": ("nodes_nodeids",),
    "TreeEnsemble": ("nodes_featureids",),
}


@dataclass(frozen=True)
class Polynomial:
    """A sum of ``coefficient x monomial`` terms over input symbols, with exact integers."""

    terms: tuple[tuple[int, Monomial], ...] = ()

    @classmethod
    def constant(cls, value: int) -> Polynomial:
        return cls(((value, ()),) if value else ())

    @classmethod
    def symbol(cls, name: str) -> Polynomial:
        return cls(((1, ((name, 1),)),))

    @classmethod
    def _of(cls, coefficients: Mapping[Monomial, int]) -> Polynomial:
        return cls(tuple(sorted((c, m) for m, c in coefficients.items() if c)))

    def __add__(self, other: Polynomial) -> Polynomial:
        total: dict[Monomial, int] = {}
        for coefficient, monomial in (*self.terms, *other.terms):
            total[monomial] = total.get(monomial, 0) + coefficient
        return Polynomial._of(total)

    def __mul__(self, other: Polynomial | int) -> Polynomial:
        if isinstance(other, int):
            other = Polynomial.constant(other)
        product: dict[Monomial, int] = {}
        for c1, m1 in self.terms:
            for c2, m2 in other.terms:
                powers = dict(m1)
                for name, power in m2:
                    powers[name] = powers.get(name, 0) + power
                monomial = tuple(sorted(powers.items()))
                product[monomial] = product.get(monomial, 0) + c1 * c2
        return Polynomial._of(product)

    def __call__(self, values: Mapping[str, int]) -> int:
        """The value at ``values`` (every symbol of the polynomial must be given)."""
        return sum(c * math.prod(values[name] ** power for name, power in m) for c, m in self.terms)

    def __str__(self) -> str:
        def term(coefficient: int, monomial: Monomial) -> str:
            factors = [name if power == 1 else f"{name}^{power}" for name, power in monomial]
            return "*".join(([str(coefficient)] if coefficient != 1 or not factors else []) + factors)

        return " + ".join(term(c, m) for c, m in self.terms) or "0"


@dataclass(frozen=True)
class ModelCost:
    """Work and memory of a model as functions of the dimensions of a call's inputs.

    ``dimensions`` names the symbol of every free input dimension as
    ``(symbol, input name, axis)``; ``ops`` is the arithmetic of a call; ``tensors`` the
    element counts of every value the model computes (deduplicated).
    """

    dimensions: tuple[tuple[str, str, int], ...]
    ops: Polynomial
    tensors: tuple[Polynomial, ...]
    #: ``(ops, largest tensor)`` by input shapes seen recently: a model is mostly called at
    #: a few shapes, and the precompile and the runtime's time budget both ask.
    _seen: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def at(self, shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, int]:
        """``(ops, elements of the largest tensor)`` of a call whose inputs have ``shapes``."""
        key = tuple(shapes.items())
        known = self._seen.get(key)
        if known is None:
            values = self.symbol_values(shapes)
            known = (self.ops(values), self.largest_tensor(values))
            if len(self._seen) >= _SHAPES_REMEMBERED:
                self._seen.clear()
            self._seen[key] = known
        return known

    def symbol_values(self, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
        """Each symbol's value in a call whose inputs have ``shapes`` (the largest if repeated)."""
        values: dict[str, int] = {}
        for symbol, name, axis in self.dimensions:
            values[symbol] = max(values.get(symbol, 0), shapes[name][axis])
        return values

    def minimal_values(self) -> dict[str, int]:
        """Every symbol at 1: the smallest call with a row."""
        return {symbol: 1 for symbol, _, _ in self.dimensions}

    def gas(self, values: Mapping[str, int], rows: int) -> int:
        """Model gas of a call: ``GAS_MODEL_BASE x rows + ceil(ops(values) / MODEL_OPS_PER_GAS)``."""
        return gas_of(self.ops(values), rows)

    def largest_tensor(self, values: Mapping[str, int]) -> int:
        """Elements of the largest value the model computes at ``values``."""
        return max((size(values) for size in self.tensors), default=0)


def gas_of(ops: int, rows: int) -> int:
    """``GAS_MODEL_BASE x rows + ceil(ops / MODEL_OPS_PER_GAS)`` (spec §2)."""
    return GAS_MODEL_BASE * rows + -(-max(0, ops) // MODEL_OPS_PER_GAS)


def analyse_model(model: onnx.ModelProto) -> ModelCost:
    """The cost of ``model``; raises :class:`InvalidModel` when it is not bounded by input shapes."""
    _check_ops(model.graph)
    work = onnx.ModelProto()
    work.CopyFrom(model)
    dimensions = _name_input_dimensions(work.graph)
    _strip_declared_shapes(work.graph, keep_inputs=True)
    symbols = {symbol for symbol, _, _ in dimensions}
    derived: dict[str, Polynomial] = {}
    inferred = _infer_shapes(work)
    for _ in range(len(inferred.graph.node)):  # each pass resolves at least one Reshape
        if not _resolve_reshapes(inferred.graph, symbols, derived):
            break
        inferred = _infer_shapes(inferred)
    analysis = _Analysis(symbols, inferred.graph, derived)
    ops = analysis.graph_ops(inferred.graph)
    return ModelCost(dimensions, ops, tuple(sorted(set(analysis.tensors), key=str)))


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # onnx raises several unrelated types
        raise _unbounded(f"shape inference failed: {_first_line(exc)}") from exc


def _resolve_reshapes(graph: onnx.GraphProto, symbols: set[str], derived: dict[str, Polynomial]) -> bool:
    """Declare the output shape of each Reshape to a constant shape with a ``-1`` that onnx
    leaves unknown (it does no symbolic arithmetic: ``[n, 4] -> [-1, 2, 2]`` gives
    ``[?, 2, 2]``), so that shape inference carries it on. A ``-1`` that is not one input
    symbol gets a derived symbol (``(4*n)``) whose polynomial goes in ``derived``. The
    shapes inferred from unknown ones are cleared for the next pass. Returns whether any
    shape was declared."""
    values = {v.name: v for v in (*graph.input, *graph.value_info, *graph.output)}
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def known(dim) -> Polynomial | None:
        if dim.HasField("dim_value"):
            return Polynomial.constant(dim.dim_value)
        if dim.dim_param in symbols:
            return Polynomial.symbol(dim.dim_param)
        return derived.get(dim.dim_param)

    declared = set()
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) != 2 or _attribute(node, "allowzero", 0):
            continue
        out, source = values.get(node.output[0]), values.get(node.input[0])
        if out is None or source is None or node.input[1] not in constants:
            continue
        if all(known(d) is not None for d in out.type.tensor_type.shape.dim):
            continue
        dims = _reshaped_dims([known(d) for d in source.type.tensor_type.shape.dim],
                              [int(t) for t in constants[node.input[1]].reshape(-1)])
        if dims is None:
            continue
        shape = out.type.tensor_type.shape
        shape.ClearField("dim")
        for dim in dims:
            (value,) = dim.terms if dim.terms else ((0, ()),)
            if not value[1]:
                shape.dim.add().dim_value = value[0]
            elif dim == Polynomial.symbol(value[1][0][0]):
                shape.dim.add().dim_param = value[1][0][0]
            else:
                derived[f"({dim})"] = dim
                shape.dim.add().dim_param = f"({dim})"
        declared.add(out.name)
    if declared:  # what was inferred from the unknown shapes is inferred again
        kept = [v for v in graph.value_info if v.name in declared or _fully_known(v, known)]
        del graph.value_info[:]
        graph.value_info.extend(kept)
        for value in graph.output:
            if value.name not in declared and not _fully_known(value, known):
                value.type.tensor_type.ClearField("shape")
    return bool(declared)


def _fully_known(value: onnx.ValueInfoProto, known) -> bool:
    tensor = value.type.tensor_type
    return tensor.HasField("shape") and all(known(d) is not None for d in tensor.shape.dim)


def _reshaped_dims(source: list, target: list[int]) -> list[Polynomial] | None:
    """The dims of a Reshape of ``source`` to the constant ``target`` (``0`` copies, one
    ``-1`` takes the rest), or None when a dim is unknown or the rest is not one term."""
    if None in source or target.count(-1) != 1:
        return None
    dims = [source[i] if t == 0 and i < len(source) else t for i, t in enumerate(target)]
    dims = [Polynomial.constant(d) if isinstance(d, int) and d != -1 else d for d in dims]
    rest = _divide(_product(source), _product(d for d in dims if not isinstance(d, int)))
    return None if rest is None else [rest if isinstance(d, int) else d for d in dims]


def _divide(total: Polynomial, divisor: Polynomial) -> Polynomial | None:
    """``total / divisor`` when ``divisor`` is one term dividing every term of ``total`` exactly."""
    if len(divisor.terms) != 1:
        return None
    (coefficient, monomial), = divisor.terms
    quotient = {}
    for c, m in total.terms:
        powers = dict(m)
        for name, power in monomial:
            powers[name] = powers.get(name, 0) - power
        if c % coefficient or any(p < 0 for p in powers.values()):
            return None
        quotient[tuple(sorted((n, p) for n, p in powers.items() if p))] = c // coefficient
    return Polynomial._of(quotient)


def _name_input_dimensions(graph: onnx.GraphProto) -> tuple[tuple[str, str, int], ...]:
    """Symbols of the free input dimensions; unnamed ones are named ``input[axis]``."""
    initializers = {init.name for init in graph.initializer}
    dimensions = []
    for value in graph.input:
        if value.name in initializers:
            continue
        if value.type.WhichOneof("value") != "tensor_type":
            raise _unbounded(f"input {value.name!r} is not a tensor")
        if not value.type.tensor_type.HasField("shape"):
            raise _unbounded(f"input {value.name!r} has no declared rank")
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                continue
            if not dim.dim_param:
                dim.dim_param = f"{value.name}[{axis}]"
            dimensions.append((dim.dim_param, value.name, axis))
    return tuple(dimensions)


def _strip_declared_shapes(graph: onnx.GraphProto, keep_inputs: bool) -> None:
    del graph.value_info[:]
    for value in (*graph.output, *(() if keep_inputs else graph.input)):
        if value.type.WhichOneof("value") == "tensor_type":
            value.type.tensor_type.ClearField("shape")
    for node in graph.node:
        for subgraph in _subgraphs(node):
            _strip_declared_shapes(subgraph, keep_inputs=False)


def _check_ops(graph: onnx.GraphProto) -> None:
    """Refuse ops with no cost formula, before shape inference can trip on them."""
    for node in graph.node:
        known = (node.domain in DEFAULT_DOMAINS
                 or node.domain == ML_DOMAIN and (node.op_type in ML_ELEMENTWISE_OPS
                                                  or node.op_type in ML_WEIGHTED_OPS))
        if not known:
            raise _unbounded(f"op {node.domain}.{node.op_type} ({_label(node)}) has no known cost")
        if node.domain in DEFAULT_DOMAINS and node.op_type in UNBOUNDED_OPS:
            raise _unbounded(f"{_label(node)} is refused: {UNBOUNDED_OPS[node.op_type]}")
        for subgraph in _subgraphs(node):
            _check_ops(subgraph)


def _label(node: onnx.NodeProto) -> str:
    return f"{node.op_type} node {node.name or next(iter(node.output), '')!r}"


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attribute in node.attribute:
        if attribute.type == onnx.AttributeProto.GRAPH:
            yield attribute.g
        yield from attribute.graphs


class _Analysis:
    """Walks a shape-inferred graph (and its subgraphs), sizing every value and node."""

    def __init__(self, symbols: set[str], graph: onnx.GraphProto, derived: Mapping[str, Polynomial]) -> None:
        self.symbols = symbols
        #: Dimension names standing for a polynomial of the input symbols (a Reshape's -1).
        self.derived = derived
        self.sizes: dict[str, Polynomial] = {}
        self.shapes: dict[str, tuple[Polynomial, ...]] = {}
        #: Initializers and Constant outputs, read only for a Loop's trip count.
        self.constants: dict[str, onnx.TensorProto] = {}
        self.types: dict[str, onnx.TypeProto] = {}
        self.tensors: list[Polynomial] = []
        self._collect_types(graph)

    def _collect_types(self, graph: onnx.GraphProto) -> None:
        for value in (*graph.input, *graph.value_info, *graph.output):
            self.types[value.name] = value.type
        for init in graph.initializer:
            self.constants[init.name] = init
            self._set_shape(init.name, tuple(Polynomial.constant(d) for d in init.dims))
        for node in graph.node:
            for subgraph in _subgraphs(node):
                self._collect_types(subgraph)

    def graph_ops(self, graph: onnx.GraphProto, owner: str = "") -> Polynomial:
        for value in graph.input:
            if value.name not in self.sizes:
                what = f"{value.name!r} (input of the {graph.name!r} graph of {owner})" if owner else repr(value.name)
                self._set_shape(value.name, self._shape(value.name, what))
        total = Polynomial()
        for node in graph.node:
            total = total + self.node_ops(node)
        return total

    def node_ops(self, node: onnx.NodeProto) -> Polynomial:
        label = _label(node)
        if node.op_type == "Constant":
            self._record_constant(node)
        if node.op_type == "Loop":
            inner = self._loop_ops(node, label)
        elif node.op_type == "If":
            inner = sum((self.graph_ops(g, label) for g in _subgraphs(node)), Polynomial())
        else:
            inner = Polynomial()
        for name in node.output:
            if name:
                self._size_output(node, name, label)
        return inner + self._own_ops(node)

    def _loop_ops(self, node: onnx.NodeProto, label: str) -> Polynomial:
        trip_count = self.constants.get(node.input[0]) if node.input and node.input[0] else None
        if trip_count is None or math.prod(trip_count.dims) != 1 or trip_count.data_location == onnx.TensorProto.EXTERNAL:
            raise _unbounded(f"{label} is refused: its trip count is not a constant")
        body = next(_subgraphs(node))
        return self.graph_ops(body, label) * max(0, int(numpy_helper.to_array(trip_count).reshape(())))

    def _own_ops(self, node: onnx.NodeProto) -> Polynomial:
        op, size, shape = node.op_type, self.sizes, self.shapes
        inputs = [name for name in node.input if name]
        outputs = sum((size[name] for name in node.output if name), Polynomial())
        if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
            return outputs * shape[node.input[0]][-1] * 2
        if op == "Gemm":
            a = shape[node.input[0]]
            return outputs * (a[0] if _attribute(node, "transA", 0) else a[1]) * 2
        if op in ("Conv", "ConvInteger", "QLinearConv"):
            weights = shape[node.input[3 if op == "QLinearConv" else 1]]
            return outputs * _product(weights[1:]) * 2
        if op == "ConvTranspose":
            return size[node.input[0]] * _product(shape[node.input[1]][1:]) * 2
        if op in ("RNN", "GRU", "LSTM"):
            x = shape[node.input[0]]
            weights = size[node.input[1]] + size[node.input[2]]
            return x[0] * x[1] * weights * 2 + outputs
        if op in ("Gather", "GatherElements", "GatherND"):  # reads only what it gathers
            return outputs + size[node.input[1]]
        if op in ("MaxPool", "AveragePool", "LpPool"):
            return outputs * math.prod(_attribute(node, "kernel_shape", [1]))
        if op == "Det":
            return size[node.input[0]] * shape[node.input[0]][-1]
        if op == "Einsum":
            return self._einsum_ops(node) + outputs
        if op in ML_WEIGHTED_OPS:
            weights = max(len(_attribute(node, name, [])) for name in ML_WEIGHTED_OPS[op])
            return self._rows(node.input[0]) * max(1, weights) * 2 + outputs
        return sum((size[name] for name in inputs), outputs)

    def _einsum_ops(self, node: onnx.NodeProto) -> Polynomial:
        equation = _attribute(node, "equation", b"").decode().replace(" ", "")
        operands = equation.split("->")[0].split(",")
        if "..." in equation or len(operands) != len([n for n in node.input if n]):
            raise _unbounded(f"Einsum node {node.name!r}: equation {equation!r} is not supported")
        letters: dict[str, Polynomial] = {}
        for operand, name in zip(operands, node.input):
            for letter, dim in zip(operand, self.shapes[name]):
                letters.setdefault(letter, dim)
        return _product(letters.values()) * 2

    def _rows(self, name: str) -> Polynomial:
        """Rows of a 2-D (or 1-D) ML input: all its dimensions but a constant last one."""
        shape = self.shapes[name]
        features = shape[-1].terms if shape else ()
        is_constant = len(features) == 1 and not features[0][1]
        return _product(shape[:-1]) if is_constant and len(shape) > 1 else _product(shape)

    def _size_output(self, node: onnx.NodeProto, name: str, label: str) -> None:
        value_type = self.types.get(name)
        if node.op_type == "ZipMap" and (value_type is None or value_type.WhichOneof("value") != "tensor_type"):
            self.sizes[name] = self.sizes[node.input[0]]
        elif node.op_type in ML_WEIGHTED_OPS and not (value_type and value_type.tensor_type.HasField("shape")):
            self._set_shape(name, self._ml_output_shape(node, list(node.output).index(name), label))
        else:
            self._set_shape(name, self._shape(name, f"{name!r} (output of {label})"))
        self.tensors.append(self.sizes[name])

    def _ml_output_shape(self, node: onnx.NodeProto, index: int, label: str) -> tuple[Polynomial, ...]:
        """Shapes onnx does not infer for tree and SVM ops: ``[N]`` labels and ``[N, width]`` scores."""
        x = self.shapes[node.input[0]]
        if len(x) != 2:
            raise _unbounded(f"{label} takes a 2-D input [N, features]")
        if node.op_type.endswith("Classifier"):
            classes = _attribute(node, "classlabels_int64s", []) or _attribute(node, "classlabels_strings", [])
            width = max(len(classes), 2)  # a binary classifier may report both columns
            return (x[0],) if index == 0 else (x[0], Polynomial.constant(width))
        return (x[0], Polynomial.constant(_attribute(node, "n_targets", 1)))

    def _shape(self, name: str, what: str) -> tuple[Polynomial, ...]:
        value_type = self.types.get(name)
        if value_type is None or value_type.WhichOneof("value") != "tensor_type":
            raise _unbounded(f"{what} is not a tensor of known shape")
        tensor = value_type.tensor_type
        unknown = _unbounded(f"shape inference cannot express the shape of {what} in the input shapes "
                             "(it may depend on input values)")
        if not tensor.HasField("shape"):
            raise unknown
        dims = []
        for dim in tensor.shape.dim:
            if dim.HasField("dim_value"):
                dims.append(Polynomial.constant(dim.dim_value))
            elif dim.dim_param in self.symbols:
                dims.append(Polynomial.symbol(dim.dim_param))
            elif dim.dim_param in self.derived:
                dims.append(self.derived[dim.dim_param])
            else:
                raise unknown
        return tuple(dims)

    def _set_shape(self, name: str, shape: tuple[Polynomial, ...]) -> None:
        self.shapes[name] = shape
        self.sizes[name] = _product(shape)

    def _record_constant(self, node: onnx.NodeProto) -> None:
        for attribute in node.attribute:
            if attribute.name == "value":
                self.constants[node.output[0]] = attribute.t
            elif attribute.name in ("value_int", "value_ints"):
                value = np.array(onnx.helper.get_attribute_value(attribute), dtype=np.int64)
                self.constants[node.output[0]] = numpy_helper.from_array(value)


def _product(factors: Iterable[Polynomial]) -> Polynomial:
    result = Polynomial.constant(1)
    for factor in factors:
        result = result * factor
    return result


def _attribute(node: onnx.NodeProto, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _unbounded(reason: str) -> InvalidModel:
    return InvalidModel(f"model cost is not bounded by its input shapes: {reason}")


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return (text or type(exc).__name__)[:200]
