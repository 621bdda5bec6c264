"""Gas bounds every model's work (findings F3 and F9).

Models whose work depends on input values are refused when added; the others are
charged from the concrete shapes of each call, refused over the tensor-size limit
before they run, and stopped past their time budget.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adversarial_models import (
    ADMITTED,
    REFUSED,
    if_two_branches,
    reduce_sum,
    reshape_minus_one,
    transpose_matmul,
    tree_classifier,
    zipmap_without_inputs,
)
from ogevm.abi import InferenceMode, ModelInferenceRequest, ModelInput, Number, NumberTensor, encode_run_model_inference
from ogevm.abi.codec import decode_output, decode_revert_reason
from ogevm.constants import (
    GAS_INFERENCE_BASE,
    GAS_INFERENCE_PER_WORD,
    GAS_MODEL_BASE,
    INFERENCE_PRECOMPILE_ADDRESS,
    MAX_MODEL_TENSOR_ELEMENTS,
    MODEL_OPS_PER_GAS,
)
from ogevm.errors import InvalidInput, InvalidModel, ModelExecutionError
from ogevm.models import ModelRuntime, ModelStore, inspect_model
from ogevm.models.binding import bind_inputs, model_gas, samples
from ogevm.models.cost import Polynomial
from ogevm.vm.chain import DevChain


def zeros(name: str, shape: tuple[int, ...]) -> NumberTensor:
    return NumberTensor(name, (Number(0, 0),) * math.prod(shape), shape)


def model_input(*tensors: NumberTensor) -> ModelInput:
    return ModelInput(tuple(tensors), ())


def charged(info, *tensors: NumberTensor) -> int:
    """Model gas the precompile charges for this input."""
    return model_gas(info, bind_inputs(info, model_input(*tensors)))


def call(chain: DevChain, cid: str, *tensors: NumberTensor, gas: int = 30_000_000):
    data = encode_run_model_inference(ModelInferenceRequest(InferenceMode.VANILLA, cid, model_input(*tensors)))
    return data, chain.execute_call(INFERENCE_PRECOMPILE_ADDRESS, data, gas=gas)


# --- admission ----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_models_whose_work_depends_on_input_values_are_refused(name):
    build, phrase = REFUSED[name]
    with pytest.raises(InvalidModel, match="^model cost is not bounded by its input shapes: ") as caught:
        ModelStore().add(build())
    assert phrase in caught.value.reason


@pytest.mark.parametrize("name", sorted(ADMITTED))
def test_models_bounded_by_their_input_shapes_are_admitted(name):
    info = ModelStore().add(ADMITTED[name]())
    assert info.gas_per_sample >= GAS_MODEL_BASE


def test_free_dimensions_stay_symbols():
    info = inspect_model(transpose_matmul())
    assert info.cost.dimensions == (("n", "x", 0), ("d", "x", 1))
    # Transpose moves n*d elements twice; MatMul [d, n] x [n, d] is 2*d*n*d
    assert str(info.cost.ops) == "2*d*n + 2*d^2*n"


@pytest.mark.parametrize("target", [[-1, 2, 2], [-1], [2, -1], [0, 2, -1]])
def test_a_reshape_to_a_constant_shape_with_minus_one_is_resolved(target):
    """[n, 4] -> [-1, 2, 2] is [n, 2, 2]: the -1 becomes an input symbol, or a polynomial of
    them, and the ops after it are charged from the call's shape like any other."""
    info = inspect_model(reshape_minus_one(target))
    assert [str(size) for size in info.cost.tensors] == ["4*n"]
    assert str(info.cost.ops).endswith("16*n")  # reshape and relu each read and write 4*n
    assert charged(info, zeros("x", (64, 4))) > charged(info, zeros("x", (1, 4)))


def test_a_reshape_whose_minus_one_is_not_exact_is_refused():
    with pytest.raises(InvalidModel, match="output of Reshape node"):
        inspect_model(reshape_minus_one([-1, 3]))  # 4*n elements in rows of 3: depends on n


def test_tree_ensembles_are_charged_per_node_and_row():
    info = inspect_model(tree_classifier())
    # 2 x rows x 3 tree nodes, plus the label and score elements
    assert str(info.cost.ops) == "10*n"
    assert [str(size) for size in info.cost.tensors] == ["3*n", "n"]


# --- charged from the call's shapes ---------------------------------------------------
def test_transpose_matmul_is_charged_quadratically_in_the_free_dimension():
    info = inspect_model(transpose_matmul())
    gas = {d: charged(info, zeros("x", (1, d))) - GAS_MODEL_BASE for d in (512, 1024, 2048, 4096)}
    for d in (1024, 2048, 4096):
        assert gas[d] == math.ceil((2 * d + 2 * d * d) / MODEL_OPS_PER_GAS)
        assert 3.9 < gas[d] / gas[d // 2] <= 4.0
    # the old schedule charged every row the same: one gas per 1,000 output elements at d=1
    assert gas[4096] > 33_000


def test_a_reduction_is_charged_for_its_input():
    info = inspect_model(reduce_sum())
    assert charged(info, zeros("x", (1, 65_536))) == GAS_MODEL_BASE + math.ceil((65_536 + 1) / MODEL_OPS_PER_GAS)


@pytest.mark.parametrize("condition", [0, 1])
def test_if_is_charged_for_both_branches(condition):
    info = inspect_model(if_two_branches())
    d = 64
    gas = charged(info, NumberTensor("c", (Number(condition, 0),), ()), zeros("x", (d, d)))
    assert gas == GAS_MODEL_BASE + math.ceil((1 + 2 * d**3 + 4 * d**2) / MODEL_OPS_PER_GAS)


def test_the_precompile_charges_the_concrete_shapes(fixture_store, cids):
    chain = DevChain(fixture_store)
    info = fixture_store[cids["heavy"]]
    for rows in (1, 3):
        data, computation = call(chain, info.cid, zeros("x", (rows, 64)))
        assert not computation.is_error
        model = rows * GAS_MODEL_BASE + math.ceil(info.cost.ops({"batch": rows}) / MODEL_OPS_PER_GAS)
        words = GAS_INFERENCE_BASE + GAS_INFERENCE_PER_WORD * math.ceil(len(data) / 32)
        event = computation.get_gas_used() - words - model
        assert 750 < event < 750 + 8 * len(data) + 8 * 2048, "only the event is left"


def test_a_call_over_the_tensor_limit_reverts_before_the_model_runs():
    chain = DevChain()
    info = chain.add_model(transpose_matmul())
    d = 8192  # x^T x is [8192, 8192]: 4x the limit, from a 8,192-element input
    with pytest.raises(InvalidInput, match="tensor of 67108864 elements"):
        charged(info, zeros("x", (1, d)))
    _, computation = call(chain, info.cid, zeros("x", (1, d)))
    assert computation.is_error
    assert decode_revert_reason(bytes(computation.output)) == (
        f"the model would compute a tensor of {d * d} elements at these input shapes; "
        f"the limit is {MAX_MODEL_TENSOR_ELEMENTS}"
    )


# --- finding F9: models without inputs ---------------------------------------------------
def test_a_model_without_inputs_has_one_row_and_runs_cleanly():
    chain = DevChain()
    info = chain.add_model(zipmap_without_inputs())
    assert info.inputs == () and samples(info, model_input()) == 1
    assert model_gas(info, {}) == GAS_MODEL_BASE + 1
    _, computation = call(chain, info.cid)
    assert not computation.is_error
    output = decode_output(bytes(computation.output))
    assert [(j.name, j.value) for j in output.jsons] == [("p", '[{"0":0.25,"1":0.75}]')]


# --- the time budget ---------------------------------------------------------------------
def test_a_run_past_its_time_budget_is_stopped(fixture_store, cids):
    info = fixture_store[cids["heavy"]]
    feeds = {"x": np.zeros((32, 64), dtype=np.float32)}
    strict = ModelRuntime(fixture_store, min_seconds=0.02, budget_factor=0)
    with pytest.raises(ModelExecutionError, match=r"^model execution stopped: it ran past its time budget of 0.02 s$"):
        strict.run_raw(info, feeds)
    # the session survives a stopped run, and the default budget lets the run finish
    assert strict.time_budget(info, {"x": feeds["x"][:1]}) == 0.02
    small = {"x": np.zeros((1, 64), dtype=np.float32)}
    assert ModelRuntime(fixture_store).run_raw(info, small)[0].shape == (1, 1)


def test_a_stopped_run_reverts_the_call(fixture_store, cids):
    chain = DevChain(fixture_store)
    chain.runtime.min_seconds, chain.runtime.budget_factor = 0.02, 0
    _, computation = call(chain, cids["heavy"], zeros("x", (32, 64)))
    assert computation.is_error
    assert decode_revert_reason(bytes(computation.output)).startswith("model execution stopped: ")


def test_the_default_budget_is_far_above_what_gas_pays_for(fixture_store, cids):
    info = fixture_store[cids["heavy"]]
    runtime = ModelRuntime(fixture_store)
    feeds = {"x": np.zeros((64, 64), dtype=np.float32)}
    assert runtime.time_budget(info, feeds) == pytest.approx(max(1.0, 100 * model_gas(info, feeds) * 100e-9))


# --- polynomials ---------------------------------------------------------------------------
symbols = st.sampled_from(["a", "b", "c"])
polynomials = st.lists(
    st.tuples(st.integers(-5, 5), st.lists(symbols, max_size=3)), max_size=4,
).map(lambda terms: sum(
    (math.prod((Polynomial.symbol(s) for s in names), start=Polynomial.constant(c)) for c, names in terms),
    Polynomial(),
))
values = st.fixed_dictionaries({name: st.integers(0, 1000) for name in "abc"})


@settings(max_examples=200, deadline=None)
@given(polynomials, polynomials, values)
def test_polynomial_arithmetic_agrees_with_evaluation(p, q, at):
    assert (p + q)(at) == p(at) + q(at)
    assert (p * q)(at) == p(at) * q(at)
    assert (p * 3)(at) == 3 * p(at)
