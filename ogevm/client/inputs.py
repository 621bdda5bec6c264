"""Exact inputs: a ``ModelInput`` from arrays, lists and scalars, every value an exact
``Number`` (see the package docstring for the rules)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any, Mapping

import numpy as np

from ogevm.abi.types import InferenceMode, ModelInput, Number, NumberTensor, StringTensor
from ogevm.constants import MAX_ABS_DECIMALS

INT128_MIN, INT128_MAX = -(2**127), 2**127 - 1


def model_input(values: Mapping[str, Any] | ModelInput) -> ModelInput:
    """A ``ModelInput`` from ``{name: array, nested list, scalar or strings}``.

    Each tensor is flattened row-major and its shape recorded; each element becomes an
    exact :class:`~ogevm.abi.types.Number` (see the module docstring for floats). A
    tensor of strings (``str`` elements or a numpy ``U``/``S`` array) becomes a
    ``StringTensor`` (flat; the node gives it the model's shape). A ``ModelInput`` is
    returned unchanged. Raises ``ValueError`` for ragged lists, NaN, infinity, mixed
    strings and numbers, or values beyond ``int128``.
    """
    if isinstance(values, ModelInput):
        return values
    numbers, strings = [], []
    for name, value in values.items():
        shape, flat = _flatten(value)
        if flat and all(isinstance(x, (str, np.str_, bytes, np.bytes_)) for x in flat):
            strings.append(StringTensor(str(name), tuple(_text(x) for x in flat)))
        elif any(isinstance(x, (str, np.str_, bytes, np.bytes_)) for x in flat):
            raise ValueError(f"tensor {name!r} mixes strings and numbers")
        else:
            numbers.append(NumberTensor(str(name), tuple(to_number(x, str(name)) for x in flat), shape))
    return ModelInput(tuple(numbers), tuple(strings))


def to_number(x: Any, name: str = "value") -> Number:
    """The exact ``Number`` of one scalar (int, bool, float, numpy scalar, Decimal)."""
    if isinstance(x, (bool, np.bool_)):
        return Number(int(bool(x)), 0)
    if isinstance(x, (int, np.integer)):
        return _normalized(int(x), 0, name)
    if isinstance(x, np.floating):
        if not np.isfinite(x):
            raise ValueError(f"tensor {name!r}: {x} cannot be written as a Number")
        shortest = Decimal(np.format_float_scientific(x, unique=True, trim="-"))
        if abs(shortest) > Decimal(float(np.finfo(x.dtype).max)):
            # float32's largest values: the shortest form lies above the type's maximum and the
            # node refuses it as out of range; send the exact binary value instead
            exact = Fraction(float(x))
            return _normalized(exact.numerator, 0, name) if exact.denominator == 1 else to_number(exact, name)
        return decimal_number(shortest, name)
    if isinstance(x, float):
        if x != x or x in (float("inf"), float("-inf")):
            raise ValueError(f"tensor {name!r}: {x} cannot be written as a Number")
        return decimal_number(Decimal(repr(x)), name)
    if isinstance(x, Decimal):
        if not x.is_finite():
            raise ValueError(f"tensor {name!r}: {x} cannot be written as a Number")
        return decimal_number(x, name)
    if isinstance(x, Fraction):
        denominator = x.denominator
        for prime in (2, 5):
            while denominator % prime == 0:
                denominator //= prime
        if denominator != 1:
            raise ValueError(f"tensor {name!r}: {x} has no finite decimal expansion")
        digits = max(_multiplicity(x.denominator, 2), _multiplicity(x.denominator, 5))
        return _normalized(int(x * 10**digits), -digits, name)
    raise ValueError(f"tensor {name!r}: cannot encode {type(x).__name__} {x!r} as a Number")


def _multiplicity(n: int, prime: int) -> int:
    count = 0
    while n % prime == 0:
        n //= prime
        count += 1
    return count


def decimal_number(value: Decimal, name: str) -> Number:
    """``value`` as ``Number(digits, decimals)`` with integer arithmetic only."""
    sign, digits, exponent = value.as_tuple()
    return _normalized(int("".join(map(str, digits)) or "0") * (-1 if sign else 1), exponent, name)


def _normalized(coefficient: int, exponent: int, name: str) -> Number:
    """``coefficient * 10**exponent`` as the shortest ``Number`` (decimals = 0 for integers)."""
    if coefficient == 0:
        return Number(0, 0)
    while exponent < 0 and coefficient % 10 == 0:  # 1.50 -> (15, 1)
        coefficient //= 10
        exponent += 1
    if exponent > 0 and INT128_MIN <= coefficient * 10**exponent <= INT128_MAX:
        coefficient, exponent = coefficient * 10**exponent, 0  # integers keep decimals = 0
    while not INT128_MIN <= coefficient <= INT128_MAX and coefficient % 10 == 0:  # huge: negative decimals
        coefficient //= 10
        exponent += 1
    if -exponent > MAX_ABS_DECIMALS or exponent > MAX_ABS_DECIMALS:
        raise ValueError(f"tensor {name!r}: {coefficient}e{exponent} needs decimals {-exponent}, "
                         f"outside ±{MAX_ABS_DECIMALS}")
    return _checked(Number(coefficient, -exponent), name)


def _checked(number: Number, name: str) -> Number:
    if not INT128_MIN <= number.value <= INT128_MAX:
        raise ValueError(f"tensor {name!r}: {number.value} does not fit in int128")
    return number


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, (bytes, np.bytes_)) else str(x)


def _flatten(value: Any) -> tuple[tuple[int, ...], list]:
    """(shape, row-major elements) of an array, a rectangular nested list, or a scalar.

    Nested lists are walked by hand rather than through ``np.asarray`` so Python ints
    beyond 2**53 mixed with floats are not promoted to float64 on the way.
    """
    if isinstance(value, np.ndarray):
        return tuple(int(d) for d in value.shape), list(value.reshape(-1))
    if isinstance(value, (list, tuple)):
        if not value:
            return (0,), []
        parts = [_flatten(item) for item in value]
        inner = parts[0][0]
        if any(shape != inner for shape, _ in parts):
            raise ValueError("ragged nested list: every row must have the same shape")
        return (len(value), *inner), [x for _, flat in parts for x in flat]
    return (), [value]


def inference_mode(mode: InferenceMode | int | str) -> InferenceMode:
    if isinstance(mode, str):
        try:
            return InferenceMode[mode.upper()]
        except KeyError:
            raise ValueError(f"unknown inference mode {mode!r}; use one of {[m.name for m in InferenceMode]}") from None
    return InferenceMode(int(mode))
