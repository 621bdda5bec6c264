"""The preprocessing precompile at ``0x…F6``: every function against the independent reference
of ``fixtures/make_preprocessing_vectors.py`` (fractions and decimal, written from the spec),
properties that need no reference, every revert, exact gas, the conformance vectors, and
contracts calling it on a real chain, INLINE and through PIPE."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from eth_abi import decode
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ogevm.abi import InferenceMode, ModelInferenceRequest, ModelInput, Number, NumberTensor
from ogevm.abi.codec import decode_output, decode_revert_reason, encode_revert_reason, encode_run_model_inference
from ogevm.constants import (
    INFERENCE_PRECOMPILE_ADDRESS,
    MAX_ABS_DECIMALS,
    MAX_PREPROCESSING_ELEMENTS,
    PREPROCESSING_PRECOMPILE_ADDRESS,
)
from ogevm.fixtures import FIXTURES, fixture_contract
from ogevm.pipe.pipeline import Pipeline
from ogevm.vm.chain import DevChain

from fixture_scripts import fixture_script

ARRAY = "(int128,int128)[]"
UNIT = 10**18
FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]


REF = fixture_script("make_preprocessing_vectors.py")
FUNCTIONS = sorted(REF.ARITY)


@pytest.fixture(scope="module")
def bare_chain() -> DevChain:
    """A chain with no models: the preprocessing precompile needs none."""
    return DevChain()


def call(chain: DevChain, data: bytes, gas: int = 10_000_000):
    """(success, return or revert data, gas used) of a bare message call to ``0x…F6``."""
    computation = chain.execute_call(PREPROCESSING_PRECOMPILE_ADDRESS, data, gas=gas)
    return not computation.is_error, bytes(computation.output), computation.get_gas_used()


def expected(name: str, arrays) -> tuple[bool, bytes, int]:
    """What the reference says the call does."""
    try:
        output, gas = REF.reference(name, arrays)
        return True, output, gas
    except REF.Revert as exc:
        return False, encode_revert_reason(exc.reason), exc.charged


def units(name: str, output: bytes):
    """The result(s) in units of 10^-18, checking every decimals field is 18."""
    if name in REF.ARRAY_RESULTS:
        (numbers,) = decode([ARRAY], output)
        assert all(d == 18 for _, d in numbers)
        return [v for v, _ in numbers]
    ((value, decimals),) = decode(["(int128,int128)"], output)
    assert decimals == 18
    return value


def run(chain, name, *arrays):
    success, output, _ = call(chain, REF.calldata(name, *arrays))
    assert success, decode_revert_reason(output)
    return units(name, output)


# --- strategies ---------------------------------------------------------------------------
moderate = st.tuples(st.integers(-10**9, 10**9), st.integers(-3, 12))
wild = st.tuples(st.integers(-(2**127), 2**127 - 1), st.integers(-MAX_ABS_DECIMALS, MAX_ABS_DECIMALS))
numbers = st.one_of(moderate, wild)


def arrays_of(size: int) -> st.SearchStrategy:
    """Arrays of ``size`` Numbers: all moderate, all extreme (overflows, decimals up to ±400), or mixed."""
    return st.one_of(*(st.lists(element, min_size=size, max_size=size) for element in (moderate, wild, numbers)))


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def value(number) -> Fraction:
    v, d = number
    return Fraction(v) / Fraction(10) ** d


# --- against the reference ------------------------------------------------------------------
@FAST
@given(data=st.data(), name=st.sampled_from(FUNCTIONS), size=st.integers(1, 9))
def test_every_function_matches_the_reference(bare_chain, data, name, size):
    arrays = [data.draw(arrays_of(size)) for _ in range(REF.ARITY[name])]
    assert call(bare_chain, REF.calldata(name, *arrays)) == expected(name, arrays)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_small_literal_inputs(bare_chain, name):
    xs = REF.nums("3.25", "-1", "0.5", "12", "-7.125", "2")
    ys = REF.nums("1", "0.001", "-4", "8", "2.5", "3")
    arrays = [xs, ys][:REF.ARITY[name]]
    assert call(bare_chain, REF.calldata(name, *arrays)) == expected(name, arrays)


def test_known_values(bare_chain):
    """Textbook figures, by hand: population statistics, median of an even count, min-max."""
    classic = REF.nums("2", "4", "4", "4", "5", "5", "7", "9")
    assert run(bare_chain, "mean", classic) == 5 * UNIT
    assert run(bare_chain, "variance", classic) == 4 * UNIT  # population: divides by n
    assert run(bare_chain, "stdDev", classic) == 2 * UNIT
    assert run(bare_chain, "median", classic) == 45 * UNIT // 10
    assert run(bare_chain, "standardize", classic) == [-15 * UNIT // 10] + [-UNIT // 2] * 3 + [0, 0, UNIT, 2 * UNIT]
    assert run(bare_chain, "normalize", REF.nums("0", "1", "3")) == [0, 333333333333333333, UNIT]
    assert run(bare_chain, "stdDev", REF.nums("1", "2", "3")) == 816496580927726033  # sqrt(2/3)
    assert run(bare_chain, "correlation", REF.nums("1", "2", "3"), REF.nums("30", "20", "10")) == -UNIT


def test_ties_round_to_even(bare_chain):
    assert run(bare_chain, "mean", [(5, 19)]) == 0
    assert run(bare_chain, "mean", [(15, 19)]) == 2
    assert run(bare_chain, "mean", [(-15, 19)]) == -2
    assert run(bare_chain, "mean", [(25, 19)]) == 2
    assert run(bare_chain, "stdDev", [(0, 0), (1, 18)]) == 0  # exactly 0.5e-18
    assert run(bare_chain, "stdDev", [(0, 0), (3, 18)]) == 2  # exactly 1.5e-18
    assert run(bare_chain, "mean", [(16, 19)]) == 2  # not a tie: nearest


# --- properties that need no reference ------------------------------------------------------
@FAST
@given(xs=arrays_of(5) | st.lists(moderate, min_size=1, max_size=12))
def test_order_statistics_are_consistent(bare_chain, xs):
    results = {}
    for name in ("min", "max", "median", "mean"):
        success, output, _ = call(bare_chain, REF.calldata(name, xs))
        if not success:  # only a result beyond int128 may fail here
            assert decode_revert_reason(output) == f"{name}: the result does not fit int128 with 18 decimals"
            return
        results[name] = units(name, output)
    assert results["min"] <= results["median"] <= results["max"]
    assert results["min"] <= results["mean"] <= results["max"]
    assert results["min"] == round(min(map(value, xs)) * UNIT)


@FAST
@given(xs=st.lists(moderate, min_size=2, max_size=10), shift=moderate, scale=st.integers(-5, 5),
       order=st.randoms(use_true_random=False))
def test_standardize_is_invariant_under_shift_scale_and_order(bare_chain, xs, shift, scale, order):
    success, output, _ = call(bare_chain, REF.calldata("standardize", xs))
    if not success:
        assert decode_revert_reason(output) == "standardize: the input has zero variance"
        assert len({value(x) for x in xs}) == 1
        return
    z = units("standardize", output)
    # x -> (x + shift) * 10^scale, written exactly: same z-scores, bit for bit
    s_value, s_decimals = shift
    top = max(d for _, d in xs + [shift])
    moved = [(v * 10 ** (top - d) + s_value * 10 ** (top - s_decimals), top + scale) for v, d in xs]
    assert run(bare_chain, "standardize", moved) == z
    permutation = list(range(len(xs)))
    order.shuffle(permutation)
    assert run(bare_chain, "standardize", [xs[i] for i in permutation]) == [z[i] for i in permutation]
    assert 2 * abs(sum(z)) <= len(z)  # the exact z-scores sum to 0; each is off by at most half a unit


@FAST
@given(xs=st.lists(moderate, min_size=2, max_size=10))
def test_normalize_maps_min_to_0_and_max_to_1(bare_chain, xs):
    exact = [value(x) for x in xs]
    if len(set(exact)) == 1:
        return
    y = run(bare_chain, "normalize", xs)
    assert all(0 <= k <= UNIT for k in y)
    assert y[exact.index(min(exact))] == 0 and y[exact.index(max(exact))] == UNIT
    assert all(y[i] <= y[j] for i in range(len(xs)) for j in range(len(xs)) if exact[i] < exact[j])


@FAST
@given(data=st.data(), size=st.integers(2, 8))
def test_correlation_is_symmetric_and_bounded(bare_chain, data, size):
    xs, ys = data.draw(st.lists(moderate, min_size=size, max_size=size)), data.draw(
        st.lists(moderate, min_size=size, max_size=size))
    forward = call(bare_chain, REF.calldata("correlation", xs, ys))
    backward = call(bare_chain, REF.calldata("correlation", ys, xs))
    assert forward[0] == backward[0]
    if forward[0]:
        r = units("correlation", forward[1])
        assert r == units("correlation", backward[1]) and -UNIT <= r <= UNIT
        if len({value(x) for x in xs}) > 1:
            assert run(bare_chain, "correlation", xs, xs) == UNIT


# --- reverts ----------------------------------------------------------------------------------
def word(n: int) -> bytes:
    return n.to_bytes(32, "big", signed=n < 0)


MEAN12 = REF.calldata("mean", REF.nums("1", "2"))
REVERTS = {
    "unknown selector": (b"\xde\xad\xbe\xef" + MEAN12[4:], "unknown function selector 0xdeadbeef"),
    "short selector": (b"\x01\x02", "unknown function selector 0x0102"),
    "not whole words": (MEAN12 + b"\x00", "malformed mean calldata"),
    "offset not canonical": (MEAN12[:4] + word(0x40) + MEAN12[36:], "malformed mean calldata"),
    "offset far away": (MEAN12[:4] + word(2**255) + MEAN12[36:], "malformed mean calldata"),
    "huge length": (MEAN12[:4] + word(32) + word(2**256 - 1), "malformed mean calldata"),
    "dirty int128 word": (MEAN12[:4] + word(32) + word(1) + word(2**200) + word(0), "malformed mean calldata"),
    "decimals word beyond int128": (MEAN12[:4] + word(32) + word(1) + word(1) + word(-(2**127) - 1),
                                    "malformed mean calldata"),
    "correlation's second offset": (REF.calldata("correlation", [(1, 0)], [(2, 0)])[:36] + word(0x20) +
                                    REF.calldata("correlation", [(1, 0)], [(2, 0)])[68:],
                                    "malformed correlation calldata"),
}


@pytest.mark.parametrize("case", sorted(REVERTS))
def test_malformed_calldata_reverts_after_the_base_charge(bare_chain, case):
    data, reason = REVERTS[case]
    assert call(bare_chain, data) == (False, encode_revert_reason(reason), REF.reference_gas_base(data))


ARGUMENT_REVERTS = {
    "empty": ("median", [[]], "median: the input is empty"),
    "empty X": ("correlation", [[], [(1, 0)]], "correlation: X is empty"),
    "length mismatch": ("correlation", [[(1, 0)] * 3, [(1, 0)] * 4], "correlation: X has 3 elements but Y has 4"),
    "decimals too large": ("mean", [[(1, 0), (1, 0), (1, 401)]],
                           "mean: element 2 of the input has decimals 401 outside [-400, 400]"),
    "decimals too small": ("min", [[(1, -401)]], "min: element 0 of the input has decimals -401 outside [-400, 400]"),
    "too many elements": ("normalize", [[(1, 0)] * (MAX_PREPROCESSING_ELEMENTS + 1)],
                          "normalize: the input has 4097 elements; the limit is 4096"),
    "too many elements in Y": ("correlation", [[(1, 0)], [(1, 0)] * (MAX_PREPROCESSING_ELEMENTS + 1)],
                               "correlation: Y has 4097 elements; the limit is 4096"),
    "zero variance": ("standardize", [REF.nums("1.5", "1.50", "1.500")], "standardize: the input has zero variance"),
    "zero range": ("normalize", [[(-3, 0)] * 2], "normalize: the input has zero range (all elements are equal)"),
    "X zero variance": ("correlation", [[(2, 0)] * 2, [(1, 0), (2, 0)]], "correlation: X has zero variance"),
    "overflow": ("max", [[(2**127 - 1, 17)]], "max: the result does not fit int128 with 18 decimals"),
    "negative overflow": ("mean", [[(-(2**127), 0)]], "mean: the result does not fit int128 with 18 decimals"),
    "variance overflow": ("variance", [[(0, 0), (2**127 - 1, 0)]],
                          "variance: the result does not fit int128 with 18 decimals"),
}


@pytest.mark.parametrize("case", sorted(ARGUMENT_REVERTS))
def test_bad_arguments_revert_with_a_readable_reason(bare_chain, case):
    name, arrays, reason = ARGUMENT_REVERTS[case]
    success, output, gas = call(bare_chain, REF.calldata(name, *arrays))
    assert not success and decode_revert_reason(output) == reason
    assert (success, output, gas) == expected(name, arrays)


def test_the_largest_input_is_served(bare_chain):
    xs = [(i * 7919 % 1000 - 500, i % 19) for i in range(MAX_PREPROCESSING_ELEMENTS)]
    for name in ("median", "normalize"):
        assert call(bare_chain, REF.calldata(name, xs)) == expected(name, [xs])


# --- gas --------------------------------------------------------------------------------------
def test_gas_by_hand(bare_chain):
    """mean of three: 260 bytes of calldata = 9 words; 500 + 12 * 9 + 200 * 3."""
    assert call(bare_chain, REF.calldata("mean", REF.nums("1", "2", "3")))[2] == 500 + 12 * 9 + 200 * 3
    # median of 5: + 4 * 5 * bit_length(4) comparisons; standardize of 5: + 300 per element
    assert call(bare_chain, REF.calldata("median", [(1, 0)] * 5))[2] == 500 + 12 * 13 + 200 * 5 + 4 * 5 * 3
    assert call(bare_chain, REF.calldata("standardize", REF.nums("1", "2", "3", "4", "5")))[2] == \
        500 + 12 * 13 + (200 + 300) * 5


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_gas_follows_the_formula_and_one_less_is_out_of_gas(bare_chain, name, n):
    arrays = [[(i * (k + 3) % 11 - 5, i % 4) for i in range(n)] for k in range(REF.ARITY[name])]
    data = REF.calldata(name, *arrays)
    success, _, gas = call(bare_chain, data)
    # every failure left here (zero variance or range) comes after the work is charged
    assert gas == REF.reference_gas_base(data) + REF.reference_gas_work(name, n)
    assert (success, gas) == expected(name, arrays)[::2]
    assert call(bare_chain, data, gas=gas - 1) == (False, b"", gas - 1)  # out of gas: no data, all gas


# --- conformance vectors --------------------------------------------------------------------------
VECTORS = json.loads((FIXTURES / "vectors" / "preprocessing.json").read_text(encoding="utf-8"))


def test_the_vector_file_describes_this_precompile():
    assert VECTORS["precompile"] == "0x" + bytes(PREPROCESSING_PRECOMPILE_ADDRESS).hex()
    assert VECTORS["selectors"] == {signature: "0x" + keccak(text=signature)[:4].hex()
                                    for signature in VECTORS["selectors"]}
    assert len(VECTORS["selectors"]) == 9
    names = [v["name"] for v in VECTORS["vectors"]]
    assert len(names) == len(set(names)) and len(names) >= 30
    assert {v["function"] for v in VECTORS["vectors"] if v["expected"]["success"]} == set(FUNCTIONS)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=[v["name"] for v in VECTORS["vectors"]])
def test_vector(bare_chain, vector):
    expect = vector["expected"]
    success, output, gas = call(bare_chain, bytes.fromhex(vector["calldata"][2:]), gas=vector["gas_limit"])
    assert (success, "0x" + output.hex(), gas) == (expect["success"], expect["output"], expect["gas_used"])
    assert (None if success or not output else decode_revert_reason(output)) == expect["revert_reason"]


def test_the_generator_reproduces_the_committed_file():
    assert REF.main(["--check"], write=lambda _: None) == 0


# --- contracts ----------------------------------------------------------------------------------
def z_scores(features) -> tuple[Number, ...]:
    output, _ = REF.reference("standardize", [features])
    return tuple(Number(v, d) for v, d in decode([ARRAY], output)[0])


def model_call(cid: str, features) -> ModelInferenceRequest:
    tensor = NumberTensor("x", z_scores(features), (1, len(features)))
    return ModelInferenceRequest(InferenceMode.VANILLA, cid, ModelInput((tensor,), ()))


def test_standardized_forecast_feeds_the_z_scores_to_the_model(chain, cids):
    forecast = chain.deploy(fixture_contract("StandardizedForecast"), cids["linear_regression"], "x", "y")
    result = forecast.transact("forecast", FEATURES)
    assert result.success, result.revert_reason
    direct = decode_output(chain.call(INFERENCE_PRECOMPILE_ADDRESS,
                                      encode_run_model_inference(model_call(cids["linear_regression"], FEATURES))))
    prediction = direct.numbers[0].values[0]
    assert forecast.call("latestPrediction") == tuple(prediction)
    assert forecast.events(result, "Forecast") == [{"id": 0, "value": prediction.value,
                                                    "decimals": prediction.decimals}]
    z = [-3 / 5**0.5, -1 / 5**0.5, 1 / 5**0.5, 3 / 5**0.5]  # of 1, 2, 3, 4: mean 2.5, stdDev sqrt(1.25)
    y = 0.5 * z[0] - 1.25 * z[1] + 2 * z[2] + 0.75 * z[3] + 0.1
    assert abs(prediction.value / 10**prediction.decimals - y) < 1e-5


def test_standardized_forecast_bubbles_up_the_precompile_reason(chain, cids):
    forecast = chain.deploy(fixture_contract("StandardizedForecast"), cids["linear_regression"], "x", "y")
    result = forecast.transact("forecast", [(2, 0)] * 4)
    assert not result.success
    assert result.revert_reason == "standardize: the input has zero variance"
    assert forecast.call("predictionCount") == (0,)


def test_standardized_forecast_through_pipe_uses_the_same_z_scores_in_every_pass(fixture_store, cids):
    """Simulation, execution of the request and the builder's replay see one standardization:
    the committed request is the model call on the reference z-scores, in one round."""
    chain = DevChain(fixture_store)
    forecast = chain.deploy(fixture_contract("StandardizedForecast"), cids["linear_regression"], "x", "y")
    pipeline = Pipeline(chain)
    features = REF.nums("101.5", "99.25", "100", "104.125")
    data = forecast.interface.function("forecast").encode(features)
    tx = chain.sign(0, forecast.address, data, gas=2_000_000)
    pipeline.submit(tx)
    entry = pipeline.pool.get(tx.hash)
    (built,) = pipeline.run_until_idle()
    (record,) = built.records
    call_data = encode_run_model_inference(model_call(cids["linear_regression"], features))
    assert record.result.digest == keccak(call_data)
    assert entry.rounds == 1
    assert built.computations[0].is_success
    assert forecast.call("latestPrediction") == tuple(record.result.output.numbers[0].values[0])
