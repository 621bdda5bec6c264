"""Exact conversion between ``Number(value, decimals)`` tensors and numpy arrays.

Inputs: each Number is the exact decimal ``value * 10**-decimals``; it is rounded once,
to nearest-even, into the model's dtype (float32 included: no double rounding through
float64), and integer or bool inputs must hold integral / 0-1 values exactly.

Outputs: each element becomes the *shortest* decimal that reads back as the same value
in the dtype the model produced (float32 values use float32's shortest form), written as
``(value, max(0, -exponent))`` so integers keep ``decimals = 0``.
"""

from __future__ import annotations

import functools
import math
from decimal import Context, Decimal
from fractions import Fraction

import numpy as np

from ogevm.abi.types import ModelInput, Number, NumberTensor, StringTensor
from ogevm.constants import MAX_ABS_DECIMALS, MAX_TENSOR_ELEMENTS, MAX_TENSOR_RANK
from ogevm.errors import InvalidInput, InvalidOutput

INT128_MIN = -(2**127)
INT128_MAX = 2**127 - 1

#: Numeric dtypes an input may have, by the ONNX type name onnxruntime reports.
NUMERIC_DTYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(double)": np.dtype(np.float64),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(uint16)": np.dtype(np.uint16),
    "tensor(uint32)": np.dtype(np.uint32),
    "tensor(uint64)": np.dtype(np.uint64),
    "tensor(bool)": np.dtype(np.bool_),
}
STRING_DTYPE = "tensor(string)"


def check_shape(name: str, shape: tuple[int, ...], count: int) -> None:
    """Raise :class:`InvalidInput` unless ``shape`` is a valid shape for ``count`` values."""
    if len(shape) > MAX_TENSOR_RANK:
        raise InvalidInput(f"tensor {name!r} has rank {len(shape)}; the limit is {MAX_TENSOR_RANK}")
    elements = max(count, math.prod(shape))
    if elements > MAX_TENSOR_ELEMENTS:
        raise InvalidInput(
            f"tensor {name!r} has {elements} elements; the limit is {MAX_TENSOR_ELEMENTS}"
        )
    if math.prod(shape) != count:
        raise InvalidInput(
            f"tensor {name!r} has {count} values but shape {list(shape)} needs {math.prod(shape)}"
        )


def check_structure(model_input: ModelInput) -> None:
    """Model-independent checks of a decoded input: ranks, element counts, shapes.

    Run before any gas that depends on the shape is charged. Raises :class:`InvalidInput`.
    """
    for tensor in model_input.numbers:
        check_shape(tensor.name, tuple(tensor.shape), len(tensor.values))
    for tensor in model_input.strings:
        check_shape(tensor.name, (len(tensor.values),), len(tensor.values))


def number_tensor_to_array(tensor: NumberTensor, dtype: np.dtype) -> np.ndarray:
    """Exact conversion of a Number tensor into an array of ``dtype``.

    Raises :class:`InvalidInput` for bad shapes, out-of-range decimals, values that do
    not fit the dtype, and non-integral values for integer or bool inputs.
    """
    shape = tuple(tensor.shape)
    check_shape(tensor.name, shape, len(tensor.values))
    if dtype.kind == "f":
        return _floats(tensor.name, tensor.values, dtype).reshape(shape)
    convert = _integer_converter(dtype)
    flat = [convert(tensor.name, number) for number in tensor.values]
    return np.array(flat, dtype=dtype).reshape(shape)


def string_tensor_to_array(tensor: StringTensor, shape: tuple[int, ...]) -> np.ndarray:
    """A string tensor as an object array, reshaped for a model input of ``shape``."""
    check_shape(tensor.name, shape, len(tensor.values))
    return np.array(tensor.values, dtype=object).reshape(shape)


def array_to_number_tensor(name: str, array: np.ndarray) -> NumberTensor:
    """Canonical encoding of a numeric output array.

    Raises :class:`InvalidOutput` for NaN, infinity, too many elements or values out of
    the int128 range.
    """
    array = np.asarray(array)
    if array.size > MAX_TENSOR_ELEMENTS:
        raise InvalidOutput(
            f"output {name!r} has {array.size} elements; the limit is {MAX_TENSOR_ELEMENTS}"
        )
    flat = array.reshape(-1)
    if array.dtype.kind == "f":
        # in Python: a numpy reduction costs more than a small model's whole output here
        items = flat.tolist()
        if not all(map(math.isfinite, items)):
            bad = "NaN" if any(map(math.isnan, items)) else "infinity"
            raise InvalidOutput(f"output {name!r} contains {bad}")
        values = tuple([_float_to_number(name, x) for x in flat])
    elif array.dtype.kind in "iub":
        values = tuple(Number(int(x), 0) for x in flat.tolist())
        for number in values:
            _check_int128(name, number.value)
    else:
        raise InvalidOutput(f"output {name!r} has unsupported dtype {array.dtype}")
    return NumberTensor(name, values, array.shape)


def array_to_exact_number_tensor(name: str, array: np.ndarray) -> NumberTensor:
    """Numbers equal to each element *exactly* (a float is a dyadic rational: ``m / 2**k`` is
    ``(m * 5**k, k)``, trailing zeros removed). For proven ZKML outputs, which are exact.

    Raises :class:`InvalidOutput` for NaN, infinity or values outside int128.
    """
    array = np.asarray(array)
    if array.dtype.kind != "f":
        return array_to_number_tensor(name, array)
    if not np.all(np.isfinite(array)):
        raise InvalidOutput(f"output {name!r} is not finite")
    values = []
    for x in array.reshape(-1):
        exact = Fraction(float(x))
        decimals = exact.denominator.bit_length() - 1  # the denominator is a power of two
        value = exact.numerator * 5**decimals
        while decimals and value % 10 == 0:
            value, decimals = value // 10, decimals - 1
        _check_int128(name, value)
        values.append(Number(value, decimals))
    return NumberTensor(name, tuple(values), tuple(int(d) for d in array.shape))


def number_to_fraction(number: Number) -> Fraction:
    """The exact rational value of a Number."""
    return Fraction(number.value) * Fraction(10) ** -number.decimals


def array_to_string_tensor(name: str, array: np.ndarray) -> StringTensor:
    """A string output array, flattened row-major."""
    flat = np.asarray(array, dtype=object).reshape(-1)
    if flat.size > MAX_TENSOR_ELEMENTS:
        raise InvalidOutput(
            f"output {name!r} has {flat.size} elements; the limit is {MAX_TENSOR_ELEMENTS}"
        )
    return StringTensor(name, tuple(str(x) for x in flat))


def canonical_decimal(x: np.floating | float) -> str:
    """Shortest decimal text that reads back as ``x`` in its own float type."""
    return np.format_float_positional(x, unique=True, trim="-")


_EXACT = Context(prec=100)  # int128 has 39 digits: every Number is exact at this precision


def number_to_decimal(number: Number) -> Decimal:
    """The exact decimal value of a Number (independent of the thread's decimal context)."""
    return Decimal(number.value).scaleb(-number.decimals, context=_EXACT)


def array_to_numbers(array: np.ndarray) -> tuple[Number, ...]:
    """Numbers for an input array, as the public SDK builds them (exact for floats)."""
    return array_to_number_tensor("input", array).values


# --- inputs --------------------------------------------------------------------------
def _exact(name: str, number: Number) -> Fraction:
    value, decimals = number
    if not -MAX_ABS_DECIMALS <= decimals <= MAX_ABS_DECIMALS:
        raise InvalidInput(
            f"tensor {name!r}: decimals {decimals} outside [-{MAX_ABS_DECIMALS}, {MAX_ABS_DECIMALS}]"
        )
    return Fraction(value) * Fraction(10) ** -decimals


#: ``|value| < 2**53`` and ``0 <= decimals <= 22``: both ``value`` and ``10**decimals`` are
#: exact float64 numbers, so one IEEE division rounds ``value * 10**-decimals`` correctly,
#: as the exact path's parser does. Such a quotient is 0 or in float32's normal range.
_FAST_VALUE_BOUND = 2**53
_POWERS_OF_TEN = tuple(10.0**k for k in range(min(22, MAX_ABS_DECIMALS) + 1))
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


def _floats(name: str, numbers: tuple[Number, ...], dtype: np.dtype) -> np.ndarray:
    """Numbers rounded once into ``dtype``: by one division where that is provably exact
    (see ``_FAST_VALUE_BOUND``), on the exact path for every other element and for
    float32 targets whose float64 quotient lies on a float32 midpoint (double rounding)."""
    convert = _float_converter(dtype)
    if dtype != _FLOAT32 and dtype != _FLOAT64:
        return np.array([convert(name, number) for number in numbers], dtype=dtype)
    to_float32 = dtype == _FLOAT32
    wide, slow = [], []
    for i, (value, decimals) in enumerate(numbers):
        if (type(value) is int and type(decimals) is int and -_FAST_VALUE_BOUND < value < _FAST_VALUE_BOUND
                and 0 <= decimals < len(_POWERS_OF_TEN)):
            quotient = value / _POWERS_OF_TEN[decimals]
            if not (to_float32 and _on_float32_midpoint(quotient)):
                wide.append(quotient)
                continue
        wide.append(0.0)
        slow.append(i)
    array = np.array(wide, dtype=dtype)  # IEEE round to nearest even, as ``scalar(wide)`` is
    for i in slow:
        array[i] = convert(name, numbers[i])
    return array


def _on_float32_midpoint(x: float) -> bool:
    """Whether ``x`` (zero or in float32's normal range) lies halfway between two float32
    values: it needs exactly 25 significant bits (float32 has 24)."""
    scaled = math.frexp(x)[0] * 2.0**25  # exact: a power-of-two scaling
    return scaled.is_integer() and int(scaled) % 2 == 1


@functools.cache
def _float_converter(dtype: np.dtype):
    limit = float(np.finfo(dtype).max)
    # round to nearest overflows only from the maximum plus half a unit in the last place
    largest = np.finfo(dtype).max
    ulp = float(largest) - float(np.nextafter(largest, dtype.type(0)))
    overflow = Fraction(limit) + Fraction(ulp) / 2
    scalar = dtype.type

    def convert(name: str, number: Number) -> float:
        value, decimals = number
        if not -MAX_ABS_DECIMALS <= decimals <= MAX_ABS_DECIMALS:
            raise InvalidInput(
                f"tensor {name!r}: decimals {decimals} outside [-{MAX_ABS_DECIMALS}, {MAX_ABS_DECIMALS}]")
        wide = float(f"{value}e{-decimals}")  # correctly rounded to float64 by the parser
        if abs(wide) >= limit and abs(_exact(name, number)) >= overflow:
            raise InvalidInput(f"tensor {name!r}: {number_to_decimal(number)} is out of range for {dtype}")
        if scalar is np.float64:
            return wide
        narrow = scalar(wide)
        if float(narrow) == wide:  # representable: rounding through float64 cannot have erred
            return narrow
        return _resolve_midpoint(wide, narrow, scalar, lambda: _exact(name, number))

    return convert


def _resolve_midpoint(wide: float, narrow, scalar: type, exact):
    """Round to ``scalar`` without double rounding: only a float64 value lying exactly on a
    midpoint of ``scalar`` can have been rounded twice; then compare with the exact value."""
    if abs(float(narrow)) == float(np.finfo(scalar).max) and abs(wide) > abs(float(narrow)):
        return narrow  # beyond the largest value but below the overflow threshold
    toward = np.nextafter(narrow, scalar(math.copysign(math.inf, wide - float(narrow))))
    # Exact in float64: two neighbouring float32 (or float16) values sum to at most 26 bits.
    if float(narrow) + float(toward) != 2.0 * wide:
        return narrow
    value = exact()
    d_narrow = abs(Fraction(float(narrow)) - value)
    d_toward = abs(Fraction(float(toward)) - value)
    if d_narrow != d_toward:
        return narrow if d_narrow < d_toward else toward
    even = np.uint32 if scalar is np.float32 else np.uint16
    return narrow if int(narrow.view(even)) % 2 == 0 else toward


def _integer_converter(dtype: np.dtype):
    if dtype.kind == "b":
        low, high = 0, 1
    else:
        info = np.iinfo(dtype)
        low, high = int(info.min), int(info.max)

    def convert(name: str, number: Number) -> int:
        value, decimals = number
        if decimals == 0:
            integral = value
        else:
            exact = _exact(name, number)
            if exact.denominator != 1:
                raise InvalidInput(
                    f"tensor {name!r}: {number_to_decimal(number)} is not an integer ({dtype} input)"
                )
            integral = int(exact)
        if not low <= integral <= high:
            raise InvalidInput(f"tensor {name!r}: {integral} is out of range for {dtype}")
        return integral

    return convert


# --- outputs -------------------------------------------------------------------------
def _float_to_number(name: str, x: np.floating) -> Number:
    whole, _, fraction = canonical_decimal(x).partition(".")
    value = int(whole + fraction)  # the sign, if any, leads ``whole``
    _check_int128(name, value)
    return Number(value, len(fraction))


def _check_int128(name: str, value: int) -> None:
    if not INT128_MIN <= value <= INT128_MAX:
        raise InvalidOutput(f"output {name!r}: {value} does not fit in int128")
