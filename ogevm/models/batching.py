"""Which models may run several requests' rows in one onnxruntime call, and at which sizes.

A committed output must be, byte for byte, what the request gives when it runs alone (what
``eth_call`` and INLINE compute). Stacking requests is allowed only when two checks pass:

1. :func:`row_mixing`, a static analysis of the ONNX graph: every tensor either carries the
   batch axis at axis 0, each row computed from the same row of the inputs only, or is
   batch-free (initializers, constants). Only operators on an allow-list, used in a way that
   keeps axis 0 apart, pass; anything else (``Shape``, reductions over axis 0, control flow,
   unknown operators, models without inputs) makes the model unbatchable. This depends on
   the bytes alone, so every node agrees on it: it is the catalogue's ``batchable``.
2. :func:`verified_batch_sizes`, a bit-identity check: the same rows run alone and stacked at
   each size of :data:`BATCH_BUCKETS`. Mathematically independent rows can still differ in
   their last bits, because onnxruntime picks a kernel path (vectorised main loop, scalar
   tail, blocking of a matrix product) from the *shapes* it is given: ``log`` of the same
   value gives different bits at row 0 of 4 than alone (a vector loop versus its scalar
   tail). The path is chosen by the shape and the position, not by the values, so a shape
   whose every position reproduced the alone bytes for many varied values runs the same
   code as the row alone. The executor therefore only runs verified shapes: it pads a
   stack to the next verified size. The sizes are a measurement of this machine's
   onnxruntime, so they are never part of consensus.
"""

from __future__ import annotations

import math
import struct
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from ogevm.tensors import NUMERIC_DTYPES, STRING_DTYPE

#: The stack sizes the bit-identity check tries, smallest first.
BATCH_BUCKETS = (2, 4, 8, 16, 32, 64)
#: Rows the bit-identity check runs alone, then stacked at each size.
CHECK_ROWS = 256
#: Time the check may spend on one model; bigger sizes are skipped once a run would exceed it.
CHECK_BUDGET_SECONDS = 0.5

_ML_DOMAIN = "ai.onnx.ml"


class _Mixes(Exception):
    """A construct through which one row of a stack could affect another."""


def row_mixing(model: onnx.ModelProto) -> str | None:
    """Why one request's rows could change another's in a stacked run; None if they cannot.

    The reason names the first input, node or output that fails the analysis.
    """
    try:
        _RowAnalysis(model).run()
    except _Mixes as exc:
        return str(exc)
    return None


# Operators and how each keeps rows apart (see the rules in _RowAnalysis).
_UNARY = frozenset({
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "BitwiseNot", "Cast", "CastLike",
    "Ceil", "Celu", "Clip", "Cos", "Cosh", "Elu", "Erf", "Exp", "Floor", "Gelu", "HardSigmoid",
    "HardSwish", "Identity", "IsInf", "IsNaN", "LeakyRelu", "Log", "Mish", "Neg", "Not",
    "Reciprocal", "Relu", "Round", "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh",
    "Softplus", "Softsign", "Sqrt", "Tan", "Tanh", "ThresholdedRelu",
    # per sample, over its own channels and spatial axes
    "AveragePool", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "LpPool", "LRN",
    "MaxPool", "Conv", "ConvTranspose", "InstanceNormalization", "BatchNormalization",
})
_BROADCASTING = frozenset({
    "Add", "And", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Div", "Equal", "Greater",
    "GreaterOrEqual", "Less", "LessOrEqual", "Max", "Mean", "Min", "Mod", "Mul", "Or", "Pow",
    "PRelu", "Sub", "Sum", "Where", "Xor",
})
_REDUCE = frozenset({
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
})
_ML_UNARY = frozenset({"Binarizer", "CategoryMapper", "LabelEncoder", "OneHotEncoder"})
_ML_ROWS = frozenset({
    "FeatureVectorizer", "Imputer", "LinearClassifier", "LinearRegressor", "Normalizer", "Scaler",
    "SVMClassifier", "SVMRegressor", "TreeEnsemble", "TreeEnsembleClassifier",
    "TreeEnsembleRegressor", "ZipMap",
})
#: Operators whose output is not a function of their inputs.
_RANDOM = frozenset({"Bernoulli", "Dropout", "Multinomial", "RandomNormal", "RandomNormalLike",
                     "RandomUniform", "RandomUniformLike"})


class _RowAnalysis:
    """Abstract interpretation of the graph: each tensor is batched (axis 0 is the batch,
    row i computed from input row i only) or batch-free; a node that cannot keep that
    invariant raises :class:`_Mixes`."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        graph = model.graph
        self.consts = {t.name: t for t in graph.initializer}
        self.batched: set[str] = set()
        self.shapes = self._shapes()

    def run(self) -> None:
        self._inputs()
        for node in self.model.graph.node:
            self._node(node)
        for output in self.model.graph.output:
            if output.name not in self.batched:
                raise _Mixes(f"output {output.name!r} does not carry the batch axis at axis 0")

    # -- the graph's inputs and shapes

    def _inputs(self) -> None:
        inputs = [i for i in self.model.graph.input if i.name not in self.consts]
        if not inputs:
            raise _Mixes("the model has no inputs: nothing to stack")
        symbols = set()
        for value in inputs:
            if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
                raise _Mixes(f"input {value.name!r} is not a tensor of known rank")
            dims = value.type.tensor_type.shape.dim
            if not dims or not dims[0].dim_param:
                raise _Mixes(f"input {value.name!r} has no symbolic leading dimension")
            if any(d.dim_param == dims[0].dim_param for d in dims[1:]):
                raise _Mixes(f"input {value.name!r} uses its batch symbol beyond axis 0")
            symbols.add(dims[0].dim_param)
            self.batched.add(value.name)
        if len(symbols) > 1:
            raise _Mixes(f"inputs have different leading dimensions ({', '.join(sorted(symbols))})")

    def _shapes(self) -> dict[str, tuple[int | None, ...]]:
        """Shapes by ONNX shape inference, from the nodes alone: declared intermediate shapes
        are dropped first so a model cannot claim ranks its nodes do not produce."""
        bare = onnx.ModelProto()
        bare.CopyFrom(self.model)
        del bare.graph.value_info[:]
        for output in bare.graph.output:
            if output.type.HasField("tensor_type"):
                output.type.tensor_type.ClearField("shape")
        try:
            inferred = shape_inference.infer_shapes(bare).graph
        except Exception:  # the inference raises several unrelated types
            inferred = bare.graph
        shapes = {t.name: tuple(t.dims) for t in self.consts.values()}
        for value in [*inferred.input, *inferred.value_info, *inferred.output]:
            tensor_type = value.type.tensor_type
            if value.type.HasField("tensor_type") and tensor_type.HasField("shape"):
                shapes.setdefault(value.name, tuple(
                    d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim))
        return shapes

    def rank(self, name: str) -> int:
        if name not in self.shapes:
            raise _Mixes(f"the rank of {name!r} is unknown")
        return len(self.shapes[name])

    def constant(self, node: onnx.NodeProto, name: str) -> np.ndarray:
        if name in self.consts:
            return numpy_helper.to_array(self.consts[name])
        raise _Mixes(f"{_describe(node)}: {name!r} is not a constant")

    # -- nodes

    def _node(self, node: onnx.NodeProto) -> None:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise _Mixes(f"{_describe(node)}: control flow (a subgraph may read any tensor)")
        if node.op_type in _RANDOM:
            raise _Mixes(f"{_describe(node)}: the output is not a function of the inputs")
        batched = [name for name in node.input if name in self.batched]
        if not batched:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self._constant(node)
            return  # batch-free: the same in every run
        rule = self._rule(node)
        if rule is None:
            raise _Mixes(f"{_describe(node)}: operator not on the row-independent list")
        rule(node, batched)
        self.batched.update(name for name in node.output if name)

    def _constant(self, node: onnx.NodeProto) -> None:
        attribute = node.attribute[0] if len(node.attribute) == 1 else None
        if attribute is not None and attribute.name == "value":
            self.consts[node.output[0]] = attribute.t
        elif attribute is not None and attribute.name in ("value_int", "value_ints"):
            value = helper.get_attribute_value(attribute)
            self.consts[node.output[0]] = numpy_helper.from_array(np.asarray(value, np.int64))

    def _rule(self, node: onnx.NodeProto) -> Callable[[onnx.NodeProto, list[str]], None] | None:
        op = node.op_type
        if node.domain == _ML_DOMAIN:
            if op in _ML_UNARY:
                return self._unary
            if op in _ML_ROWS:
                return self._ml_rows
            if op == "ArrayFeatureExtractor":
                return self._array_feature_extractor
            return None
        if node.domain not in ("", "ai.onnx"):
            return None
        if op in _UNARY:
            return self._unary
        if op in _BROADCASTING:
            return self._broadcasting
        if op in _REDUCE:
            return self._reduce
        return {
            "ArgMax": self._arg, "ArgMin": self._arg, "Concat": self._concat, "Flatten": self._flatten,
            "Gather": self._gather, "Gemm": self._gemm, "Hardmax": self._softmax,
            "LayerNormalization": self._layer_norm, "LogSoftmax": self._softmax, "MatMul": self._matmul,
            "Reshape": self._reshape, "Slice": self._slice, "Softmax": self._softmax, "Split": self._split,
            "Squeeze": self._squeeze, "Transpose": self._transpose, "Unsqueeze": self._unsqueeze,
        }.get(op)

    def _only_first_batched(self, node: onnx.NodeProto, batched: list[str]) -> None:
        if batched != [node.input[0]]:
            raise _Mixes(f"{_describe(node)}: only its first input may carry the batch axis")

    def _all_batched(self, node: onnx.NodeProto, batched: list[str]) -> None:
        if len(batched) != len([name for name in node.input if name]):
            raise _Mixes(f"{_describe(node)}: a batch-free input has no rows to pair")

    def _unary(self, node, batched) -> None:
        """Per element or per sample: parameters (weights, bounds) must be batch-free."""
        self._only_first_batched(node, batched)
        if len([name for name in node.output if name]) > 1 or _attr(node, "training_mode", 0):
            # MaxPool's indices count across the whole batch; BatchNormalization's extra
            # outputs and training mode are statistics of the batch
            raise _Mixes(f"{_describe(node)}: computes over the whole batch")

    def _broadcasting(self, node, batched) -> None:
        """Batched operands span every output axis; batch-free ones must not reach axis 0
        with more than one entry (else row i meets entry i of a constant)."""
        ranks = {name: self.rank(name) for name in node.input if name}
        out_rank = max(ranks.values())
        for name, rank in ranks.items():
            if name in self.batched and rank != out_rank:
                raise _Mixes(f"{_describe(node)}: broadcasting moves the batch axis of {name!r}")
            if name not in self.batched and rank == out_rank and self.shapes[name][0] != 1:
                raise _Mixes(f"{_describe(node)}: batch-free {name!r} spans axis 0")

    def _matmul(self, node, batched) -> None:
        """Rows of A (rank 2) times a batch-free B; or matrix stacks paired sample by sample."""
        a, b = node.input[0], node.input[1]
        rank_a, rank_b = self.rank(a), self.rank(b)
        if rank_a == 2 and a in self.batched and b not in self.batched and rank_b <= 2:
            return
        out_rank = max(rank_a, rank_b)
        for name, rank in ((a, rank_a), (b, rank_b)):
            if name in self.batched and (rank != out_rank or rank < 3):
                raise _Mixes(f"{_describe(node)}: the batch axis of {name!r} is contracted or moved")
            if name not in self.batched and rank == out_rank and self.shapes[name][0] != 1:
                raise _Mixes(f"{_describe(node)}: batch-free {name!r} spans axis 0")

    def _gemm(self, node, batched) -> None:
        self._only_first_batched(node, batched)
        if _attr(node, "transA", 0):
            raise _Mixes(f"{_describe(node)}: transA contracts over the batch axis")
        if len(node.input) > 2 and node.input[2]:
            bias = node.input[2]
            if self.rank(bias) == 2 and self.shapes[bias][0] != 1:
                raise _Mixes(f"{_describe(node)}: bias {bias!r} spans axis 0")

    def _softmax(self, node, batched) -> None:
        default = 1 if self.opset < 13 else -1
        self._axis_not_0(node, _attr(node, "axis", default), self.rank(node.input[0]))

    def _arg(self, node, batched) -> None:
        self._axis_not_0(node, _attr(node, "axis", 0), self.rank(node.input[0]))

    def _layer_norm(self, node, batched) -> None:
        self._only_first_batched(node, batched)
        self._axis_not_0(node, _attr(node, "axis", -1), self.rank(node.input[0]))

    def _reduce(self, node, batched) -> None:
        self._only_first_batched(node, batched)
        axes = self._axes(node)
        if axes is None or len(axes) == 0:
            if axes is not None and _attr(node, "noop_with_empty_axes", 0):
                return
            raise _Mixes(f"{_describe(node)}: reduces over every axis, the batch axis included")
        self._axes_not_0(node, axes, self.rank(node.input[0]))

    def _squeeze(self, node, batched) -> None:
        self._only_first_batched(node, batched)
        axes = self._axes(node)
        if axes is None:
            raise _Mixes(f"{_describe(node)}: without axes it squeezes a batch of one")
        self._axes_not_0(node, axes, self.rank(node.input[0]))

    def _unsqueeze(self, node, batched) -> None:
        self._only_first_batched(node, batched)
        axes = self._axes(node)
        if axes is None:
            raise _Mixes(f"{_describe(node)}: axes are not constant")
        self._axes_not_0(node, axes, self.rank(node.input[0]) + len(axes))

    def _slice(self, node, batched) -> None:
        self._only_first_batched(node, batched)
        axes = self._axes(node, index=3)
        if axes is None:
            raise _Mixes(f"{_describe(node)}: without axes it slices axis 0")
        self._axes_not_0(node, axes, self.rank(node.input[0]))

    def _split(self, node, batched) -> None:
        self._only_first_batched(node, batched)
        self._axis_not_0(node, _attr(node, "axis", 0), self.rank(node.input[0]))

    def _concat(self, node, batched) -> None:
        self._all_batched(node, batched)
        self._axis_not_0(node, _attr(node, "axis", 0), self.rank(node.input[0]))

    def _gather(self, node, batched) -> None:
        data, indices = node.input[0], node.input[1]
        axis = _attr(node, "axis", 0)
        if data in self.batched and indices not in self.batched:
            self._axis_not_0(node, axis, self.rank(data))
        elif data not in self.batched and self.rank(indices) >= 1 and axis in (0, -self.rank(data)):
            return  # row i looks up its own indices in a constant table
        else:
            raise _Mixes(f"{_describe(node)}: gathers across the batch axis")

    def _transpose(self, node, batched) -> None:
        rank = self.rank(node.input[0])
        perm = _attr(node, "perm", list(range(rank - 1, -1, -1)))
        if perm[0] != 0:
            raise _Mixes(f"{_describe(node)}: moves the batch axis")

    def _flatten(self, node, batched) -> None:
        rank = self.rank(node.input[0])
        axis = _attr(node, "axis", 1)
        if (axis + rank if axis < 0 else axis) != 1:
            raise _Mixes(f"{_describe(node)}: axis other than 1 merges the batch axis with others")

    def _reshape(self, node, batched) -> None:
        """Axis 0 kept as is (0, without allowzero), or -1 with the per-row size unchanged."""
        self._only_first_batched(node, batched)
        shape = [int(d) for d in self.constant(node, node.input[1]).reshape(-1)]
        if shape and shape[0] == 0 and not _attr(node, "allowzero", 0):
            return
        self.rank(node.input[0])
        per_row = self.shapes[node.input[0]][1:]
        if (shape and shape[0] == -1 and all(d > 0 for d in shape[1:])
                and None not in per_row and math.prod(shape[1:]) == math.prod(per_row)):
            return
        raise _Mixes(f"{_describe(node)}: the new shape {shape} does not keep the batch axis")

    def _ml_rows(self, node, batched) -> None:
        """ai.onnx.ml operators that map each row of an [N, C] input to one output row."""
        self._all_batched(node, batched)
        for name in batched:
            if self.rank(name) != 2:
                raise _Mixes(f"{_describe(node)}: input {name!r} is not [N, C]: one sample, not rows")

    def _array_feature_extractor(self, node, batched) -> None:
        self._only_first_batched(node, batched)
        if self.rank(node.input[0]) < 2:
            raise _Mixes(f"{_describe(node)}: it selects along the last axis, here the batch axis")

    # -- axes

    def _axes(self, node: onnx.NodeProto, index: int = 1) -> list[int] | None:
        """The node's axes: its attribute, or its constant input ``index``; None if absent."""
        attribute = next((a for a in node.attribute if a.name == "axes"), None)
        if attribute is not None:
            return list(helper.get_attribute_value(attribute))
        if len(node.input) > index and node.input[index]:
            return [int(a) for a in self.constant(node, node.input[index]).reshape(-1)]
        return None

    def _axis_not_0(self, node: onnx.NodeProto, axis: int, rank: int) -> None:
        self._axes_not_0(node, [axis], rank)

    def _axes_not_0(self, node: onnx.NodeProto, axes: Sequence[int], rank: int) -> None:
        if any(axis == 0 or axis == -rank for axis in axes):
            raise _Mixes(f"{_describe(node)}: works across axis 0, the batch axis")


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    attribute = next((a for a in node.attribute if a.name == name), None)
    return default if attribute is None else helper.get_attribute_value(attribute)


def _describe(node: onnx.NodeProto) -> str:
    return f"node {node.name or node.output[0]!r} ({node.op_type})"


# -- the bit-identity check

def verified_batch_sizes(run: Callable[[dict[str, np.ndarray]], list], inputs: Sequence,
                         buckets: Sequence[int] = BATCH_BUCKETS, rows: int = CHECK_ROWS,
                         budget: float = CHECK_BUDGET_SECONDS, seed: int = 0xF4) -> tuple[int, ...]:
    """The sizes of ``buckets`` at which stacked runs gave every row the bytes it got alone.

    ``run`` runs the model on feeds; ``inputs`` are its input specs (``TensorSpec``). The
    check runs ``rows`` seeded random rows of varied magnitude (zeros, signs, denormals and
    huge values among them) alone, then, for each size, stacked ``size`` at a time, so every
    position of the stack meets ``rows / size`` different values: a vectorised kernel and
    its scalar tail often agree on most values and differ on a few. Sizes stop at the first
    one that differs or fails, and when the check would take longer than ``budget`` seconds
    (a heavy model, which gains little from stacking, is then not stacked at all). Models
    whose per-sample shape is not fixed are never stacked: their kernel paths could not be
    checked for every shape.
    """
    if not inputs or any(spec.type not in NUMERIC_DTYPES and spec.type != STRING_DTYPE
                         or not all(isinstance(d, int) for d in spec.shape[1:]) for spec in inputs):
        return ()
    rng = np.random.default_rng(seed)
    pool = {spec.name: _random_rows(rng, spec, rows) for spec in inputs}
    deadline = time.perf_counter() + budget
    row_seconds = math.inf
    alone = []
    verified = []
    try:
        run({name: values[:1] for name, values in pool.items()})  # warm-up, not timed
        for row in range(rows):
            tick = time.perf_counter()
            alone.append(run({name: values[row:row + 1] for name, values in pool.items()}))
            row_seconds = min(row_seconds, time.perf_counter() - tick)
            if time.perf_counter() + (rows - row) * row_seconds > deadline:
                return ()
        for size in sorted(buckets):
            if size > rows or time.perf_counter() + rows * row_seconds > deadline:
                break
            for start in range(0, rows - size + 1, size):
                stacked = run({name: values[start:start + size] for name, values in pool.items()})
                if not all(_same_bytes([value[i:i + 1] for value in stacked], alone[start + i])
                           for i in range(size)):
                    return tuple(verified)
            verified.append(size)
    except Exception:  # a model that fails on the check's values cannot be verified
        pass
    return tuple(verified)


_measured: dict[str, tuple[int, ...]] = {}


def measured_batch_sizes(cid: str, run: Callable[[dict[str, np.ndarray]], list],
                         inputs: Sequence) -> tuple[int, ...]:
    """:func:`verified_batch_sizes` of the model ``cid``, measured once per process: the
    same bytes on the same onnxruntime give the same answer, and stores are made often."""
    if cid not in _measured:
        _measured[cid] = verified_batch_sizes(run, inputs)
    return _measured[cid]


def _random_rows(rng: np.random.Generator, spec, count: int) -> np.ndarray:
    shape = (count, *spec.shape[1:])
    if spec.type == STRING_DTYPE:
        return rng.choice(np.array(["", "a", "buy", "hold", "sell", "ogevm"], dtype=object), shape)
    dtype = NUMERIC_DTYPES[spec.type]
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(0 if dtype.kind == "u" else -2, 3, shape).astype(dtype)
    values = rng.standard_normal(shape) * 10.0 ** rng.uniform(-4, 4, shape)
    special = np.array([0.0, -0.0, 1.0, -1.0, 1e-40, -1e-40, 3e38, 0.5])
    mask = rng.random(shape) < 0.15
    values[mask] = rng.choice(special, int(mask.sum()))
    with np.errstate(over="ignore"):  # beyond a narrow float's range (float16): an infinity, a row like any other
        return values.astype(dtype)


def _same_bytes(a: Any, b: Any) -> bool:
    """Equality down to the bits of every number. NaNs are equal whatever their payload:
    any NaN output is the same error result, so its bits never reach a commitment."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype == object:
            return a.tolist() == b.tolist()
        if a.dtype.kind == "f":
            nan = np.isnan(a)
            return bool((nan == np.isnan(b)).all()) and a[~nan].tobytes() == b[~nan].tobytes()
        return a.tobytes() == b.tobytes()
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same_bytes(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_bytes(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


# -- planning stacks

def stackable_rows(batch_sizes: Sequence[int], rows: int | None) -> bool:
    """A request of ``rows`` rows may join a stack: its run alone has a verified shape too
    (one row, or a verified size), so its rows alone are the rows it gets in any stack."""
    return rows == 1 or rows in batch_sizes


def padded_size(batch_sizes: Sequence[int], rows: int) -> int | None:
    """The smallest verified size that holds ``rows`` rows (None if none does)."""
    return min((size for size in batch_sizes if size >= rows), default=None)


def feed_rows(feeds: Mapping[str, np.ndarray]) -> int | None:
    """The rows of a request: the leading size its inputs share. None when they differ (one
    input broadcast over another's rows) or there is no input: such a request never stacks."""
    rows = {len(array) for array in feeds.values()}
    return rows.pop() if len(rows) == 1 else None
