"""The precompile seen from Solidity: results, revert reasons, gas, and recovery."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ogevm.abi import (
    InferenceMode,
    ModelInferenceRequest,
    ModelInput,
    Number,
    NumberTensor,
    StringTensor,
    decode_output,
    encode_run_model_inference,
)
from ogevm.abi.codec import MODEL_INFERENCE_EVENT_TOPIC, RUN_MODEL_INFERENCE_SELECTOR, decode_event_data
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.fixtures import fixture_contract
from ogevm.precompile.inference import InferenceReverted

FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]


def x(values, shape, name="x"):
    return NumberTensor(name, tuple(Number(*v) for v in values), tuple(shape))


def request(cid, numbers=(), strings=(), mode=InferenceMode.VANILLA):
    return ModelInferenceRequest(mode, cid, ModelInput(tuple(numbers), tuple(strings)))


def test_forecast_stores_the_prediction_and_emits_events(chain, cids):
    forecast = chain.deploy(fixture_contract("PriceForecast"), cids["linear_regression"], "x", "y")
    result = forecast.transact("forecast", FEATURES)
    assert result.success
    # 0.5*1 - 1.25*2 + 2*3 + 0.75*4 + 0.1 = 7.1 in float32, shortest form
    assert forecast.call("latestPrediction") == (71, 1)
    assert forecast.events(result, "Forecast") == [{"id": 0, "value": 71, "decimals": 1}]
    topic = int.from_bytes(MODEL_INFERENCE_EVENT_TOPIC, "big")
    (log,) = [log for log in result.logs if log.address == INFERENCE_PRECOMPILE_ADDRESS]
    assert log.topics == (topic,)
    inference_id, logged_request, logged_output = decode_event_data(log.data)
    assert inference_id == f"0x{result.tx_hash.hex()}:0"
    assert logged_request.model_cid == cids["linear_regression"]
    assert logged_output.numbers[0].values == (Number(71, 1),)


def test_two_modes_in_one_transaction(chain, cids):
    mixed = chain.deploy(fixture_contract("MixedModes"))
    result = mixed.transact("compareWithModes", cids["linear_regression"], cids["linear_regression"],
                            "x", "y", FEATURES, InferenceMode.VANILLA, InferenceMode.TEE)
    assert result.success
    assert mixed.call("lastA") == mixed.call("lastB") == (71, 1)
    ids = [decode_event_data(log.data)[0] for log in result.logs if log.address == INFERENCE_PRECOMPILE_ADDRESS]
    assert ids == [f"0x{result.tx_hash.hex()}:0", f"0x{result.tx_hash.hex()}:1"]


def test_zkml_on_a_model_without_a_registered_circuit_reverts(chain, cids):
    mixed = chain.deploy(fixture_contract("MixedModes"))
    result = mixed.transact("compareWithModes", cids["linear_regression"], cids["linear_regression"],
                            "x", "y", FEATURES, InferenceMode.VANILLA, InferenceMode.ZKML)
    assert not result.success
    assert "is not enabled for ZKML (no circuit registered)" in result.revert_reason


def test_dependent_call_feeds_the_first_output_to_the_second_model(chain, cids):
    dependent = chain.deploy(fixture_contract("DependentInference"))
    result = dependent.transact("chain", cids["linear_regression"], cids["log_model"], "x", "y", FEATURES)
    assert result.success
    value, decimals = dependent.call("lastResult")
    assert abs(value / 10**decimals - 1.9600948) < 1e-6  # ln(7.1) in float32


def _reason(caller, req):
    ok, reason, _ = caller.call("tryInfer", req)
    assert not ok
    return reason


BAD_REQUESTS = {
    "unknown model": (lambda c: request("bafkreinotamodel", [x(FEATURES, (1, 4))]), "unknown model"),
    "unknown tensor name": (lambda c: request(c["linear_regression"], [x(FEATURES, (1, 4)), x([(1, 0)], (1,), "z")]),
                            "model has no input 'z'"),
    "missing input": (lambda c: request(c["two_inputs"], [x([(1, 0)] * 3, (1, 3), "a")]), "missing input 'b'"),
    "values do not fill the shape": (lambda c: request(c["linear_regression"], [x(FEATURES, (2, 4))]),
                                     "has 4 values but shape [2, 4] needs 8"),
    "shape the model rejects": (lambda c: request(c["linear_regression"], [x(FEATURES, (4, 1))]),
                                "the model expects ['?', 4]"),
    "fixed shape with a batch": (lambda c: request(c["fixed_shape"], [x(FEATURES * 2, (2, 4))]),
                                 "the model expects [1, 4]"),
    "too many elements": (lambda c: request(c["linear_regression"], [x([(0, 0)] * 4, (16385, 4))]),
                          "has 65540 elements; the limit is 65536"),
    "decimals out of range": (lambda c: request(c["linear_regression"], [x([(1, 500)] * 4, (1, 4))]),
                              "decimals 500 outside"),
    "value out of float32 range": (lambda c: request(c["linear_regression"], [x([(1, -39)] * 4, (1, 4))]),
                                   "out of range for float32"),
    "non-integer for an int input": (lambda c: request(c["int_model"], [x([(15, 1), (1, 0)], (1, 2)), x([(1, 0)], (1, 1), "flag")]),
                                     "is not an integer"),
    "string tensor to a numeric input": (lambda c: request(c["linear_regression"], (), [StringTensor("x", ("a",) * 4)]),
                                         "takes tensor(float) but got a string tensor"),
    "number tensor to a string input": (lambda c: request(c["string_input"], [x([(1, 0)], (1,), "text")]),
                                        "takes strings but got a number tensor"),
    "NaN output": (lambda c: request(c["log_model"], [x([(-1, 0)], (1, 1))]), "contains NaN"),
    "infinite output": (lambda c: request(c["log_model"], [x([(0, 0)], (1, 1))]), "contains infinity"),
    "failure inside onnxruntime": (lambda c: request(c["two_inputs"], [x([(1, 0)] * 6, (2, 3), "a"), x([(1, 0)] * 9, (3, 3), "b")]),
                                   "model execution failed"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_revert_with_a_readable_reason_and_the_chain_goes_on(chain, caller, cids, case):
    build, expected = BAD_REQUESTS[case]
    req = build(cids)
    assert expected in _reason(caller, req)
    # the same request in a transaction reverts with the same reason, gas is charged
    result = caller.transact("infer", req)
    assert not result.success and expected in result.revert_reason
    assert result.gas_used > 21_000
    # and the next transaction succeeds
    follow = caller.transact("infer", request(cids["linear_regression"], [x(FEATURES, (1, 4))]))
    assert follow.success


@pytest.mark.parametrize("calldata, expected", [
    (b"\x12\x34\x56\x78" + b"\x00" * 64, "unknown function selector 0x12345678"),
    (RUN_MODEL_INFERENCE_SELECTOR + b"\x00" * 10, "malformed runModelInference calldata"),
    (RUN_MODEL_INFERENCE_SELECTOR + bytes(range(256)), "malformed runModelInference calldata"),
])
def test_malformed_calldata_reverts_with_error_string(chain, caller, calldata, expected):
    result = caller.transact("callRaw", calldata)
    assert result.success  # the harness catches the failed low-level call
    ok, returned = caller.call("callRaw", calldata)
    assert not ok
    from ogevm.abi import decode_revert_reason

    assert expected in decode_revert_reason(returned)


def test_unknown_mode_is_malformed(chain, caller, cids):
    calldata = bytearray(encode_run_model_inference(request(cids["linear_regression"], [x(FEATURES, (1, 4))])))
    calldata[4 + 32 + 31] = 7  # the mode word of the request tuple
    ok, returned = caller.call("callRaw", bytes(calldata))
    from ogevm.abi import decode_revert_reason

    assert not ok and decode_revert_reason(returned) == "unknown inference mode 7"


def test_not_enough_gas_is_out_of_gas_and_burns_the_call_gas(chain, cids):
    calldata = encode_run_model_inference(request(cids["heavy"], [x([(1, 0)] * 64, (1, 64))]))
    computation = chain.execute_call(INFERENCE_PRECOMPILE_ADDRESS, calldata, gas=20_000)
    assert computation.is_error and not isinstance(computation.error, InferenceReverted)
    assert computation.get_gas_remaining() == 0
    ok = chain.execute_call(INFERENCE_PRECOMPILE_ADDRESS, calldata, gas=5_000_000)
    assert not ok.is_error and decode_output(ok.output).numbers[0].name == "y"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), with_selector=st.booleans())
def test_arbitrary_bytes_only_ever_end_in_a_vm_error(chain, data, with_selector):
    calldata = (RUN_MODEL_INFERENCE_SELECTOR if with_selector else b"") + data
    computation = chain.execute_call(INFERENCE_PRECOMPILE_ADDRESS, calldata, gas=1_000_000)
    assert computation.is_error  # random bytes are never a valid request
    assert isinstance(computation.error, InferenceReverted)
