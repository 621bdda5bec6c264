"""Exact Number <-> numpy conversion and the canonical output encoding."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ogevm.abi.types import Number, NumberTensor, StringTensor
from ogevm.constants import MAX_ABS_DECIMALS, MAX_TENSOR_ELEMENTS, MAX_TENSOR_RANK
from ogevm.errors import InvalidInput, InvalidOutput
from ogevm.tensors import (
    INT128_MAX,
    INT128_MIN,
    array_to_number_tensor,
    array_to_string_tensor,
    canonical_decimal,
    number_tensor_to_array,
    number_to_decimal,
    string_tensor_to_array,
)
from ogevm.tensors import _float_converter  # the exact element-by-element path
from ogevm.testing import exact_number, nearest_float, number_value

FAST = settings(max_examples=100, deadline=None)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
#: Largest float32 below 2**127, so its integer digits fit int128.
INT128_FLOAT32 = float(np.nextafter(np.float32(2.0**127), np.float32(0)))


def decode(numbers, dtype, shape=None):
    numbers = tuple(Number(*n) for n in numbers)
    shape = (len(numbers),) if shape is None else shape
    return number_tensor_to_array(NumberTensor("t", numbers, shape), np.dtype(dtype))


def decode_one(number, dtype=F32):
    return decode([number], dtype)[0]


def bits(x) -> int:
    x = np.asarray(x)
    return int(x.view(np.dtype(f"u{x.dtype.itemsize}")))


# --- the reference used below ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_reference_rounding_agrees_with_exactly_representable_values(dtype):
    for x in [1.0, -2.5, 0.1, 1e-3, 65504.0, 6.1e-5]:
        value = np.dtype(dtype).type(x)
        assert nearest_float(Fraction(float(value)), dtype) == value
    assert nearest_float(Fraction(1, 10), np.float64) == 0.1


# --- decoding inputs ------------------------------------------------------------------------
def test_exact_simple_values():
    assert decode_one((15, 1)) == np.float32(1.5)
    assert decode_one((10, 0)) == np.float32(10)
    assert decode_one((-725, 2)) == np.float32(-7.25)
    assert decode_one((0, 0)) == 0
    assert decode([(15, 1)], np.float64)[0] == 1.5


def test_one_tenth_is_the_nearest_float32():
    value = decode_one((1, 1))
    assert value.dtype == np.float32
    assert bits(value) == bits(np.float32(0.1)) == 0x3DCCCCCD
    assert decode([(1, 1)], np.float64)[0] == 0.1


def test_negative_decimals_scale_up():
    assert decode_one((15, -2)) == np.float32(1500)
    assert decode([(7, -3)], np.int64)[0] == 7000
    assert decode([(-3, -1)], np.int32)[0] == -30


def test_result_dtype_and_shape():
    array = decode([(1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)], np.float32, (2, 3))
    assert array.dtype == np.float32
    assert array.shape == (2, 3)
    np.testing.assert_array_equal(array, [[1, 2, 3], [4, 5, 6]])


def test_scalar_shape():
    array = decode([(25, 1)], np.float32, ())
    assert array.shape == () and array == np.float32(2.5)


def test_float32_double_rounding_case():
    # 1 + 2**-24 + 2**-60 lies just above the float32 midpoint between 1 and 1 + 2**-23;
    # rounding through float64 first would land on the midpoint and tie down to 1.
    exact = 1 + Fraction(1, 2**24) + Fraction(1, 2**60)
    decimals = 60
    value = exact * 10**decimals
    assert value.denominator == 1
    result = decode_one((int(value), decimals))
    assert result == np.float32(1 + 2**-23)
    # the exact midpoint itself ties to even (1.0)
    midpoint = (1 + Fraction(1, 2**24)) * 10**24
    assert decode_one((int(midpoint), 24)) == np.float32(1.0)


def _reference_case(exact: Fraction, dtype) -> tuple[object, bool]:
    try:
        return nearest_float(exact, dtype), False
    except OverflowError:
        return None, True


@st.composite
def decimal_numbers(draw, max_decimals=60):
    """Numbers across float32's range, many of them close to rounding boundaries."""
    kind = draw(st.sampled_from(["random", "near-float", "near-midpoint"]))
    decimals = draw(st.integers(-40, max_decimals))
    if kind == "random":
        value = draw(st.integers(-(10**40), 10**40))
        return Number(value, decimals)
    # a decimal just around a float32 value or a midpoint between two neighbours
    x = draw(st.floats(width=32, allow_nan=False, allow_infinity=False))
    base = Fraction(float(np.float32(x)))
    if kind == "near-midpoint":
        with np.errstate(over="ignore"):
            up = np.nextafter(np.float32(x), np.float32(np.inf))
        base = (base + Fraction(float(up))) / 2 if np.isfinite(up) else base
    decimals = draw(st.integers(0, 80))
    scaled = base * 10**decimals
    value = scaled.numerator // scaled.denominator + draw(st.integers(-2, 2))
    assume(INT128_MIN <= value <= INT128_MAX)
    return Number(value, decimals)


@settings(max_examples=300, deadline=None)
@given(decimal_numbers())
def test_float32_rounding_is_correct(number):
    exact = number_value(number)
    assume(abs(number.decimals) <= MAX_ABS_DECIMALS)
    expected, overflows = _reference_case(exact, F32)
    if overflows:
        with pytest.raises(InvalidInput):
            decode_one(number)
        return
    result = decode_one(number)
    assert result.dtype == np.float32
    assert result == expected, (number, result, expected)


@FAST
@given(st.fractions(), st.integers(0, 30))
def test_float32_rounding_of_random_fractions(fraction, decimals):
    """Round a random fraction to a decimal first, then compare against the reference."""
    scaled = fraction * 10**decimals
    number = Number(scaled.numerator // scaled.denominator, decimals)
    assume(INT128_MIN <= number.value <= INT128_MAX)
    expected, _ = _reference_case(number_value(number), F32)
    assert decode_one(number) == expected


@FAST
@given(decimal_numbers())
def test_float64_rounding_is_correct(number):
    expected, overflows = _reference_case(number_value(number), F64)
    assume(not overflows)
    assert decode_one(number, F64) == expected


@FAST
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_exact_float32_numbers_decode_to_the_same_bits(x):
    x = np.float32(x)
    try:
        number = exact_number(x)
    except ValueError:  # exact subnormal decimals do not fit int128
        assume(False)
    assert number_value(number) == Fraction(float(x))
    result = decode_one(number)
    assert result == x
    if x != 0:
        assert bits(result) == bits(x)


# --- the one-division fast path against the exact element-by-element path --------------------
FAST_BOUND = 2**53
#: Below 2**53 and at 21 decimals: one float64 division lands on the float32 midpoint
#: (1 + 3 * 2**-24) * 2**-19, though the value lies just below it, so the tie to even rounds
#: the wrong way; only the exact path rounds it right (found by search).
FAST_REGION_DOUBLE_ROUNDING = Number(1907348973873013, 21)


@st.composite
def fast_region_numbers(draw):
    """Numbers the fast path takes (|value| < 2**53, 0 <= decimals <= 22), many of them on or
    next to a float32 midpoint; a few outside the region, which mixed tensors must handle."""
    kind = draw(st.sampled_from(["random", "integer-midpoint", "near-midpoint", "outside"]))
    decimals = draw(st.integers(0, 22))
    if kind == "random":
        return Number(draw(st.integers(-FAST_BOUND + 1, FAST_BOUND - 1)), decimals)
    if kind == "outside":
        return Number(draw(st.integers(INT128_MIN, INT128_MAX)), draw(st.integers(-40, 40)))
    if kind == "integer-midpoint":  # odd 25-bit integers times a power of two are midpoints
        midpoint = (draw(st.integers(2**23, 2**24 - 1)) * 2 + 1) * 2 ** draw(st.integers(0, 28))
        value = midpoint * 10**decimals * draw(st.sampled_from([1, -1]))
        assume(abs(value) < FAST_BOUND)
        return Number(value, decimals)
    # a float32 midpoint whose scaled value is just below 2**53, where the one division's
    # rounding error is about one unit of the value: double rounding is common there
    x = np.float32(draw(st.integers(2**51, FAST_BOUND - 1)) / 10**decimals)
    midpoint = (Fraction(float(x)) + Fraction(float(np.nextafter(x, np.float32(np.inf))))) / 2
    scaled = midpoint * 10**decimals
    value = scaled.numerator // scaled.denominator + draw(st.integers(-2, 2))
    assume(abs(value) < FAST_BOUND)
    return Number(value * draw(st.sampled_from([1, -1])), decimals)


def _exact_path(numbers, dtype) -> list[int]:
    convert = _float_converter(np.dtype(dtype))
    return [bits(np.asarray(convert("t", number), dtype=dtype)) for number in numbers]


@settings(max_examples=300, deadline=None)
@given(st.lists(fast_region_numbers(), min_size=1, max_size=12), st.sampled_from([F32, F64]))
def test_float_inputs_by_one_division_equal_the_exact_path(numbers, dtype):
    try:
        expected = _exact_path(numbers, dtype)
    except InvalidInput as exc:  # the whole tensor fails with the first bad element's reason
        with pytest.raises(InvalidInput, match=re.escape(exc.reason)):
            decode(numbers, dtype)
        return
    assert [bits(x) for x in decode(numbers, dtype)] == expected


@pytest.mark.parametrize("number,expected", [
    (Number(16_777_217, 0), 16_777_216.0),  # the midpoint ties to the even neighbour, down
    (Number(16_777_219, 0), 16_777_220.0),  # and here up
    (Number(167_772_170, 1), 16_777_216.0),
    (FAST_REGION_DOUBLE_ROUNDING, float(nearest_float(number_value(FAST_REGION_DOUBLE_ROUNDING)))),
])
def test_float32_midpoints_in_the_fast_region(number, expected):
    result = decode([number, Number(15, 1)], F32)  # a tensor with a plain element beside
    assert float(result[0]) == expected and result[1] == np.float32(1.5)


def test_the_double_rounding_case_really_double_rounds_through_float64():
    value, decimals = FAST_REGION_DOUBLE_ROUNDING
    one_division = np.float32(value / 10.0**decimals)
    assert one_division != nearest_float(number_value(FAST_REGION_DOUBLE_ROUNDING))
    assert decode_one(FAST_REGION_DOUBLE_ROUNDING) == nearest_float(number_value(FAST_REGION_DOUBLE_ROUNDING))


@pytest.mark.parametrize(
    "number,dtype",
    [
        ((15, 1), np.int64),
        ((1, 1), np.int32),
        ((-5, 1), np.bool_),
        ((101, 2), np.uint8),
    ],
)
def test_non_integral_values_for_integer_inputs(number, dtype):
    with pytest.raises(InvalidInput, match="not an integer"):
        decode([number], dtype)


@pytest.mark.parametrize(
    "number,dtype",
    [
        ((2, 0), np.bool_),
        ((-1, 0), np.bool_),
        ((128, 0), np.int8),
        ((-129, 0), np.int8),
        ((-1, 0), np.uint32),
        ((2**63, 0), np.int64),
        ((-(2**63) - 1, 0), np.int64),
        ((2**64, 0), np.uint64),
        ((1, -19), np.int64),  # 10**19 > int64 max
        ((300, 1), np.bool_),  # 30
    ],
)
def test_out_of_range_integer_inputs(number, dtype):
    with pytest.raises(InvalidInput, match="out of range"):
        decode([number], dtype)


def test_integral_values_with_decimals_are_accepted():
    np.testing.assert_array_equal(decode([(150, 1), (-20, 1), (0, 5)], np.int64), [15, -2, 0])
    np.testing.assert_array_equal(decode([(10, 1), (0, 3), (100, 2)], np.bool_), [True, False, True])
    assert decode([(2**63 - 1, 0), (-(2**63), 0)], np.int64).tolist() == [2**63 - 1, -(2**63)]
    assert decode([(2**64 - 1, 0)], np.uint64).tolist() == [2**64 - 1]


def test_out_of_range_floats():
    with pytest.raises(InvalidInput, match="out of range"):
        decode_one((4, -38))  # 4e38 > float32 max
    with pytest.raises(InvalidInput, match="out of range"):
        decode([(2, -308)], np.float64)
    with pytest.raises(InvalidInput, match="out of range"):
        decode([(65520, 0)], np.float16)
    assert decode_one((3, -38)) == np.float32(3e38)


OUT_OF_RANGE_DECIMALS = [MAX_ABS_DECIMALS + 1, -(MAX_ABS_DECIMALS + 1), 2**127 - 1, -(2**127)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("value", [1, -7, 10**30])
@pytest.mark.parametrize("decimals", OUT_OF_RANGE_DECIMALS)
def test_out_of_range_decimals(dtype, value, decimals):
    with pytest.raises(InvalidInput, match="decimals") as info:
        decode([(value, decimals)], dtype)
    assert str(MAX_ABS_DECIMALS) in str(info.value)


def test_out_of_range_decimals_of_zero():
    """The decimals limit holds for a zero value too, whatever the input's dtype."""
    accepted = []
    for dtype in (np.float16, np.float32, np.float64, np.int64, np.bool_):
        for decimals in OUT_OF_RANGE_DECIMALS:
            try:
                decode([(0, decimals)], dtype)
            except InvalidInput as exc:
                assert "decimals" in str(exc)
            else:
                accepted.append((np.dtype(dtype).name, decimals))
    assert accepted == [], f"Number(0, decimals) accepted despite the limit: {accepted}"


def test_decimals_at_the_limit():
    assert decode_one((1, MAX_ABS_DECIMALS)) == 0
    assert decode([(0, MAX_ABS_DECIMALS)], np.int64)[0] == 0
    assert decode([(0, -MAX_ABS_DECIMALS)], np.int64)[0] == 0
    with pytest.raises(InvalidInput, match="out of range"):
        decode_one((1, -MAX_ABS_DECIMALS))


def test_tiny_values_round_to_signed_zero():
    result = decode_one((-1, 60))
    assert result == 0 and np.signbit(result)
    assert decode_one((1, 60)) == 0 and not np.signbit(decode_one((1, 60)))


def test_float32_subnormals():
    smallest = Fraction(float(np.nextafter(np.float32(0), np.float32(1))))
    scaled = smallest * 10**149
    assert scaled.denominator == 1
    assert decode_one((int(scaled), 149)) == np.nextafter(np.float32(0), np.float32(1))
    # just above half the smallest subnormal rounds up, exactly half ties to zero
    half = smallest / 2 * 10**150
    assert decode_one((int(half), 150)) == 0
    assert decode_one((int(half) + 1, 150)) == np.nextafter(np.float32(0), np.float32(1))


@pytest.mark.parametrize(
    "values,shape,match",
    [
        ([(1, 0)] * 3, (2, 2), "needs 4"),
        ([(1, 0)] * 4, (3,), "needs 3"),
        ([], (1,), "needs 1"),
        ([(1, 0)] * 2, (), "needs 1"),
        ([(1, 0)], (1,) * (MAX_TENSOR_RANK + 1), "rank"),
    ],
)
def test_shape_mismatch(values, shape, match):
    with pytest.raises(InvalidInput, match=match) as info:
        decode(values, np.float32, shape)
    assert "'t'" in str(info.value)


def test_too_many_input_elements():
    count = MAX_TENSOR_ELEMENTS + 1
    with pytest.raises(InvalidInput, match="limit"):
        decode([(0, 0)] * count, np.float32, (count,))
    with pytest.raises(InvalidInput, match="limit"):
        string_tensor_to_array(StringTensor("s", ("a",) * count), (count,))


def test_string_tensors():
    array = string_tensor_to_array(StringTensor("s", ("a", "b", "c", "d")), (2, 2))
    assert array.dtype == object and array.shape == (2, 2) and array[1, 0] == "c"
    with pytest.raises(InvalidInput, match="needs 3"):
        string_tensor_to_array(StringTensor("s", ("a", "b")), (3,))
    out = array_to_string_tensor("o", np.array([["x", "y"], ["z", "w"]], dtype=object))
    assert out == StringTensor("o", ("x", "y", "z", "w"))


# --- encoding outputs -----------------------------------------------------------------------
def encoded(x, dtype) -> Number:
    return array_to_number_tensor("y", np.array([x], dtype=dtype)).values[0]


def test_known_output_encodings():
    assert encoded(1.5, F32) == Number(15, 1)
    assert encoded(0.1, F32) == Number(1, 1)
    assert encoded(0.1, F64) == Number(1, 1)
    assert encoded(7.1, F32) == Number(71, 1)
    assert encoded(-2.0, F32) == Number(-2, 0)
    assert encoded(100.0, F32) == Number(100, 0)
    assert encoded(1e20, F32) == Number(10**20, 0)
    assert encoded(-0.0, F32) == Number(0, 0)
    assert encoded(1 / 3, F32) == Number(33333334, 8)
    assert encoded(1 / 3, F64) == Number(3333333333333333, 16)


def _is_shortest(number: Number, x: np.floating) -> bool:
    """No decimal with one significant digit fewer reads back as ``x``."""
    value, decimals = number
    if value == 0:
        return True
    while value % 10 == 0:
        value, decimals = value // 10, decimals - 1
    exact = Fraction(value) * Fraction(10) ** -decimals
    coarse = Fraction(10) ** -(decimals - 1)
    down = (exact / coarse).__floor__() * coarse
    for candidate in (down, down + coarse):
        try:
            if nearest_float(candidate, x.dtype) == x:
                return False
        except OverflowError:
            pass
    return True


def _check_output_encoding(array: np.ndarray) -> None:
    tensor = array_to_number_tensor("y", array)
    assert tensor.name == "y"
    assert tensor.shape == array.shape
    assert len(tensor.values) == array.size
    for x, number in zip(array.reshape(-1), tensor.values):
        assert number.decimals >= 0
        if number.decimals > 0:
            assert number.value % 10 != 0  # no trailing zeros after the point
        back = nearest_float(number_value(number), array.dtype)
        if x == 0:
            assert number == Number(0, 0)
        else:
            assert bits(back) == bits(x), (x, number)
        assert Decimal(np.format_float_positional(x, unique=True)) == number_to_decimal(number)
        assert _is_shortest(number, x), (x, number)


def _float_arrays(dtype, **elements):
    return hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=8 * dtype.itemsize, **elements),
    )


@FAST
@given(_float_arrays(F32, min_value=-INT128_FLOAT32, max_value=INT128_FLOAT32))
def test_float32_output_encoding_is_shortest_round_trip(array):
    _check_output_encoding(array)


@FAST
@given(_float_arrays(F64, min_value=-1e38, max_value=1e38).filter(
    lambda a: not np.any((a != 0) & (np.abs(a) < 1e-300))))
def test_float64_output_encoding_is_shortest_round_trip(array):
    _check_output_encoding(array)


@FAST
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_canonical_decimal_matches_numpy(x):
    x = np.float32(x)
    text = canonical_decimal(x)
    assert np.float32(text) == x
    assert "e" not in text and not text.endswith(".")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("bad,word", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
def test_non_finite_outputs(dtype, bad, word):
    array = np.array([[1.0, bad], [2.0, 3.0]], dtype=dtype)
    with pytest.raises(InvalidOutput, match=word) as info:
        array_to_number_tensor("y", array)
    assert "'y'" in str(info.value)


def test_nan_is_reported_before_infinity():
    with pytest.raises(InvalidOutput, match="NaN"):
        array_to_number_tensor("y", np.array([np.inf, np.nan], dtype=np.float32))


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]
)
def test_integer_outputs_keep_zero_decimals(dtype):
    info = np.iinfo(dtype) if dtype is not np.bool_ else None
    values = [0, 1] if info is None else [int(info.min), 0, 1, int(info.max)]
    tensor = array_to_number_tensor("y", np.array(values, dtype=dtype))
    assert tensor.values == tuple(Number(v, 0) for v in values)
    assert all(type(n.value) is int for n in tensor.values)


def test_int128_overflow():
    with pytest.raises(InvalidOutput, match="int128"):
        array_to_number_tensor("y", np.array([3e38], dtype=np.float32))
    with pytest.raises(InvalidOutput, match="int128"):
        array_to_number_tensor("y", np.array([1.0, -1e39], dtype=np.float64))
    big = np.float32(1.7e38)
    assert array_to_number_tensor("y", np.array([big])).values[0].value <= INT128_MAX


def test_too_many_output_elements():
    with pytest.raises(InvalidOutput, match="limit"):
        array_to_number_tensor("y", np.zeros(MAX_TENSOR_ELEMENTS + 1, dtype=np.float32))
    with pytest.raises(InvalidOutput, match="limit"):
        array_to_string_tensor("y", np.array(["a"] * (MAX_TENSOR_ELEMENTS + 1), dtype=object))
    assert len(array_to_number_tensor("y", np.zeros(MAX_TENSOR_ELEMENTS, np.int8)).values) == MAX_TENSOR_ELEMENTS


def test_unsupported_output_dtype():
    with pytest.raises(InvalidOutput, match="dtype"):
        array_to_number_tensor("y", np.array([1 + 2j]))
