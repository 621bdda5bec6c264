"""Traces with web3.py over HTTP against a real node process: ``debug_traceTransaction`` and
``debug_traceCall`` with ``callTracer``, ``ogInferenceTracer`` and the struct logger, through the
example contracts and hand-written bytecode; revert reasons in the call tree and in
``og_getTransactionStatus``; ``og_getBlockStats``; bad params; traces leaving the chain as it
was. The replay's use of committed results (never the model) is checked in process."""

from __future__ import annotations

import math
import time
from decimal import Decimal

import pytest
from eth_utils import keccak
from hypothesis import given, settings, strategies as st

from ogevm.abi.types import ModelOutput, Number, NumberTensor
from ogevm.fixtures import fixture_contract
from ogevm.node.params import ParamError
from ogevm.node.rpc.debug import TRACERS, trace_options
from ogevm.records import InferenceResult, RequestId
from ogevm.vm.chain import DevChain
from ogevm.vm.tracing import inference_calls, replay_transaction

from node_helpers import JsonRpcError, artifact, model_bytes

web3 = pytest.importorskip("web3", reason="web3.py is not installed")
from web3 import Web3  # noqa: E402

FEATURES = [(1, 0), (2, 0), (3, 0), (4, 0)]  # linear_regression: 7.1
CALL_TRACER = {"tracer": "callTracer"}
INFERENCE_TRACER = {"tracer": "ogInferenceTracer"}
GAS = 3_000_000
F4, F6 = "0x" + "00" * 19 + "f4", "0x" + "00" * 19 + "f6"
#: Init code that STATICCALLs, DELEGATECALLs and CALLs the identity precompile (0x04), then
#: CREATEs and CREATE2s empty contracts: one child frame of each kind, in that order.
EVERY_CALL_KIND = ("0x" + "6000600060006000" "6004" "5a" "fa"   # STATICCALL(gas, 4, 0, 0, 0, 0)
                   + "6000600060006000" "6004" "5a" "f4"        # DELEGATECALL(gas, 4, 0, 0, 0, 0)
                   + "60006000600060006000" "6004" "5a" "f1"    # CALL(gas, 4, 0, 0, 0, 0, 0)
                   + "600060006000" "f0"                        # CREATE(0, 0, 0)
                   + "6000600060006000" "f5"                    # CREATE2(0, 0, 0, 0)
                   + "00")


OWN_NODE = True  # its state changes would leak into other modules (see conftest)


@pytest.fixture(scope="module")
def cids(node) -> dict[str, str]:
    return {name: node.rpc("og_addModel", "0x" + model_bytes(name).hex())
            for name in ("linear_regression", "log_model")}


def deploy(w3, name: str, *args):
    art = artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(*args).transact({"from": w3.eth.accounts[1]}), timeout=30, poll_latency=0.05)
    return w3.eth.contract(address=receipt.contractAddress, abi=art["abi"]), receipt


def mined(w3, tx_hash) -> tuple[str, dict]:
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
    return tx_hash.to_0x_hex(), receipt


def request(cid: str, name: str, numbers, mode: int = 0) -> tuple:
    """A ``ModelInferenceRequest`` for web3: one ``[1, n]`` number tensor."""
    return (mode, cid, ([(name, list(numbers), [1, len(numbers)])], []))


def invalid(node, method: str, *params) -> str:
    with pytest.raises(JsonRpcError) as error:
        node.rpc(method, *params)
    assert error.value.code == -32602, (method, params, error.value.message)
    return error.value.message


def frames(frame: dict):
    yield frame
    for child in frame.get("calls", ()):
        yield from frames(child)


# --- callTracer ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def forecast(w3, cids):
    return deploy(w3, "PriceForecast", cids["linear_regression"], "x", "y")


def test_call_tracer_of_a_mined_inference_tx(node, w3, forecast):
    contract, _ = forecast
    tx_hash, receipt = mined(w3, contract.functions.forecast(FEATURES).transact({"from": w3.eth.accounts[2]}))
    tx = w3.eth.get_transaction(tx_hash)
    top = node.rpc("debug_traceTransaction", tx_hash, CALL_TRACER)
    assert (top["type"], top["from"], top["to"]) == ("CALL", tx["from"].lower(), contract.address.lower())
    assert int(top["gas"], 16) == tx["gas"] and int(top["gasUsed"], 16) == receipt.gasUsed
    assert top["input"] == "0x" + bytes(tx["input"]).hex() and "error" not in top
    (inference,) = top["calls"]
    assert (inference["type"], inference["from"], inference["to"]) == ("CALL", contract.address.lower(), F4)
    assert 0 < int(inference["gasUsed"], 16) < int(inference["gas"], 16)
    # the frame's output is what the contract decoded: its return value is the model's 7.1
    value, decimals = contract.functions.latestPrediction().call()
    assert Decimal(value).scaleb(-decimals) == Decimal("7.1")
    assert int(top["output"][2:66], 16) == value and int(top["output"][66:], 16) == decimals
    only_top = node.rpc("debug_traceTransaction", tx_hash, {**CALL_TRACER, "tracerConfig": {"onlyTopCall": True}})
    assert "calls" not in only_top and only_top == {k: v for k, v in top.items() if k != "calls"}


def test_call_tracer_with_logs(node, w3, forecast):
    contract, _ = forecast
    tx_hash, receipt = mined(w3, contract.functions.forecast(FEATURES).transact({"from": w3.eth.accounts[2]}))
    top = node.rpc("debug_traceTransaction", tx_hash, {**CALL_TRACER, "tracerConfig": {"withLog": True}})
    (inference,) = top["calls"]
    # the precompile's ModelInferenceEvent is its own frame's, then the contract's Forecast after one call
    assert [log["position"] for log in inference["logs"]] == ["0x0"] and inference["logs"][0]["address"] == F4
    assert [log["position"] for log in top["logs"]] == ["0x1"]
    emitted = [{"address": log["address"].lower(), "topics": [t.to_0x_hex() for t in log["topics"]],
                "data": log["data"].to_0x_hex()} for log in receipt.logs]
    traced = [{k: v for k, v in log.items() if k != "position"} for log in inference["logs"] + top["logs"]]
    assert traced == emitted
    assert "logs" not in node.rpc("debug_traceTransaction", tx_hash, CALL_TRACER)["calls"][0]

    # init code that CREATEs a child whose init code emits LOG0, then stops or reverts
    create_logging_child = "0x65" "60006000a000" "600052" "6006" "601a" "6000" "f0"
    options = {**CALL_TRACER, "tracerConfig": {"withLog": True}}
    kept = node.rpc("debug_traceCall", {"data": create_logging_child + "00"}, "latest", options)
    (child,) = kept["calls"]
    assert child["logs"] == [{"address": child["to"], "topics": [], "data": "0x", "position": "0x0"}]
    undone = node.rpc("debug_traceCall", {"data": create_logging_child + "60006000fd"}, "latest", options)
    assert undone["error"] == "execution reverted" and "error" not in undone["calls"][0]
    assert all("logs" not in frame for frame in frames(undone))  # the revert undid the child's log


def test_call_tracer_of_a_deployment(node, w3, cids):
    contract, receipt = deploy(w3, "PriceForecast", cids["linear_regression"], "x", "y")
    top = node.rpc("debug_traceTransaction", receipt.transactionHash.to_0x_hex(), CALL_TRACER)
    assert top["type"] == "CREATE" and top["to"] == contract.address.lower()
    assert top["output"] == "0x" + bytes(w3.eth.get_code(contract.address)).hex()
    assert int(top["gasUsed"], 16) == receipt.gasUsed


def test_call_tracer_names_every_call_kind(node, w3):
    sender = w3.eth.accounts[3]
    top = node.rpc("debug_traceCall", {"from": sender, "data": EVERY_CALL_KIND}, "latest", CALL_TRACER)
    assert top["type"] == "CREATE"
    kinds = [frame["type"] for frame in top["calls"]]
    assert kinds == ["STATICCALL", "DELEGATECALL", "CALL", "CREATE", "CREATE2"]
    static, delegate, call, create, create2 = top["calls"]
    assert static["to"] == delegate["to"] == call["to"] == "0x" + "00" * 19 + "04"
    assert "value" not in static and delegate["value"] == call["value"] == "0x0"
    assert create["to"] != create2["to"] and all(frame["from"] == top["to"] for frame in top["calls"])


def test_call_tracer_of_failed_creations(node, w3):
    sender = w3.eth.accounts[3]
    reverted = node.rpc("debug_traceCall", {"from": sender, "data": "0x60006000fd"}, "latest", CALL_TRACER)
    assert reverted["error"] == "execution reverted" and "to" not in reverted and "output" not in reverted
    endless = {"from": sender, "data": "0x5b600056", "gas": hex(60_000)}  # JUMPDEST PUSH1 0 JUMP, forever
    top = node.rpc("debug_traceCall", endless, "latest", CALL_TRACER)
    assert (top["error"], top["gasUsed"]) == ("out of gas", hex(60_000)) and "revertReason" not in top
    steps = node.rpc("debug_traceCall", endless, "latest")
    assert steps["failed"] is True and steps["structLogs"][-1]["error"] == "out of gas"
    assert all("error" not in step for step in steps["structLogs"][:-1])


# --- struct logger --------------------------------------------------------------------------------
#: Init code: PUSH1 2, PUSH1 3, ADD, PUSH1 0, SSTORE, PUSH1 0, SLOAD, STOP.
STORE_AND_LOAD = "0x6002600301600055600054" + "00"


def test_struct_logger_steps(node, w3):
    call = {"from": w3.eth.accounts[3], "data": STORE_AND_LOAD}
    trace = node.rpc("debug_traceCall", call, "latest")
    steps = trace["structLogs"]
    assert [s["op"] for s in steps] == ["PUSH1", "PUSH1", "ADD", "PUSH1", "SSTORE", "PUSH1", "SLOAD", "STOP"]
    assert [s["pc"] for s in steps] == [0, 2, 4, 5, 7, 8, 10, 11] and {s["depth"] for s in steps} == {1}
    assert steps[2]["stack"] == ["0x2", "0x3"] and steps[4]["stack"] == ["0x5", "0x0"]
    assert [s["gasCost"] for s in steps[:4]] == [3, 3, 3, 3]
    assert steps[4]["gasCost"] == 22_100  # a cold zero slot set non-zero (EIP-2929 + EIP-2200)
    assert steps[4]["storage"] == steps[6]["storage"] == {"00" * 32: f"{5:064x}"}
    assert "storage" not in steps[0] and "memory" not in steps[0]
    for step, following in zip(steps, steps[1:]):
        assert following["gas"] == step["gas"] - step["gasCost"]
    assert trace["failed"] is False and trace["returnValue"] == "0x"
    assert trace["gas"] == int(node.rpc("debug_traceCall", call, "latest", CALL_TRACER)["gasUsed"], 16)
    assert trace["gas"] > 53_000 + steps[0]["gas"] - steps[-1]["gas"]  # intrinsic gas of a creation, then the steps
    lean = node.rpc("debug_traceCall", call, "latest", {"disableStack": True, "disableStorage": True,
                                                        "enableMemory": True, "limit": 3})
    assert len(lean["structLogs"]) == 3 and all("stack" not in s and "storage" not in s for s in lean["structLogs"])
    assert all(s["memory"] == [] for s in lean["structLogs"])


def test_struct_logger_call_costs_include_the_gas_handed_over(node, w3):
    call = {"from": w3.eth.accounts[3], "data": EVERY_CALL_KIND}
    steps = node.rpc("debug_traceCall", call, "latest")["structLogs"]
    frames = node.rpc("debug_traceCall", call, "latest", CALL_TRACER)["calls"]
    calls = [s for s in steps if s["op"] in ("STATICCALL", "DELEGATECALL", "CALL")]
    for step, frame in zip(calls, frames):  # a warm precompile: 100 gas plus what the callee got
        assert step["gasCost"] == 100 + int(frame["gas"], 16)
    creates = [s for s in steps if s["op"].startswith("CREATE")]
    assert [s["gasCost"] for s in creates] == [32_000, 32_000]  # empty init code: the base only


def test_struct_logger_of_a_mined_tx(node, w3, forecast):
    contract, _ = forecast
    tx_hash, receipt = mined(w3, contract.functions.forecast(FEATURES).transact({"from": w3.eth.accounts[2]}))
    trace = node.rpc("debug_traceTransaction", tx_hash, {"limit": 0})
    steps = trace["structLogs"]
    assert trace["gas"] == receipt.gasUsed and trace["failed"] is False
    assert [(s["pc"], s["depth"]) for s in steps].count((0, 1)) == 1  # this tx's steps only
    assert steps[-1]["op"] == "RETURN" and trace["returnValue"] == node.rpc(
        "debug_traceTransaction", tx_hash, CALL_TRACER)["output"]
    assert {s["depth"] for s in steps} == {1}  # the precompile runs no opcodes


# --- inference tracer: nested, dependent, preprocessing --------------------------------------------
def test_inference_tracer_of_dependent_calls_with_signers(node, w3, cids):
    contract, _ = deploy(w3, "DependentInference")
    tx_hash, receipt = mined(w3, contract.functions.chain(
        cids["linear_regression"], cids["log_model"], "x", "y", FEATURES).transact({"from": w3.eth.accounts[4]}))
    assert receipt.status == 1
    trace = node.rpc("debug_traceTransaction", tx_hash, INFERENCE_TRACER)
    first, second = trace["calls"]
    assert [c["requestId"] for c in trace["calls"]] == [f"{tx_hash}:0", f"{tx_hash}:1"]
    assert [c["modelCid"] for c in trace["calls"]] == [cids["linear_regression"], cids["log_model"]]
    assert first["inputs"]["numbers"] == [{"name": "x", "shape": [1, 4], "values": ["1", "2", "3", "4"]}]
    assert first["outputs"]["numbers"][0]["values"] == ["7.1"]
    # the second request's input is the first one's output, renamed
    assert second["inputs"]["numbers"] == [{**first["outputs"]["numbers"][0], "name": "x"}]
    assert math.isclose(float(second["outputs"]["numbers"][0]["values"][0]), math.log(7.1), rel_tol=1e-6)
    records = {r["requestId"]: r for r in node.rpc("og_getInferenceRecords", tx_hash)}
    for call in trace["calls"]:
        record = records[call["requestId"]]
        assert call["node"] == record["node"] and call["mode"] == record["mode"] == "VANILLA"
        assert call["outputs"]["numbers"][0]["values"] == record["output"]["numbers"][0]["decimal"]
        assert call["error"] is None and int(call["gasUsed"], 16) > 0
    callees = [f for f in frames(node.rpc("debug_traceTransaction", tx_hash, CALL_TRACER)) if f.get("to") == F4]
    assert [f["gasUsed"] for f in callees] == [c["gasUsed"] for c in trace["calls"]]


def test_inference_tracer_shows_preprocessing_then_inference(node, w3, cids):
    contract, _ = deploy(w3, "StandardizedForecast", cids["linear_regression"], "x", "y")
    tx_hash, receipt = mined(w3, contract.functions.forecast(FEATURES).transact({"from": w3.eth.accounts[5]}))
    assert receipt.status == 1
    preprocessing, inference = node.rpc("debug_traceTransaction", tx_hash, INFERENCE_TRACER)["calls"]
    assert (preprocessing["precompile"], preprocessing["address"], preprocessing["function"]) == (
        "preprocessing", F6, "standardize")
    assert preprocessing["inputs"] == [["1", "2", "3", "4"]]
    standardized = [Decimal(v) for v in preprocessing["outputs"]]
    mean = sum(standardized) / 4
    assert abs(mean) < Decimal("1e-15") and standardized == sorted(standardized)
    assert inference["inputs"]["numbers"][0]["values"] == preprocessing["outputs"]
    assert inference["requestId"] == f"{tx_hash}:0" and inference["node"] is not None
    flat = {"from": w3.eth.accounts[5], "to": contract.address,
            "data": contract.encode_abi("forecast", [[(2, 0)] * 4])}  # zero variance: cannot standardize
    trace = node.rpc("debug_traceCall", flat, "latest", INFERENCE_TRACER)
    (failed,) = trace["calls"]
    assert failed["function"] == "standardize" and failed["outputs"] is None
    assert failed["error"] == trace["revertReason"] and "standardize" in failed["error"]
    assert trace["error"] == "execution reverted"



def test_inference_tracer_shows_an_llm_chat_with_its_tool_call(node, w3):
    from ogevm.abi.llm import LLMChatRequest, LLMInferenceMode, encode_llm_chat
    from ogevm.llm.types import ChatMessage, ToolDefinition

    weather = ToolDefinition("Get the weather", "get_weather",
                             '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}')
    chat = LLMChatRequest(LLMInferenceMode.VANILLA, "tiny_chat", (ChatMessage("user", "Weather in Paris?"),),
                          (weather,), "required", 120, (), 0)
    sent = w3.eth.send_transaction({"from": w3.eth.accounts[6], "to": Web3.to_checksum_address(F4),
                                    "data": "0x" + encode_llm_chat(chat).hex(), "gas": GAS})
    tx_hash, receipt = mined(w3, sent)
    assert receipt.status == 1
    (call,) = node.rpc("debug_traceTransaction", tx_hash, INFERENCE_TRACER)["calls"]
    assert (call["function"], call["modelCid"], call["mode"]) == ("runLLMChat", "tiny_chat", "VANILLA")
    assert call["inputs"]["messages"][0]["content"] == "Weather in Paris?"
    assert call["inputs"]["tools"][0]["name"] == "get_weather" and call["inputs"]["max_tokens"] == 120
    assert call["outputs"]["finish_reason"] == "tool_calls"
    assert call["outputs"]["message"]["tool_calls"][0]["name"] == "get_weather"
    assert call["requestId"] == f"{tx_hash}:0" and call["node"] is not None

# --- reverts --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def caller(w3):
    return deploy(w3, "InferenceCaller")[0]


def test_failed_inference_committed_with_its_reason_and_signer(node, w3, cids, caller):
    """log(-1) is NaN: the model's failure is a committed result, the tx reverts with it."""
    req = request(cids["log_model"], "x", [(-1, 0)])
    tx_hash, receipt = mined(w3, caller.functions.infer(req).transact({"from": w3.eth.accounts[6], "gas": GAS}))
    assert receipt.status == 0
    (record,) = node.rpc("og_getInferenceRecords", tx_hash)
    reason = record["error"]
    assert reason and "NaN" in reason
    top = node.rpc("debug_traceTransaction", tx_hash, CALL_TRACER)
    (inference,) = top["calls"]
    for frame in (top, inference):  # the contract bubbles the precompile's revert up unchanged
        assert frame["error"] == "execution reverted" and frame["revertReason"] == reason
    assert int(top["gasUsed"], 16) == receipt.gasUsed
    (call,) = node.rpc("debug_traceTransaction", tx_hash, INFERENCE_TRACER)["calls"]
    assert (call["error"], call["outputs"], call["node"]) == (reason, None, record["node"])
    status = node.rpc("og_getTransactionStatus", tx_hash)
    assert status["state"] == "included" and status["revertReason"] == reason


def test_caught_revert_shows_in_the_tree_not_in_the_status(node, w3, caller):
    missing = "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    tx_hash, receipt = mined(w3, caller.functions.tryInfer(request(missing, "x", FEATURES)).transact(
        {"from": w3.eth.accounts[6], "gas": GAS}))
    assert receipt.status == 1
    reason = caller.functions.lastReason().call()
    assert "unknown model" in reason
    top = node.rpc("debug_traceTransaction", tx_hash, CALL_TRACER)
    assert "error" not in top and top["calls"][0]["revertReason"] == reason
    (call,) = node.rpc("debug_traceTransaction", tx_hash, INFERENCE_TRACER)["calls"]
    assert call["error"] == reason and call["node"] is None and call["modelCid"] == missing
    assert node.rpc("og_getTransactionStatus", tx_hash)["revertReason"] is None


def test_trace_of_an_impersonated_sender(node, w3, forecast):
    contract, _ = forecast
    whale = Web3.to_checksum_address("0x" + "5a" * 20)
    node.rpc("anvil_impersonateAccount", whale)
    node.rpc("anvil_setBalance", whale, hex(10**19))
    try:
        tx_hash, receipt = mined(w3, contract.functions.forecast(FEATURES).transact({"from": whale}))
    finally:
        node.rpc("anvil_stopImpersonatingAccount", whale)
    top = node.rpc("debug_traceTransaction", tx_hash, CALL_TRACER)
    assert top["from"] == whale.lower() and int(top["gasUsed"], 16) == receipt.gasUsed


def test_revert_reason_is_forgotten_with_its_block(node, w3, cids, caller):
    """evm_revert undoes the block: the tx is pooled again and its old reason is gone."""
    node.rpc("evm_setAutomine", False)
    try:
        tx = caller.functions.infer(request(cids["log_model"], "x", [(-2, 0)])).transact(
            {"from": w3.eth.accounts[7], "gas": GAS}).to_0x_hex()
        deadline = time.monotonic() + 30
        while node.rpc("og_getTransactionStatus", tx)["state"] != "ready":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        snapshot = node.rpc("evm_snapshot")
        node.rpc("evm_mine")
        assert "NaN" in node.rpc("og_getTransactionStatus", tx)["revertReason"]
        assert node.rpc("evm_revert", snapshot) is True
        status = node.rpc("og_getTransactionStatus", tx)
        assert status["state"] != "included" and status["revertReason"] is None
    finally:
        node.rpc("evm_setAutomine", True)
    assert node.wait_receipt(tx)["status"] == "0x0"
    assert "NaN" in node.rpc("og_getTransactionStatus", tx)["revertReason"]


def test_undecodable_inference_call_is_shown_raw(node, w3, caller):
    junk = "0x12345678" + "00" * 8
    call = {"from": w3.eth.accounts[6], "to": caller.address, "data": caller.encode_abi("callRaw", [junk])}
    (raw,) = node.rpc("debug_traceCall", call, "latest", INFERENCE_TRACER)["calls"]
    assert (raw["input"], raw["modelCid"], raw["inputs"], raw["outputs"]) == (junk, None, None, None)
    assert "unknown function selector 0x12345678" in raw["error"]


# --- traceCall ------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", ["latest", "pending"])
def test_trace_call_runs_the_model_like_eth_call(node, w3, forecast, block):
    contract, _ = forecast
    call = {"from": w3.eth.accounts[7], "to": contract.address,
            "data": contract.encode_abi("forecast", [FEATURES])}
    top = node.rpc("debug_traceCall", call, block, CALL_TRACER)
    assert top["output"] == node.rpc("eth_call", call, block)
    assert top["calls"][0]["to"] == F4 and top["gas"] == hex(w3.eth.get_block("latest").gasLimit)
    (inference,) = node.rpc("debug_traceCall", call, block, INFERENCE_TRACER)["calls"]
    assert inference["outputs"]["numbers"][0]["values"] == ["7.1"] and inference["node"] is None


def test_traces_leave_the_chain_as_it_was(node, w3, forecast):
    contract, _ = forecast
    tx_hash, _ = mined(w3, contract.functions.forecast(FEATURES).transact({"from": w3.eth.accounts[8]}))
    call = {"from": w3.eth.accounts[8], "to": contract.address, "data": contract.encode_abi("forecast", [FEATURES])}
    before = (w3.eth.get_block("latest"), contract.functions.predictionCount().call(),
              w3.eth.get_transaction_count(w3.eth.accounts[8]), node.rpc("og_pipeStats")["blocksBuilt"])
    for _ in range(2):
        for options in (CALL_TRACER, INFERENCE_TRACER):
            node.rpc("debug_traceTransaction", tx_hash, options)
            node.rpc("debug_traceCall", call, "pending", options)
    after = (w3.eth.get_block("latest"), contract.functions.predictionCount().call(),
             w3.eth.get_transaction_count(w3.eth.accounts[8]), node.rpc("og_pipeStats")["blocksBuilt"])
    assert after == before


# --- block stats ----------------------------------------------------------------------------------
def test_block_stats(node, w3, forecast):
    contract, _ = forecast
    _, receipt = mined(w3, contract.functions.forecast(FEATURES).transact({"from": w3.eth.accounts[9]}))
    stats = node.rpc("og_getBlockStats", hex(receipt.blockNumber))
    block = w3.eth.get_block(receipt.blockNumber)
    assert (stats["number"], stats["hash"]) == (hex(block.number), block.hash.to_0x_hex())
    assert stats["transactions"] == len(block.transactions)
    records = sum(len(node.rpc("og_getInferenceRecords", h.to_0x_hex())) for h in block.transactions)
    assert stats["records"] == records >= 1
    assert stats["buildSeconds"] > 0 and stats["inferenceSecondsSaved"] > 0
    assert node.rpc("og_getBlockStats", "earliest") is None  # the genesis was not built
    assert "beyond the head" in invalid(node, "og_getBlockStats", hex(block.number + 1000))


# --- bad input ------------------------------------------------------------------------------------
def test_bad_trace_params(node, w3, forecast):
    contract, receipt = forecast
    tx_hash = receipt.transactionHash.to_0x_hex()
    assert "callTracer, ogInferenceTracer" in invalid(node, "debug_traceTransaction", tx_hash, {"tracer": "4byte"})
    assert "options: must be an object" in invalid(node, "debug_traceTransaction", tx_hash, "callTracer")
    assert "options.tracer: must be a string" in invalid(node, "debug_traceTransaction", tx_hash, {"tracer": 1})
    assert "tracerConfig: must be an object" in invalid(
        node, "debug_traceTransaction", tx_hash, {**CALL_TRACER, "tracerConfig": []})
    assert "onlyTopCall: must be true or false" in invalid(
        node, "debug_traceTransaction", tx_hash, {**CALL_TRACER, "tracerConfig": {"onlyTopCall": "yes"}})
    assert "has no option 'diffMode'" in invalid(
        node, "debug_traceTransaction", tx_hash, {**CALL_TRACER, "tracerConfig": {"diffMode": True}})
    assert "withLog: must be true or false" in invalid(
        node, "debug_traceTransaction", tx_hash, {**CALL_TRACER, "tracerConfig": {"withLog": 1}})
    assert "unknown key 'tracr'" in invalid(node, "debug_traceTransaction", tx_hash, {"tracr": "callTracer"})
    assert "disableStack: must be true or false" in invalid(node, "debug_traceTransaction", tx_hash,
                                                             {"disableStack": 1})
    assert "limit: quantity must not be negative" in invalid(node, "debug_traceTransaction", tx_hash, {"limit": -1})
    assert "does not record return data" in invalid(node, "debug_traceTransaction", tx_hash,
                                                      {"enableReturnData": True})
    assert "takes no tracerConfig" in invalid(node, "debug_traceTransaction", tx_hash, {"tracerConfig": {}})
    assert "hash: unknown transaction" in invalid(node, "debug_traceTransaction", "0x" + "ab" * 32, CALL_TRACER)
    assert "hash: must be 32 bytes" in invalid(node, "debug_traceTransaction", "0x1234", CALL_TRACER)
    call = {"to": contract.address}
    assert "beyond the head" in invalid(node, "debug_traceCall", call, "0xffffff", CALL_TRACER)
    assert "transaction: must be an object" in invalid(node, "debug_traceCall", [], "latest", CALL_TRACER)
    assert "unknown tracer" in invalid(node, "debug_traceCall", call, "latest", {"tracer": "prestateTracer"})


def test_trace_of_a_pooled_tx_names_its_state(node, w3):
    assert node.rpc("evm_setAutomine", False) is True
    try:
        tx = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        assert "not in a block (PIPE state:" in invalid(node, "debug_traceTransaction", tx.to_0x_hex(), CALL_TRACER)
    finally:
        node.rpc("evm_setAutomine", True)
    mined(w3, tx)


OPTION_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                             lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                                         max_size=3), max_leaves=8)


@settings(max_examples=100, deadline=None)
@given(st.one_of(OPTION_VALUES, st.fixed_dictionaries(
    {"tracer": st.sampled_from([*TRACERS, "", "x"])},
    optional={"tracerConfig": OPTION_VALUES, "limit": OPTION_VALUES, "disableStack": OPTION_VALUES})))
def test_trace_options_parse_or_name_the_problem(value):
    try:
        options = trace_options(value, "options")
    except ParamError as exc:
        assert exc.name.startswith("options") and exc.reason
    else:
        assert options.tracer in (None, *TRACERS) and isinstance(options.only_top_call, bool)


# --- in process: the replay answers from the committed results ------------------------------------
def test_replay_uses_the_committed_result_not_the_model():
    """A mined INLINE inference replayed with another committed output shows that output."""
    chain = DevChain()
    cid = chain.add_model(model_bytes("linear_regression")).cid
    contract = chain.deploy(fixture_contract("InferenceCaller"))
    result = contract.transact("infer", request(cid, "x", FEATURES))
    block = chain.chain.get_canonical_block_by_number(result.block_number)
    (tx,) = block.transactions
    (inline,) = inference_calls(result.computation)
    assert inline.output.numbers[0].values == (Number(71, 1),)  # what the model gives: 7.1
    request_id = RequestId(tx.hash, 0)
    committed = ModelOutput((NumberTensor("y", (Number(42, 0),), (1, 1)),), (), (), False)
    results = {request_id: InferenceResult(request_id, keccak(inline.input), output=committed)}
    computation = replay_transaction(chain.chain, chain.base_vm_class, block.header, [tx], chain.models, results)
    (replayed,) = inference_calls(computation)
    assert (replayed.output, replayed.request_id, replayed.error) == (committed, request_id, None)
    assert chain.head == block.header  # nothing was persisted
