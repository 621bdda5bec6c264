"""Hypothesis strategies for the OGInference types, and exact helpers to check them.

The generic strategies (:func:`numbers`, :func:`number_tensors`, :func:`model_inputs`,
:func:`inference_requests`, :func:`model_outputs`) draw any ABI-valid value, useful for
codec round trips. :func:`arrays_for` and :func:`valid_input_for` draw inputs a given
model accepts, encoded as Numbers that are *exactly* the drawn float32 / int / bool
values, so the model sees the drawn array bit for bit.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

import numpy as np
from hypothesis import strategies as st

from ogevm.abi.types import (
    InferenceMode,
    JsonScalar,
    ModelInferenceRequest,
    ModelInput,
    ModelOutput,
    Number,
    NumberTensor,
    StringTensor,
)
from ogevm.models.cid import compute_cid
from ogevm.models.store import ModelInfo, TensorSpec
from ogevm.tensors import INT128_MAX, INT128_MIN, NUMERIC_DTYPES, STRING_DTYPE

__all__ = [
    "arrays_for",
    "exact_number",
    "inference_requests",
    "input_from_arrays",
    "model_inputs",
    "model_outputs",
    "nearest_float",
    "number_tensors",
    "number_value",
    "numbers",
    "string_tensors",
    "valid_input_for",
]

#: Labels the ``string_input`` fixture model knows; drawn often next to random text.
_KNOWN_LABELS = ("buy", "hold", "sell")
#: Smallest non-zero magnitude :func:`arrays_for` draws for floats, so exact Numbers fit int128.
_FLOAT_TINY = 2.0**-20
_FLOAT_LIMIT = 1e6


def _strategy(value: Any, default: st.SearchStrategy) -> st.SearchStrategy:
    if value is None:
        return default
    if isinstance(value, st.SearchStrategy):
        return value
    return st.just(value)


# --- exact helpers ----------------------------------------------------------------------
def number_value(number: Number) -> Fraction:
    """The exact rational value ``value * 10**-decimals`` of a Number."""
    value, decimals = number
    return Fraction(value) * Fraction(10) ** -decimals


def exact_number(x: Any) -> Number:
    """The Number whose value is exactly ``x`` (an int, bool or finite float).

    Floats are dyadic, so ``m / 2**k`` is written ``m * 5**k / 10**k``; trailing zeros
    are removed. Raises ValueError if the result does not fit int128.
    """
    if isinstance(x, (bool, np.bool_, int, np.integer)):
        value, decimals = int(x), 0
    else:
        numerator, denominator = float(x).as_integer_ratio()
        k = denominator.bit_length() - 1  # denominator is 2**k
        value, decimals = numerator * 5**k, k
        while decimals > 0 and value % 10 == 0:
            value, decimals = value // 10, decimals - 1
    if not INT128_MIN <= value <= INT128_MAX:
        raise ValueError(f"{x!r} has no exact Number in int128")
    return Number(value, decimals)


def nearest_float(exact: Fraction, dtype: Any = np.float32) -> np.floating:
    """Reference rounding: the ``dtype`` float nearest to ``exact``, ties to even.

    Computed with integers only (no float arithmetic). Raises OverflowError when the
    result would be infinite.
    """
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    scalar = dtype.type
    if exact == 0:
        return scalar(0.0)
    sign = -1 if exact < 0 else 1
    a = abs(Fraction(exact))
    mantissa_bits = info.nmant + 1  # with the implicit bit
    # exponent e with 2**e <= a < 2**(e+1)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    quantum = Fraction(2) ** (max(e, int(info.minexp)) - mantissa_bits + 1)
    scaled = a / quantum
    m = scaled.numerator // scaled.denominator
    rest = scaled - m
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and m % 2 == 1):
        m += 1
    result = m * quantum
    if result > Fraction(float(info.max)):
        raise OverflowError(f"{exact} overflows {dtype}")
    return scalar(sign * float(result))  # exact: result is representable in dtype


# --- generic values of the ABI types ----------------------------------------------------
def numbers(min_decimals: int = -10, max_decimals: int = 30) -> st.SearchStrategy[Number]:
    """Any ``Number``: an int128 value and decimals in ``[min_decimals, max_decimals]``."""
    return st.builds(
        Number,
        st.one_of(st.integers(-(10**6), 10**6), st.integers(INT128_MIN, INT128_MAX)),
        st.integers(min_decimals, max_decimals),
    )


def _names() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["x", "a", "b", "text", "input"]), st.text(max_size=12))


def _shapes(max_rank: int = 3, max_dim: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(st.integers(0, max_dim), max_size=max_rank).map(tuple)


@st.composite
def number_tensors(draw, name=None, shape=None, elements=None) -> NumberTensor:
    """A ``NumberTensor`` with as many values as ``shape`` needs.

    ``name`` and ``shape`` are values or strategies (default: short names, rank <= 3,
    dims <= 4); ``elements`` is a Number strategy (default :func:`numbers`).
    """
    tensor_name = draw(_strategy(name, _names()))
    tensor_shape = tuple(draw(_strategy(shape, _shapes())))
    count = math.prod(tensor_shape)
    values = draw(st.lists(_strategy(elements, numbers()), min_size=count, max_size=count))
    return NumberTensor(tensor_name, tuple(values), tensor_shape)


@st.composite
def string_tensors(draw, name=None, max_size: int = 6) -> StringTensor:
    """A ``StringTensor`` of up to ``max_size`` arbitrary (UTF-8 encodable) strings."""
    tensor_name = draw(_strategy(name, _names()))
    values = draw(st.lists(st.text(max_size=10), max_size=max_size))
    return StringTensor(tensor_name, tuple(values))


def model_inputs(max_tensors: int = 3) -> st.SearchStrategy[ModelInput]:
    """A ``ModelInput`` with up to ``max_tensors`` number and string tensors each."""
    return st.builds(
        ModelInput,
        st.lists(number_tensors(), max_size=max_tensors).map(tuple),
        st.lists(string_tensors(), max_size=max_tensors).map(tuple),
    )


def _cids() -> st.SearchStrategy[str]:
    return st.one_of(st.binary(max_size=32).map(compute_cid), st.text(max_size=20))


def inference_requests(model_cid=None, mode=None, model_input=None) -> st.SearchStrategy[ModelInferenceRequest]:
    """A ``ModelInferenceRequest``; each argument is a fixed value or a strategy."""
    return st.builds(
        ModelInferenceRequest,
        _strategy(mode, st.sampled_from(InferenceMode)),
        _strategy(model_cid, _cids()),
        _strategy(model_input, model_inputs()),
    )


def _json_texts() -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.text(max_size=8),
        st.floats(allow_nan=False, allow_infinity=False),
    )
    values = st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
        max_leaves=8,
    )
    return values.map(lambda v: json.dumps(v, separators=(",", ":")))


def model_outputs(max_tensors: int = 3) -> st.SearchStrategy[ModelOutput]:
    """A ``ModelOutput`` with number, string and JSON entries and either simulation flag."""
    return st.builds(
        ModelOutput,
        st.lists(number_tensors(), max_size=max_tensors).map(tuple),
        st.lists(string_tensors(), max_size=max_tensors).map(tuple),
        st.lists(st.builds(JsonScalar, _names(), _json_texts()), max_size=max_tensors).map(tuple),
        st.booleans(),
    )


# --- valid inputs of a model --------------------------------------------------------------
def _concrete_shape(spec: TensorSpec, batch: int) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else batch for d in spec.shape)


def _float_elements(dtype: np.dtype) -> st.SearchStrategy[float]:
    """Finite values of a float ``dtype`` whose exact decimal fits in an int128 Number."""
    limit = min(_FLOAT_LIMIT, float(np.finfo(dtype).max))
    base = st.floats(
        min_value=-limit, max_value=limit, width=8 * dtype.itemsize, allow_subnormal=False,
    )
    return base.map(lambda x: 0.0 if abs(x) < _FLOAT_TINY else x)


def _elements(dtype: np.dtype) -> st.SearchStrategy:
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return st.integers(max(int(info.min), -(2**40)), min(int(info.max), 2**40))
    return _float_elements(dtype)


@st.composite
def arrays_for(draw, spec: TensorSpec, batch=None) -> np.ndarray:
    """A numpy array a model input of ``spec`` accepts.

    Symbolic dimensions take ``batch`` (a value or strategy; default 1..4). Numeric
    arrays have the spec's dtype, string inputs give an object array of str.
    """
    size = draw(_strategy(batch, st.integers(1, 4)))
    shape = _concrete_shape(spec, size)
    count = math.prod(shape)
    if spec.type == STRING_DTYPE:
        text = st.one_of(st.sampled_from(_KNOWN_LABELS), st.text(alphabet=st.characters(
            min_codepoint=1, exclude_categories=("Cs",)), max_size=8))
        values = draw(st.lists(text, min_size=count, max_size=count))
        return np.array(values, dtype=object).reshape(shape)
    dtype = NUMERIC_DTYPES[spec.type]
    values = draw(st.lists(_elements(dtype), min_size=count, max_size=count))
    return np.array(values, dtype=dtype).reshape(shape)


def input_from_arrays(info: ModelInfo, arrays: dict[str, np.ndarray]) -> ModelInput:
    """The ``ModelInput`` carrying ``arrays`` (by input name) exactly, in ``info``'s order."""
    numbers_, strings = [], []
    for spec in info.inputs:
        array = arrays[spec.name]
        if spec.type == STRING_DTYPE:
            strings.append(StringTensor(spec.name, tuple(str(s) for s in array.reshape(-1))))
        else:
            values = tuple(exact_number(x) for x in array.reshape(-1).tolist())
            numbers_.append(NumberTensor(spec.name, values, tuple(array.shape)))
    return ModelInput(tuple(numbers_), tuple(strings))


@st.composite
def valid_input_for(draw, info: ModelInfo, batch=None) -> ModelInput:
    """A ``ModelInput`` ``info``'s model accepts: one shared batch size (default 1..4)
    for every symbolic dimension, and Numbers exactly equal to the drawn values."""
    size = draw(_strategy(batch, st.integers(1, 4)))
    arrays = {spec.name: draw(arrays_for(spec, batch=size)) for spec in info.inputs}
    return input_from_arrays(info, arrays)

