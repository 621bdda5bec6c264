"""The preprocessing precompile at ``0x…F6`` (``OGPreprocessing``): statistics of ``Number[]``.

A pure function of its calldata, run inline in every pass (simulation, replay,
validation) like any standard precompile: it makes no inference request and leaves no
record. One call: charge the base and calldata gas, decode (canonical layout only),
check the arguments, charge the work gas, compute exactly, encode.

Arithmetic is exact: the inputs are rational, so every result is either a rational or
the square root of one, and it is *correctly rounded* once to ``RESULT_DECIMALS``
decimals, ties to even. Every Number returned is ``(k, RESULT_DECIMALS)``. Failures
revert with ``Error(string)`` and keep the gas charged so far.
"""

from __future__ import annotations

from math import isqrt
from typing import Callable, NamedTuple, Sequence

from eth.abc import ComputationAPI
from eth.exceptions import VMError
from eth_utils import keccak

from ogevm.abi.codec import encode_revert_reason
from ogevm.constants import (
    GAS_PREPROCESSING_BASE,
    GAS_PREPROCESSING_PER_COMPARISON,
    GAS_PREPROCESSING_PER_ELEMENT,
    GAS_PREPROCESSING_PER_SQRT,
    GAS_PREPROCESSING_PER_WORD,
    MAX_ABS_DECIMALS,
    MAX_PREPROCESSING_ELEMENTS,
    MAX_REASON_CHARS,
    PREPROCESSING_RESULT_DECIMALS as RESULT_DECIMALS,
)
from ogevm.errors import InferenceError
from ogevm.precompile.inference import InferenceReverted

WORD = 32
INT128_MIN, INT128_MAX = -(2**127), 2**127 - 1
_UNIT = 10**RESULT_DECIMALS


class PreprocessingError(InferenceError):
    """A call the preprocessing precompile cannot serve; ``reason`` is the revert reason."""


# --- exact arithmetic -------------------------------------------------------------------
def round_ratio(p: int, q: int) -> int:
    """``p / q`` (``q > 0``) in units of 10^-RESULT_DECIMALS, to nearest, ties to even."""
    k, r = divmod(p * _UNIT, q)
    if 2 * r > q or (2 * r == q and k % 2):
        k += 1
    return k


def round_sqrt_ratio(sign: int, p: int, q: int) -> int:
    """``sign * sqrt(p / q)`` (``p >= 0``, ``q > 0``) in units of 10^-RESULT_DECIMALS,
    to nearest, ties to even: exact, from the integer square root and one comparison."""
    scaled = p * _UNIT * _UNIT  # sqrt(scaled / q) is the magnitude in units
    m = isqrt(scaled // q)  # floor(sqrt(floor(y))) == floor(sqrt(y))
    above, tie = 4 * scaled, (2 * m + 1) ** 2 * q  # compare sqrt(y) with m + 1/2, squared
    if above > tie or (above == tie and m % 2):
        m += 1
    return -m if sign < 0 else m


def _scaled(numbers: Sequence[tuple[int, int]]) -> tuple[list[int], int]:
    """Integers ``a`` and a scale ``s >= 0`` with ``number[i] == a[i] / 10**s`` exactly."""
    scale = max(0, *(decimals for _, decimals in numbers))
    return [value * 10 ** (scale - decimals) for value, decimals in numbers], scale


def _moments(a: list[int]) -> tuple[int, int]:
    """``(S, T)``: the sum, and ``n * sum(a_i^2) - S^2`` (``n^2`` times the population
    variance of ``a``; zero exactly when all elements are equal)."""
    total = sum(a)
    return total, len(a) * sum(x * x for x in a) - total * total


def _minimum(numbers) -> int:
    a, s = _scaled(numbers)
    return round_ratio(min(a), 10**s)


def _maximum(numbers) -> int:
    a, s = _scaled(numbers)
    return round_ratio(max(a), 10**s)


def _mean(numbers) -> int:
    a, s = _scaled(numbers)
    return round_ratio(sum(a), len(a) * 10**s)


def _variance(numbers) -> int:
    a, s = _scaled(numbers)
    return round_ratio(_moments(a)[1], len(a) ** 2 * 10 ** (2 * s))


def _std_dev(numbers) -> int:
    a, s = _scaled(numbers)
    return round_sqrt_ratio(1, _moments(a)[1], len(a) ** 2 * 10 ** (2 * s))


def _median(numbers) -> int:
    a, s = _scaled(numbers)
    a.sort()
    middle = len(a) // 2
    if len(a) % 2:
        return round_ratio(a[middle], 10**s)
    return round_ratio(a[middle - 1] + a[middle], 2 * 10**s)


def _standardize(numbers) -> list[int]:
    a, _ = _scaled(numbers)
    total, spread = _moments(a)
    if spread == 0:
        raise PreprocessingError("standardize: the input has zero variance")
    n = len(a)
    # z_i = (x_i - mean) / stdDev = c_i / sqrt(T) with c_i = n * a_i - S
    return [round_sqrt_ratio(c, c * c, spread) for c in (n * x - total for x in a)]


def _normalize(numbers) -> list[int]:
    a, _ = _scaled(numbers)
    low, high = min(a), max(a)
    if low == high:
        raise PreprocessingError("normalize: the input has zero range (all elements are equal)")
    return [round_ratio(x - low, high - low) for x in a]


def _correlation(xs, ys) -> int:
    a, _ = _scaled(xs)
    b, _ = _scaled(ys)
    n = len(a)
    sum_a, spread_a = _moments(a)
    sum_b, spread_b = _moments(b)
    for name, spread in (("X", spread_a), ("Y", spread_b)):
        if spread == 0:
            raise PreprocessingError(f"correlation: {name} has zero variance")
    covariance = n * sum(x * y for x, y in zip(a, b)) - sum_a * sum_b
    # r = cov / (sd_X * sd_Y) = C / sqrt(T_X * T_Y)
    return round_sqrt_ratio(covariance, covariance * covariance, spread_a * spread_b)


# --- the functions ------------------------------------------------------------------------
class Function(NamedTuple):
    """One function of the precompile: its name, argument count, what it returns, its math."""

    name: str
    arrays: int  # Number[] arguments
    returns_array: bool
    compute: Callable
    sqrts: Callable[[int], int]  # square roots it takes on arrays of n elements
    sorts: bool = False  # median: its sort is charged per comparison

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(['(int128,int128)[]'] * self.arrays)})"

    @property
    def selector(self) -> bytes:
        return keccak(text=self.signature)[:4]


FUNCTIONS = (
    Function("min", 1, False, _minimum, lambda n: 0),
    Function("max", 1, False, _maximum, lambda n: 0),
    Function("mean", 1, False, _mean, lambda n: 0),
    Function("stdDev", 1, False, _std_dev, lambda n: 1),
    Function("variance", 1, False, _variance, lambda n: 0),
    Function("median", 1, False, _median, lambda n: 0, sorts=True),
    Function("standardize", 1, True, _standardize, lambda n: n),
    Function("normalize", 1, True, _normalize, lambda n: 0),
    Function("correlation", 2, False, _correlation, lambda n: 1),
)
FUNCTIONS_BY_SELECTOR = {function.selector: function for function in FUNCTIONS}


def base_gas(calldata_length: int) -> int:
    """Gas charged before decoding: base plus per 32-byte word of calldata."""
    return GAS_PREPROCESSING_BASE + GAS_PREPROCESSING_PER_WORD * ((calldata_length + WORD - 1) // WORD)


def work_gas(function: Function, n: int) -> int:
    """Gas of the arithmetic on arrays of ``n`` elements each, charged before it runs."""
    gas = GAS_PREPROCESSING_PER_ELEMENT * n * function.arrays + GAS_PREPROCESSING_PER_SQRT * function.sqrts(n)
    if function.sorts:
        gas += GAS_PREPROCESSING_PER_COMPARISON * n * max(n - 1, 0).bit_length()
    return gas


# --- calldata ---------------------------------------------------------------------------
def decode_arrays(body: bytes, count: int) -> list[list[tuple[int, int]]]:
    """``count`` ``Number[]`` arguments from their canonical ABI encoding (what Solidity
    produces: offsets where the tails start, nothing after). Raises ValueError otherwise."""
    if len(body) % WORD:
        raise ValueError("length is not a whole number of words")
    words = [int.from_bytes(body[i:i + WORD], "big") for i in range(0, len(body), WORD)]
    if len(words) < count:
        raise ValueError("calldata ends early")
    arrays, position = [], count  # position in words
    for head in words[:count]:
        if head != position * WORD or position >= len(words):
            raise ValueError("offset is not canonical")
        n = words[position]
        if n > (len(words) - position - 1) // 2:
            raise ValueError("length exceeds the calldata")
        arrays.append([(_int128(words[i]), _int128(words[i + 1]))
                       for i in range(position + 1, position + 1 + 2 * n, 2)])
        position += 1 + 2 * n
    if position != len(words):
        raise ValueError("bytes after the encoded arguments")
    return arrays


def _int128(word: int) -> int:
    value = word - (1 << 256) if word >> 255 else word
    if not INT128_MIN <= value <= INT128_MAX:
        raise ValueError("value does not fit int128")
    return value


def encode_result(function: Function, result: int | list[int]) -> bytes:
    """The return data: ``abi.encode(Number)`` or ``abi.encode(Number[])`` of results given
    in units of 10^-RESULT_DECIMALS."""
    def number(k: int) -> bytes:
        return k.to_bytes(WORD, "big", signed=True) + RESULT_DECIMALS.to_bytes(WORD, "big")

    if not function.returns_array:
        return number(result)
    return WORD.to_bytes(WORD, "big") + len(result).to_bytes(WORD, "big") + b"".join(map(number, result))


def _check_arguments(function: Function, arrays: list[list[tuple[int, int]]]) -> None:
    """In this order: element limit, emptiness, equal lengths, then decimals, X before Y."""
    names = ("X", "Y") if function.arrays == 2 else ("the input",)
    for name, numbers in zip(names, arrays):
        if len(numbers) > MAX_PREPROCESSING_ELEMENTS:
            raise PreprocessingError(f"{function.name}: {name} has {len(numbers)} elements; "
                                     f"the limit is {MAX_PREPROCESSING_ELEMENTS}")
    for name, numbers in zip(names, arrays):
        if not numbers:
            raise PreprocessingError(f"{function.name}: {name} is empty")
    if len({len(numbers) for numbers in arrays}) > 1:
        raise PreprocessingError(f"{function.name}: X has {len(arrays[0])} elements but Y has {len(arrays[1])}")
    for name, numbers in zip(names, arrays):
        for index, (_, decimals) in enumerate(numbers):
            if not -MAX_ABS_DECIMALS <= decimals <= MAX_ABS_DECIMALS:
                raise PreprocessingError(f"{function.name}: element {index} of {name} has decimals "
                                         f"{decimals} outside [-{MAX_ABS_DECIMALS}, {MAX_ABS_DECIMALS}]")


def _check_range(function: Function, result: int | list[int]) -> None:
    for k in result if function.returns_array else [result]:
        if not INT128_MIN <= k <= INT128_MAX:
            raise PreprocessingError(f"{function.name}: the result does not fit int128 "
                                     f"with {RESULT_DECIMALS} decimals")


# --- the precompile --------------------------------------------------------------------------
def preprocessing_precompile(computation: ComputationAPI) -> ComputationAPI:
    """Serve one call of the preprocessing precompile (see the module docstring)."""
    data = computation.msg.data_as_bytes
    computation.consume_gas(base_gas(len(data)), reason="preprocessing: base")
    try:
        function = FUNCTIONS_BY_SELECTOR.get(bytes(data[:4]))
        if function is None:
            raise PreprocessingError(f"unknown function selector 0x{bytes(data[:4]).hex()}")
        try:
            arrays = decode_arrays(bytes(data[4:]), function.arrays)
        except ValueError as exc:
            raise PreprocessingError(f"malformed {function.name} calldata") from exc
        _check_arguments(function, arrays)
        computation.consume_gas(work_gas(function, len(arrays[0])), reason="preprocessing: work")
        result = function.compute(*arrays)
        _check_range(function, result)
    except PreprocessingError as exc:
        _revert(computation, exc.reason)
    except VMError:
        raise
    except Exception as exc:  # a bug must not crash block building or import
        _revert(computation, f"internal error: {type(exc).__name__}")
    computation.output = encode_result(function, result)
    return computation


def _revert(computation: ComputationAPI, reason: str) -> None:
    reason = reason[:MAX_REASON_CHARS]
    computation.output = encode_revert_reason(reason)
    raise InferenceReverted(reason)
