"""``ogevm.Client`` against a real node: transactions, exact outputs, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from decimal import Decimal
from fractions import Fraction

import numpy as np
import onnxruntime as ort
import pytest

from ogevm import Client
from ogevm.abi.types import Number
from ogevm.client import NodeUnavailable, RpcCallError, model_input, to_number
from ogevm.errors import TransactionFailed, TransactionRejected
from ogevm.tensors import NUMERIC_DTYPES, number_tensor_to_array

from node_helpers import FIXTURES, fund, free_port, new_key

MODELS = FIXTURES / "models"


@pytest.fixture(scope="module")
def client(node) -> Client:
    return Client(node.url, fund(node))


@pytest.fixture(scope="module")
def cids(client) -> dict[str, str]:
    return {name: client.add_model(MODELS / f"{name}.onnx")
            for name in ("linear_regression", "small_mlp", "int_model", "string_input", "classifier", "log_model")}


def run_locally(name: str, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(str(MODELS / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


# --- inference through transactions ------------------------------------------------------
def test_infer_returns_exact_outputs(client, cids, node):
    result = client.infer(cids["linear_regression"], "VANILLA", {"x": [[1.0, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]]})
    assert result.outputs["y"].dtype == np.float64 and result.outputs["y"].shape == (2, 1)
    assert result.outputs["y"].tolist() == [[7.1], [0.8000001]]
    assert result.outputs_exact["y"].tolist() == [[Decimal("7.1")], [Decimal("0.8000001")]]
    (expected,) = run_locally("linear_regression", {"x": np.array([[1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4]], np.float32)})
    assert result.as_dtype("y", np.float32).tobytes() == expected.tobytes()  # the model's own bits
    assert result.receipt["status"] == "0x1" and result.transaction_hash == result.tx_hash
    (record,) = result.records
    assert record["txHash"] == result.tx_hash and record["error"] is None and record["mode"] == "VANILLA"
    assert client.status(result.tx_hash)["state"] == "included"
    assert set(result.model_output) == {"y"} and result.strings == {} and result.jsons == {}
    # the harness is deployed once and reused
    harness = client.harness_address()
    again = client.infer(cids["linear_regression"], 0, {"x": np.zeros((1, 4))})
    assert client.harness_address() == harness and again.receipt["to"].lower() == harness.lower()
    assert again.outputs["y"].tolist() == [[0.1]]
    assert node.rpc("eth_getCode", harness) != "0x"


def test_float32_inputs_reach_the_model_bit_for_bit(client, cids):
    x = np.random.default_rng(5).normal(size=(3, 8)).astype(np.float32)
    result = client.infer(cids["small_mlp"], "TEE", {"x": x})
    (expected,) = run_locally("small_mlp", {"x": x})
    assert result.outputs["y"].shape == expected.shape == (3, 1)
    assert result.as_dtype("y", np.float32).tobytes() == expected.tobytes()
    assert result.records[0]["mode"] == "TEE" and result.records[0]["attestation"]


def test_call_infer_runs_inline_without_a_transaction(client, cids, node):
    nonce = node.rpc("eth_getTransactionCount", client.address, "latest")
    x = np.random.default_rng(6).normal(size=(2, 8)).astype(np.float32)
    called = client.call_infer(cids["small_mlp"], "VANILLA", {"x": x})
    assert called.tx_hash is None and called.records == [] and called.receipt is None
    assert node.rpc("eth_getTransactionCount", client.address, "latest") == nonce
    mined = client.infer(cids["small_mlp"], "VANILLA", {"x": x})
    assert called.outputs_exact["y"].tolist() == mined.outputs_exact["y"].tolist()


def test_integer_string_and_json_outputs(client, cids):
    result = client.infer(cids["int_model"], "VANILLA", {"x": [[2**40 + 3, 5], [-7, 2]], "flag": [[True], [False]]})
    assert result.outputs["y"].dtype == np.int64 and result.outputs["y"].tolist() == [[2**40 + 8], [-5]]
    assert result.outputs["z"].dtype == np.int32 and result.outputs["z"].tolist() == [[1], [0]]
    strings = client.infer(cids["string_input"], "VANILLA", {"text": ["buy", "sell", "maybe"]})
    assert strings.outputs["class_id"].tolist() == [0, 2, -1]
    assert strings.outputs["score"].tolist() == [0.0, 1.0, -0.5]
    classified = client.infer(cids["classifier"], "VANILLA", {"x": [[1, 2, 3, 4], [4, 3, 2, 1]]})
    assert classified.outputs["label"].tolist() == [2, 0]
    probabilities = classified.jsons["probabilities"]
    assert len(probabilities) == 2 and all(abs(sum(row.values()) - 1) < 1e-6 for row in probabilities)


# --- failures ---------------------------------------------------------------------------------
def test_failing_inference_raises_with_the_revert_reason(client, cids):
    reason = "input 'x' has shape [1, 3]; the model expects ['?', 4]"
    with pytest.raises(TransactionFailed) as at_estimate:
        client.infer(cids["linear_regression"], "VANILLA", {"x": [[1, 2, 3]]})
    assert at_estimate.value.reason == reason and at_estimate.value.data[:4].hex() == "08c379a0"
    assert not hasattr(at_estimate.value, "tx_hash")  # nothing was sent
    with pytest.raises(TransactionFailed) as mined:
        client.infer(cids["linear_regression"], "VANILLA", {"x": [[1, 2, 3]]}, gas=500_000)
    assert mined.value.reason == reason and mined.value.receipt["status"] == "0x0"
    assert client.status(mined.value.tx_hash)["state"] == "included"
    with pytest.raises(TransactionFailed, match="contains NaN") as nan:
        client.infer(cids["log_model"], "VANILLA", {"x": [[-1.0]]}, gas=500_000)
    assert nan.value.reason == "output 'y' contains NaN" and nan.value.receipt["status"] == "0x0"
    with pytest.raises(TransactionFailed, match="unknown model"):
        client.call_infer("bafkreiaaaa", "VANILLA", {"x": [[1.0]]})


def test_model_upload_errors(client):
    with pytest.raises(RpcCallError) as caught:
        client.add_model(b"not an onnx model")
    assert caught.value.code == -32602 and "not a valid ONNX model" in caught.value.message
    assert client.add_model((MODELS / "linear_regression.onnx").read_bytes()) == client.add_model(
        MODELS / "linear_regression.onnx")


def test_unfunded_sender_is_rejected(node, cids):
    poor = Client(node.url, new_key())
    with pytest.raises(TransactionRejected, match="insufficient funds"):
        poor.infer(cids["linear_regression"], "VANILLA", {"x": [[1, 2, 3, 4]]})


def test_unreachable_node():
    with pytest.raises(NodeUnavailable):
        Client(f"http://127.0.0.1:{free_port()}", new_key()).status("0x" + "00" * 32)


def test_one_client_shared_by_threads(client, cids):
    results, errors = [], []

    def work(offset: int) -> None:
        try:
            for i in range(3):
                results.append(client.infer(cids["linear_regression"], "VANILLA", {"x": [[offset + i, 0, 0, 0]]}))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(10 * t,)) for t in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(results) == 9
    assert len({r.tx_hash for r in results}) == 9


# --- input encoding (no node) -------------------------------------------------------------------
def test_model_input_encodes_exactly():
    encoded = model_input({"x": [[1.0, 2, 0.1]], "b": [True, False], "t": ["buy", "sell"]})
    (x, b), (t,) = encoded.numbers, encoded.strings
    assert x.shape == (1, 3) and x.values == (Number(1, 0), Number(2, 0), Number(1, 1))
    assert b.values == (Number(1, 0), Number(0, 0)) and t.values == ("buy", "sell")
    assert to_number(np.float32(0.1)) == Number(1, 1)  # shortest in float32, not 0.100000001490116...
    assert to_number(1e300) == Number(1, -300) and to_number(1e30) == Number(10**30, 0)
    assert to_number(2**100) == Number(2**100, 0) and to_number(-2.5e-7) == Number(-25, 8)
    assert to_number(Decimal("1.2500")) == Number(125, 2) and to_number(Fraction(3, 8)) == Number(375, 3)
    assert to_number(5e-324) == Number(5, 324) and to_number(10**40) == Number(10**38, -2)
    # float32's largest value: its shortest form 3.4028235e38 is above the maximum, so the exact value is sent
    assert to_number(np.finfo(np.float32).max) == Number(34028234663852885981170418348451692544, -1)
    mixed = model_input({"v": [2**62 + 1, 0.5]})  # no float64 promotion on the way
    assert mixed.numbers[0].values == (Number(2**62 + 1, 0), Number(5, 1))
    for bad in ({"x": [float("nan")]}, {"x": [np.float32("inf")]}, {"x": [[1, 2], [3]]}, {"x": ["a", 1]},
                {"x": [2**127]}, {"x": [Fraction(1, 3)]}):
        with pytest.raises(ValueError):
            model_input(bad)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_shortest_decimals_round_trip_in_their_own_precision(dtype):
    """What the node does with a Number (exact rounding into the model's dtype) gives back
    exactly the value the client encoded, for floats of every magnitude."""
    rng = np.random.default_rng(11)
    info = np.finfo(dtype)
    values = np.concatenate([
        rng.normal(size=300), rng.normal(size=300) * 1e-3, rng.normal(size=300) * 1e3,
        [float(info.max), -float(info.max), float(info.tiny), float(info.smallest_subnormal), 0.0],
    ]).astype(dtype)
    encoded = model_input({"x": values}).numbers[0]
    name = {np.float16: "tensor(float16)", np.float32: "tensor(float)", np.float64: "tensor(double)"}[dtype]
    decoded = number_tensor_to_array(encoded, NUMERIC_DTYPES[name])
    assert decoded.tobytes() == values.tobytes()


def test_node_accepts_the_shortest_decimal_of_float32_max():
    from ogevm.abi.types import NumberTensor

    tensor = NumberTensor("x", (Number(34028235, -31),), (1,))
    assert number_tensor_to_array(tensor, np.dtype(np.float32))[0] == np.finfo(np.float32).max


def test_importing_ogevm_stays_light():
    code = "import sys, ogevm; assert 'numpy' not in sys.modules and 'ogevm.client' not in sys.modules; " \
           "from ogevm import Client; assert 'ogevm.client' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=FIXTURES.parent)



# --- LLM calls ------------------------------------------------------------------------------------
WEATHER_TOOL = {"name": "get_weather", "description": "Get the weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_an_llm_completion_by_transaction_equals_the_runtime_and_the_eth_call(client):
    """Sent through the node's PIPE pool, greedy: the runtime's own reply, as ``eth_call`` gives."""
    from ogevm.llm import default_runtime

    sent = client.complete("tiny_chat", "The price of ", max_tokens=30)
    called = client.complete("tiny_chat", "The price of ", max_tokens=30, call=True)
    assert sent.text == called.text == default_runtime().complete("tiny_chat", "The price of ", 30).text
    assert sent.tx_hash and len(sent.records) == 1 and sent.records[0]["output"] is not None
    assert called.tx_hash is None and called.records == ()


def test_an_llm_chat_with_a_forced_tool_call(client):
    reply = client.chat("tiny_chat", [{"role": "user", "content": "What is the weather in Paris?"}],
                        tools=[WEATHER_TOOL], tool_choice="get_weather", max_tokens=120, mode="TEE")
    assert reply.finish_reason == "tool_calls"
    (call,) = reply.tool_calls
    assert call.name == "get_weather" and call.id == "call_0"
    assert set(json.loads(call.arguments)) == {"city"}


@pytest.mark.parametrize("call", [True, False], ids=["eth_call", "transaction"])
@pytest.mark.parametrize("model, max_tokens, temperature, reason", [
    ("tiny_chat", 0, 0, "max_tokens must be at least 1"),
    ("tiny_chat", 8, 101, "temperature 101 is outside 0..100"),
    ("no_such_model", 8, 0, "unknown model 'no_such_model'"),
])
def test_bad_llm_requests_fail_with_their_reason(client, call, model, max_tokens, temperature, reason):
    with pytest.raises(TransactionFailed, match=reason):
        client.complete(model, "x", max_tokens=max_tokens, temperature=temperature, call=call)
