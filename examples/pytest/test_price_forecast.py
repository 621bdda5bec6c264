"""A complete test suite for SolidML's PriceForecast example, with the ogevm pytest plugin.

Run: ``pytest examples/pytest`` (the plugin's fixtures start with ``ogevm_``).
"""

import json
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ogevm.abi import ModelOutput, Number, NumberTensor
from ogevm.errors import TransactionFailed

FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]  # 0.5 - 2.5 + 6 + 3 + 0.1 = 7.1
WEIGHTS, BIAS = (Fraction(1, 2), Fraction(-5, 4), Fraction(2), Fraction(3, 4)), Fraction(1, 10)


def price(value: int, decimals: int) -> ModelOutput:
    """What the model returns for a price of ``value * 10**-decimals``."""
    return ModelOutput((NumberTensor("y", (Number(value, decimals),), (1, 1)),), (), (), False)


# --- in-process chain (ogevm_chain) --------------------------------------------------------
def test_a_forecast_is_stored_and_announced(forecast):
    result = forecast.transact("forecast", FEATURES)
    assert result.success
    assert forecast.call("latestPrediction") == (71, 1)
    assert forecast.call("predictionCount") == (1,)
    assert forecast.events(result, "Forecast") == [{"id": 0, "value": 71, "decimals": 1}]


def test_each_test_gets_a_fresh_chain(ogevm_chain, ogevm_accounts, forecast):
    assert ogevm_chain.nonce(ogevm_accounts[0].address) == 1  # only this test's deployment
    assert forecast.call("predictionCount") == (0,)


def test_a_negative_price_from_a_mocked_model(ogevm_chain, forecast, model_cid):
    ogevm_chain.mock_inference(model_cid, price(-125, 1))
    forecast.transact("forecast", FEATURES)
    assert forecast.call("latestPrediction") == (-125, 1)


def test_a_model_producing_nan_reverts_the_forecast(ogevm_chain, forecast, model_cid):
    ogevm_chain.mock_inference(model_cid, error="output 'y' contains NaN")
    result = forecast.transact("forecast", FEATURES)
    assert not result.success and result.revert_reason == "output 'y' contains NaN"
    with pytest.raises(TransactionFailed, match="NaN"):
        forecast.call("forecastView", FEATURES)
    assert forecast.call("predictionCount") == (0,)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_forecast_view_follows_the_model_for_any_input(forecast, model_cid, ogevm_inputs, data):
    """forecastView changes nothing, so one chain serves every example. The model computes in
    float32: its error is bounded by a few float32 epsilons (2^-24) of the sum of the terms' sizes."""
    features = data.draw(ogevm_inputs(model_cid)).numbers[0].values
    value, decimals = forecast.call("forecastView", features)[0]
    terms = [w * Fraction(v, 10**d) for w, (v, d) in zip(WEIGHTS, features)] + [BIAS]
    tolerance = Fraction(1, 10**6) * (sum(abs(t) for t in terms) + 1)
    assert abs(Fraction(value, 10**decimals) - sum(terms)) <= tolerance


# --- a dev node over JSON-RPC (ogevm_node) ---------------------------------------------------
@pytest.fixture
def w3(ogevm_node):
    web3 = pytest.importorskip("web3")
    return web3.Web3(web3.Web3.HTTPProvider(ogevm_node.url))


def deploy_on_node(w3, ogevm_node, artifact, model_path):
    """Add the model and deploy PriceForecast through the node's JSON-RPC (dev account 0)."""
    cid = ogevm_node.rpc("og_addModel", "0x" + model_path.read_bytes().hex())
    compiled = json.loads(artifact.read_text())
    factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    tx_hash = factory.constructor(cid, "x", "y").transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    return cid, w3.eth.contract(address=receipt.contractAddress, abi=compiled["abi"])


@pytest.mark.parametrize("run", [1, 2])
def test_each_node_test_starts_from_the_same_snapshot(w3, ogevm_node, artifact, model_path, run):
    assert w3.eth.get_transaction_count(w3.eth.accounts[0]) == 0  # the other run's deployment was reverted
    cid, contract = deploy_on_node(w3, ogevm_node, artifact, model_path)
    assert contract.functions.forecastView(FEATURES).call() == (71, 1)
    ogevm_node.rpc("og_mockInference", cid, {"numbers": [{"name": "y", "shape": [1, 1], "values": [[-3, 0]]}]})
    tx_hash = contract.functions.forecast(FEATURES).transact({"from": w3.eth.accounts[0]})
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05).status == 1
    assert contract.functions.latestPrediction().call() == [-3, 0]
