"""Bad input gets a clear JSON-RPC error, and the node keeps serving afterwards."""

from __future__ import annotations

import json

import pytest

from ogevm.abi.codec import decode_revert_reason
from ogevm.abi.contract import ContractInterface
from ogevm.abi.types import InferenceMode, ModelInferenceRequest, ModelInput, Number, NumberTensor
from ogevm.errors import ModelTooLarge
from ogevm.models.store import ModelStore

from node_helpers import (
    DEV_KEYS,
    FIXTURES,
    address_of,
    artifact,
    fund,
    model_bytes,
    new_key,
    sign,
)

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
TX_REJECTED, EXECUTION_REVERTED = -32003, 3
SOMEONE = "0x" + "42" * 20


@pytest.fixture(autouse=True)
def still_serving(node):
    """After every test here: the node answers a normal call."""
    yield
    assert node.rpc("eth_chainId") == "0x7a69"
    assert node.proc.poll() is None


def error_of(node, method, *params) -> dict:
    answer = node.call(method, *params)
    assert "error" in answer and "result" not in answer, answer
    return answer["error"]


# --- the JSON-RPC envelope -------------------------------------------------------------
@pytest.mark.parametrize("body", [b'{"jsonrpc": "2.0", "id": 1, "method": ', b"\xff\xfe\x00", b"", b"{'single': 1}"])
def test_malformed_json_is_a_parse_error(node, body):
    status, answer = node.post(body)
    assert status == 200
    assert answer["error"]["code"] == PARSE_ERROR and answer["id"] is None


@pytest.mark.parametrize("payload", [
    {"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"},
    {"jsonrpc": "2.0", "id": 1},
    {"jsonrpc": "2.0", "id": 1, "method": 5},
    "eth_chainId",
    [],
])
def test_invalid_requests(node, payload):
    _, answer = node.post(json.dumps(payload).encode())
    assert answer["error"]["code"] == INVALID_REQUEST


def test_unknown_method(node):
    error = error_of(node, "eth_doesNotExist", 1)
    assert error["code"] == METHOD_NOT_FOUND and "eth_doesNotExist" in error["message"]


@pytest.mark.parametrize(("method", "params", "fragment"), [
    ("eth_getBalance", [123], "0x-prefixed hex"),
    ("eth_getBalance", ["0x1234"], "20 bytes"),
    ("eth_getBalance", [SOMEONE, "0xnothex"], "hex quantity"),
    ("eth_getBalance", [], "missing parameter 0"),
    ("eth_getBlockByNumber", [{"x": 1}, False], "block object"),
    ("eth_getBlockByHash", ["0x1234", False], "32 bytes"),
    ("eth_getTransactionReceipt", [42], "0x-prefixed hex"),
    ("eth_getStorageAt", [SOMEONE, "zz"], "hex quantity"),
    ("eth_call", ["not an object"], "must be an object"),
    ("eth_call", [{"to": SOMEONE, "data": 12}], "0x-prefixed hex"),
    ("eth_estimateGas", [1], "must be an object"),
    ("eth_sendTransaction", [{"to": SOMEONE}], "from"),
    ("eth_sendTransaction", [{"from": SOMEONE, "to": SOMEONE}], "unlocked"),
    ("eth_getLogs", [{"address": 7}], "address"),
    ("eth_getLogs", [{"topics": 5}], "topics"),
    ("eth_getLogs", [{"topics": ["0x12"]}], "32 bytes"),
    ("eth_getLogs", ["latest"], "must be an object"),
    ("eth_newFilter", [1], "must be an object"),
    ("eth_getFilterChanges", [[]], "filterId"),
    ("eth_getFilterChanges", ["0xdead"], "filter not found"),
    ("eth_uninstallFilter", [{}], "filterId"),
    ("eth_feeHistory", ["0x0", "latest"], "at least 1"),
    ("eth_feeHistory", ["0x1", "0xffffff"], "beyond the head"),
    ("og_getTransactionStatus", ["0x" + "00" * 32], "unknown transaction"),
    ("og_getInferenceRecords", ["0x00"], "32 bytes"),
    ("og_addModel", ["not hex"], "0x-prefixed hex"),
])
def test_wrong_params_are_invalid_params(node, method, params, fragment):
    error = error_of(node, method, *params)
    assert error["code"] == INVALID_PARAMS, error
    assert fragment in error["message"]


def test_params_must_be_an_array(node):
    _, answer = node.post(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "eth_getBalance",
                                      "params": {"address": SOMEONE}}).encode())
    assert answer["id"] == 7 and answer["error"]["code"] == INVALID_PARAMS


def test_oversize_body_is_refused_with_413(node):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "og_addModel",
                       "params": ["0x" + "00" * (5 * 1024 * 1024)]}).encode()  # 10 MiB of JSON
    status, answer = node.post(body)
    assert status == 413
    assert answer["error"]["code"] == INVALID_REQUEST and "too large" in answer["error"]["message"]


def test_batch_with_good_and_bad_calls(node):
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_nope"},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": [5]},
        {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # a notification: no answer
        {"not": "a request"},
        {"jsonrpc": "2.0", "id": "six", "method": "eth_getBalance", "params": [address_of(DEV_KEYS[9])]},
    ]
    _, answers = node.post(json.dumps(batch).encode())
    assert isinstance(answers, list) and len(answers) == 5
    by_id = {a["id"]: a for a in answers if a["id"] is not None}
    assert by_id[1]["result"] == "0x7a69"
    assert by_id[2]["error"]["code"] == METHOD_NOT_FOUND
    assert by_id[3]["error"]["code"] == INVALID_PARAMS
    assert int(by_id["six"]["result"], 16) > 0
    assert [a["error"]["code"] for a in answers if a["id"] is None] == [INVALID_REQUEST]


# --- transactions the pool refuses ---------------------------------------------------
def test_raw_transaction_that_is_not_rlp(node):
    for raw in ("0xdeadbeef", "0x", "0x02" + "ff" * 40):
        error = error_of(node, "eth_sendRawTransaction", raw)
        assert error["code"] == INVALID_PARAMS and "invalid raw transaction" in error["message"]
    assert error_of(node, "eth_sendRawTransaction", "0xzz")["code"] == INVALID_PARAMS


def test_wrong_chain_id(node):
    raw, _ = sign(DEV_KEYS[7], 0, SOMEONE, value=1, gas=21_000, chain_id=1)
    error = error_of(node, "eth_sendRawTransaction", raw)
    assert error["code"] == TX_REJECTED and error["message"] == "wrong chain id 1; this chain is 31337"


def test_nonce_too_low_already_known_and_no_funds(node):
    key = fund(node)
    raw, tx_hash = sign(key, 0, SOMEONE, value=1, gas=21_000)
    assert node.rpc("eth_sendRawTransaction", raw) == tx_hash
    assert node.wait_receipt(tx_hash)["status"] == "0x1"
    error = error_of(node, "eth_sendRawTransaction", sign(key, 0, SOMEONE, value=2, gas=21_000)[0])
    assert error["code"] == TX_REJECTED and error["message"] == "nonce too low: 0 < 1"
    error = error_of(node, "eth_sendRawTransaction", raw)
    assert error["code"] == TX_REJECTED and ("already known" in error["message"] or "nonce too low" in error["message"])
    error = error_of(node, "eth_sendRawTransaction", sign(new_key(), 0, SOMEONE, value=1, gas=21_000)[0])
    assert error["code"] == TX_REJECTED and error["message"].startswith("insufficient funds")
    error = error_of(node, "eth_sendRawTransaction", sign(key, 1, SOMEONE, value=1, gas=20_000)[0])
    assert error["code"] == TX_REJECTED and error["message"].startswith("intrinsic gas too low")


def test_underpriced_replacement_then_a_proper_one(node):
    key = fund(node)
    # nonce 1 waits behind a gap, so it stays in the pool and can be replaced
    first_raw, first = sign(key, 1, SOMEONE, value=1, gas=21_000, max_fee=10 * 10**9, tip=10**9)
    assert node.rpc("eth_sendRawTransaction", first_raw) == first
    same_fees, _ = sign(key, 1, SOMEONE, value=2, gas=21_000, max_fee=10 * 10**9, tip=10**9)
    error = error_of(node, "eth_sendRawTransaction", same_fees)
    assert error["code"] == TX_REJECTED and error["message"].startswith("replacement transaction underpriced")
    bumped_raw, bumped = sign(key, 1, SOMEONE, value=3, gas=21_000, max_fee=11 * 10**9, tip=11 * 10**8)
    assert node.rpc("eth_sendRawTransaction", bumped_raw) == bumped
    assert node.rpc("og_getTransactionStatus", first)["state"] == "rejected"
    assert node.rpc("og_getTransactionStatus", first)["reason"] == f"replaced by {bumped}"
    gap_raw, gap = sign(key, 0, SOMEONE, value=4, gas=21_000)
    node.rpc("eth_sendRawTransaction", gap_raw)
    assert node.wait_receipt(bumped)["status"] == "0x1"
    assert node.rpc("eth_getTransactionReceipt", first) is None
    assert node.rpc("eth_getTransactionByHash", first) is None


# --- models --------------------------------------------------------------------------------
def test_model_upload_that_is_not_onnx(node):
    for junk in (b"definitely not a model", b"", (FIXTURES / "contracts" / "PriceForecast.json").read_bytes()):
        error = error_of(node, "og_addModel", "0x" + junk.hex())
        assert error["code"] == INVALID_PARAMS and "not a valid ONNX model" in error["message"], error
    cid = node.rpc("og_addModel", "0x" + model_bytes("small_mlp").hex())
    (listed,) = [m for m in node.rpc("og_listModels") if m["cid"] == cid]
    assert listed["batchable"] and listed["rowMixing"] is None and listed["batchSizes"][0] == 2
    assert node.rpc("og_addModel", "0x" + model_bytes("small_mlp").hex()) == cid  # idempotent


def test_model_size_limit(node):
    """The store refuses models over its limit; over RPC the 8 MiB body limit comes first
    (about 4 MiB of model once hex-encoded), answered with HTTP 413."""
    data = model_bytes("linear_regression")
    with pytest.raises(ModelTooLarge, match=f"model is {len(data)} bytes; the limit is 100 bytes"):
        ModelStore(max_bytes=100).add(data)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "og_addModel",
                       "params": ["0x" + (data * (4_200_000 // len(data) + 1)).hex()]}).encode()
    status, answer = node.post(body)
    assert status == 413 and answer["error"]["code"] == INVALID_REQUEST


# --- a transaction whose inference fails is included and reverts --------------------------
@pytest.fixture(scope="module")
def forecast(node):
    """(address, model CID) of a PriceForecast on linear_regression."""
    cid = node.rpc("og_addModel", "0x" + model_bytes("linear_regression").hex())
    contract = ContractInterface.from_artifact(FIXTURES / "contracts" / "PriceForecast.json")
    code = contract.bytecode + contract.constructor_args(cid, "x", "y")
    tx_hash = node.rpc("eth_sendTransaction", {"from": address_of(DEV_KEYS[6]), "data": "0x" + code.hex()})
    receipt = node.wait_receipt(tx_hash)
    assert receipt["status"] == "0x1"
    return receipt["contractAddress"], cid


def test_tx_with_failing_inference_is_included_with_status_0(node, forecast):
    address, _ = forecast
    forecast_fn = ContractInterface.from_artifact(FIXTURES / "contracts" / "PriceForecast.json").function("forecast")
    call = {"from": address_of(DEV_KEYS[6]), "to": address, "data": "0x" + forecast_fn.encode([(1, 0)]).hex()}
    reason = "input 'x' has shape [1, 1]; the model expects ['?', 4]"
    error = error_of(node, "eth_estimateGas", call)
    assert error["code"] == EXECUTION_REVERTED and error["message"] == f"execution reverted: {reason}"
    tx_hash = node.rpc("eth_sendTransaction", {**call, "gas": hex(500_000)})  # explicit gas: no estimate
    receipt = node.wait_receipt(tx_hash)
    assert receipt["status"] == "0x0" and receipt["logs"] == []
    status = node.rpc("og_getTransactionStatus", tx_hash)
    assert status["state"] == "included" and status["block"] == int(receipt["blockNumber"], 16)
    # the revert reason, by replaying the call on the parent block (what clients do)
    replay = error_of(node, "eth_call", call, hex(int(receipt["blockNumber"], 16) - 1))
    assert replay["code"] == EXECUTION_REVERTED
    assert decode_revert_reason(bytes.fromhex(replay["data"][2:])) == reason


def test_tx_whose_model_fails_at_run_time_has_an_error_record(node):
    """log(-1) is NaN: the request is valid, the executor's result is an error record."""
    cid = node.rpc("og_addModel", "0x" + model_bytes("log_model").hex())
    harness = ContractInterface.from_artifact(FIXTURES / "contracts" / "InferenceCaller.json")
    deployed = node.wait_receipt(node.rpc("eth_sendTransaction", {"from": address_of(DEV_KEYS[8]),
                                                                  "data": "0x" + harness.bytecode.hex()}))
    request = ModelInferenceRequest(InferenceMode.VANILLA, cid,
                                    ModelInput((NumberTensor("x", (Number(-1, 0),), (1, 1)),), ()))
    call = {"from": address_of(DEV_KEYS[8]), "to": deployed["contractAddress"],
            "data": "0x" + harness.function("infer").encode(request).hex(), "gas": hex(400_000)}
    tx_hash = node.rpc("eth_sendTransaction", call)
    receipt = node.wait_receipt(tx_hash)
    assert receipt["status"] == "0x0"
    assert node.rpc("og_getTransactionStatus", tx_hash)["state"] == "included"
    (record,) = node.rpc("og_getInferenceRecords", tx_hash)
    assert record["error"] == "output 'y' contains NaN" and record["output"] is None
    assert record["modelCid"] == cid and record["mode"] == "VANILLA"
    error = error_of(node, "eth_call", call, hex(int(receipt["blockNumber"], 16) - 1))
    assert error["message"] == "execution reverted: output 'y' contains NaN"


def test_artifact_has_the_functions_the_tests_use():
    names = {item.get("name") for item in artifact("PriceForecast")["abi"]}
    assert {"forecast", "forecastView", "latestPrediction", "Forecast"} <= names
