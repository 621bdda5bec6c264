"""og_mockInference / og_clearMocks on a real node: eth_call and PIPE blocks answer the mock,
the block's record is signed by the mock key, and bad params are refused with -32602."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ogevm.node.params import ParamError
from ogevm.node.rpc.mock import mock_outcome
from ogevm.pipe.mocks import MOCK_NODE

from node_helpers import JsonRpcError, artifact, model_bytes

web3 = pytest.importorskip("web3", reason="web3.py is not installed")
from web3 import Web3  # noqa: E402

FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]  # linear_regression: 7.1
NEGATIVE = {"numbers": [{"name": "y", "shape": [1, 1], "values": [[-125, 1]]}]}


@pytest.fixture
def forecast(node, funded_key):
    """PriceForecast on the shared node; every mock is cleared afterwards."""
    w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 30}))
    cid = node.rpc("og_addModel", "0x" + model_bytes("linear_regression").hex())
    art = artifact("PriceForecast")
    account = w3.eth.account.from_key(funded_key)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor(cid, "x", "y").build_transaction({"from": account.address, "nonce": 0})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), timeout=30, poll_latency=0.05)
    contract = w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])
    yield w3, account, contract, cid
    node.rpc("og_clearMocks")


def test_a_mock_answers_calls_and_pipe_blocks_until_cleared(node, forecast):
    w3, account, contract, cid = forecast
    assert contract.functions.forecastView(FEATURES).call() == (71, 1)
    assert node.rpc("og_mockInference", cid, NEGATIVE) is True
    assert contract.functions.forecastView(FEATURES).call() == (-125, 1)
    tx = contract.functions.forecast(FEATURES).build_transaction({"from": account.address, "nonce": 1})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05).status == 1
    assert contract.functions.latestPrediction().call() == [-125, 1]
    (record,) = node.rpc("og_getInferenceRecords", "0x" + bytes(tx_hash).hex())
    assert record["node"] == "0x" + MOCK_NODE.hex() and record["output"]["numbers"][0]["values"] == [[-125, 1]]
    # a mock for this input only (its digest, as the record shows it) wins over the one for any input
    assert node.rpc("og_mockInference", cid, {"error": "model down"}, record["digest"]) is True
    with pytest.raises(web3.exceptions.ContractLogicError, match="model down"):
        contract.functions.forecastView(FEATURES).call()
    assert contract.functions.forecastView([(2, 0), (2, 0), (3, 0), (4, 0)]).call() == (-125, 1)
    assert node.rpc("og_clearMocks", cid) == 2
    assert contract.functions.forecastView(FEATURES).call() == (71, 1)


@pytest.mark.parametrize("params, fragment", [
    (["bafkunknown", NEGATIVE], "modelCid: unknown model: add it first"),
    ([None, NEGATIVE], "modelCid: missing"),
    (["{cid}", None], "output: missing"),
    (["{cid}", {"numbers": [{"name": "y", "values": [[1]]}]}], "output: numbers[0].values"),
    (["{cid}", {"error": 5}], "output.error: must be a string"),
    (["{cid}", {"error": ""}], "output: a mocked error"),
    (["{cid}", "7.1"], "output: an output is an object"),
    (["{cid}", NEGATIVE, "0x1234"], "inputDigest: must be 32 bytes"),
    (["{cid}", NEGATIVE, None, 1], "params: too many"),
])
def test_bad_mocks_are_refused_with_the_parameter_named(node, params, fragment):
    cid = node.rpc("og_addModel", "0x" + model_bytes("linear_regression").hex())
    params = [p.format(cid=cid) if isinstance(p, str) else p for p in params]
    with pytest.raises(JsonRpcError) as refused:
        node.rpc("og_mockInference", *params)
    assert refused.value.code == -32602 and fragment in refused.value.message
    assert node.rpc("og_clearMocks") == 0
    with pytest.raises(JsonRpcError) as bad:
        node.rpc("og_clearMocks", 5)
    assert bad.value.code == -32602


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["numbers", "strings", "jsons", "error", "name", "values", "shape", "value"]), inner,
        max_size=4),
    max_leaves=20)


@given(json_values)
def test_any_json_is_a_mock_or_a_named_refusal(value):
    try:
        output, error = mock_outcome(value, "output")
    except ParamError as exc:
        assert exc.name.startswith("output") and exc.reason
    else:
        assert (output is None) != (error is None)


def test_a_language_model_is_mocked_by_name_with_a_reply_in_record_form(node):
    """The reply a record carries (``og_getInferenceRecords``' output shape) mocks an LLM call."""
    from ogevm.abi.llm import LLMCompletionRequest, LLMInferenceMode, decode_completion_response, encode_llm_completion

    call = {"to": "0x" + "00" * 19 + "f4", "data": "0x" + encode_llm_completion(
        LLMCompletionRequest(LLMInferenceMode.VANILLA, "tiny_chat", "The price of ", 20, (), 0)).hex()}
    try:
        assert node.rpc("og_mockInference", "tiny_chat", {"strings": [{"name": "answer", "values": ["mocked"]}]})
        assert decode_completion_response(bytes.fromhex(node.rpc("eth_call", call, "latest")[2:])) == "mocked"
        assert node.rpc("og_mockInference", "tiny_chat", {"numbers": NEGATIVE["numbers"]})
        with pytest.raises(JsonRpcError, match="the result of an LLM call is not a reply"):
            node.rpc("eth_call", call, "latest")
    finally:
        node.rpc("og_clearMocks")
