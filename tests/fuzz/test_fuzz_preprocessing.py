"""Fuzzing the preprocessing precompile's calldata: every call ends cleanly, within its gas.

Calls go to ``0x…F6`` as random bytes (after a real selector or not), as well-formed calls
of random functions on random Numbers (any int128 value and decimals, mixed lengths), and
as well-formed calls with bytes flipped, cut, inserted or a word overwritten. Whatever the
calldata, a call returns a well-formed ``Number`` / ``Number[]`` with 18 decimals, reverts
with a readable ``Error(string)`` reason that is not an internal error, or runs out of gas
(no data, all its gas). Nothing but py-evm's result ever leaves it.
"""

from __future__ import annotations

import collections

import pytest
from eth_abi import decode, encode
from hypothesis import given
from hypothesis import strategies as st

from fuzz_budget import examples, fuzz_settings, precompile_outcome, report
from ogevm.constants import PREPROCESSING_PRECOMPILE_ADDRESS
from ogevm.precompile.preprocessing import FUNCTIONS, FUNCTIONS_BY_SELECTOR
from ogevm.vm.chain import DevChain
from test_fuzz_precompile import mutated

CASES: collections.Counter[str] = collections.Counter()
GAS_LIMITS = st.one_of(st.integers(0, 5_000), st.integers(5_000, 200_000), st.just(30_000_000))
NUMBER = st.tuples(st.integers(-(2**127), 2**127 - 1),
                   st.one_of(st.integers(-20, 40), st.integers(-(2**127), 2**127 - 1)))
SMALL_NUMBER = st.tuples(st.integers(-1000, 1000), st.integers(0, 6))


@pytest.fixture(scope="module")
def fuzz_chain():
    yield DevChain()
    report("preprocessing", sum(CASES.values()))
    for kind, count in sorted(CASES.items()):
        print(f"  {kind}: {count} calls")


def check_call(chain: DevChain, data: bytes, gas: int, kind: str) -> None:
    """The call ends in a well-formed result, a readable revert or out of gas, within ``gas``."""
    computation = chain.execute_call(PREPROCESSING_PRECOMPILE_ADDRESS, data, gas=gas)
    outcome = precompile_outcome(computation, gas)
    CASES[f"{kind}: {outcome}"] += 1
    if outcome != "success":
        return
    output = bytes(computation.output)
    function = FUNCTIONS_BY_SELECTOR[data[:4]]
    if function.returns_array:
        (numbers,) = decode(["(int128,int128)[]"], output)
    else:
        numbers = decode(["(int128,int128)"], output)
    assert numbers and all(decimals == 18 for _, decimals in numbers)


@st.composite
def valid_calldata(draw) -> bytes:
    """A well-formed call of a random function; both arrays of correlation usually agree in length."""
    function = draw(st.sampled_from(FUNCTIONS))
    size = draw(st.integers(0, 12))
    element = draw(st.sampled_from([NUMBER, SMALL_NUMBER]))
    arrays = [draw(st.lists(element, min_size=size, max_size=size + draw(st.sampled_from([0, 0, 0, 1]))))
              for _ in range(function.arrays)]
    return function.selector + encode(["(int128,int128)[]"] * function.arrays, arrays)


@fuzz_settings(300)
@given(data=st.data())
def test_mutated_valid_calls(fuzz_chain, data):
    original = data.draw(valid_calldata())
    check_call(fuzz_chain, original, data.draw(GAS_LIMITS), "valid")
    check_call(fuzz_chain, data.draw(mutated(original)), data.draw(GAS_LIMITS), "mutated")


@fuzz_settings(200)
@given(data=st.data())
def test_random_bytes(fuzz_chain, data):
    prefix = data.draw(st.sampled_from([b"", *(function.selector for function in FUNCTIONS)]))
    noise = data.draw(st.one_of(st.binary(max_size=512),
                                st.lists(st.sampled_from([bytes(32), b"\xff" * 32, (32).to_bytes(32, "big"),
                                                          (64).to_bytes(32, "big"), (1).to_bytes(32, "big")]),
                                         max_size=12).map(b"".join)))
    check_call(fuzz_chain, prefix + noise, data.draw(GAS_LIMITS), "random bytes")


def test_the_fuzzers_ran_their_cases(fuzz_chain):
    """Runs after the fuzzers in this module: they did run, at least their budget."""
    assert sum(CASES.values()) >= (2 * examples(300) + examples(200)) * 0.9
