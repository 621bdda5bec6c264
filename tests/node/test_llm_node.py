"""LLM calls on a real node subprocess with web3.py: ``runLLMCompletion`` and ``runLLMChat`` at
0x…F4 by eth_call (INLINE) and by transaction (PIPE, automine), reverts as JSON-RPC errors, and
language models added and listed over RPC."""

from __future__ import annotations

import json
from dataclasses import astuple

import pytest

from ogevm.abi.codec import decode_revert_reason
from ogevm.llm import ChatMessage, default_runtime, fixture_llm

from llm_files import WEATHER, bad_llm_files, renamed_llm
from node_helpers import artifact

web3 = pytest.importorskip("web3", reason="web3.py is not installed")
from web3.exceptions import ContractLogicError  # noqa: E402

PRECOMPILE = "0x00000000000000000000000000000000000000F4"
VANILLA, TEE = 0, 1
PROMPT = "The price of "
QUESTION = "What is the weather in Paris?"


@pytest.fixture(scope="module")
def og(w3):
    """The precompile as a web3.py contract, with the OGInference ABI (tuple types)."""
    return w3.eth.contract(address=PRECOMPILE, abi=artifact("OGInference")["abi"])


@pytest.fixture(scope="module")
def runtime():
    """The LLM runtime run here, in the test process: what the node must answer."""
    return default_runtime()


def completion(model: str = "tiny_chat", temperature: int = 0, mode: int = VANILLA) -> tuple:
    return (mode, model, PROMPT, 40, [], temperature)


def weather_chat(mode: int = VANILLA) -> tuple:
    return (mode, "tiny_chat", [("user", QUESTION, "", "", [])], [astuple(WEATHER)], "required", 100, [], 0)


def transact(w3, key, function) -> dict:
    """Send ``function`` as a locally signed transaction (gas estimated by the node); its receipt."""
    account = w3.eth.account.from_key(key)
    tx = function.build_transaction({"from": account.address,
                                     "nonce": w3.eth.get_transaction_count(account.address, "pending")})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)


def test_eth_call_of_a_completion_returns_the_decoded_answer(og, runtime):
    (answer,) = og.functions.runLLMCompletion(completion()).call()
    assert answer == runtime.complete("tiny_chat", PROMPT, 40).text and answer


def test_a_completion_transaction_settles_through_pipe_with_its_record(node, w3, og, funded_key, runtime):
    receipt = transact(w3, funded_key, og.functions.runLLMCompletion(completion(mode=TEE)))
    assert receipt.status == 1 and receipt.logs == []  # LLM calls emit no event
    tx_hash = "0x" + bytes(receipt.transactionHash).hex()
    assert node.rpc("og_getTransactionStatus", tx_hash)["state"] == "included"
    (record,) = node.rpc("og_getInferenceRecords", tx_hash)
    assert (record["modelCid"], record["mode"], record["error"]) == ("tiny_chat", "TEE", None)
    assert record["attestation"] is not None  # the (SIMULATED) enclave's
    expected = runtime.complete("tiny_chat", PROMPT, 40).text
    assert record["output"]["strings"] == [{"name": "answer", "values": [expected]}]


def test_a_chat_with_a_forced_tool_call_returns_the_tool_call(node, w3, og, funded_key, runtime):
    finish_reason, message = og.functions.runLLMChat(weather_chat()).call()
    expected = runtime.chat("tiny_chat", [ChatMessage("user", QUESTION)], 100, [WEATHER], "required")
    assert finish_reason == expected.finish_reason == "tool_calls"
    (call,) = message[4]
    assert call == astuple(expected.message.tool_calls[0])
    assert call[1] == "get_weather" and "city" in json.loads(call[2])
    receipt = transact(w3, funded_key, og.functions.runLLMChat(weather_chat()))
    assert receipt.status == 1
    (record,) = node.rpc("og_getInferenceRecords", "0x" + bytes(receipt.transactionHash).hex())
    strings = {tensor["name"]: tensor["values"] for tensor in record["output"]["strings"]}
    assert strings["finish_reason"] == ["tool_calls"] and strings["tool_calls"] == list(call)


def test_a_bad_request_is_a_json_rpc_error_carrying_the_revert_reason(node, og, funded_key):
    reason = "temperature 101 is outside 0..100"
    data = og.functions.runLLMCompletion(completion(temperature=101))._encode_transaction_data()
    for method in ("eth_call", "eth_estimateGas"):
        error = node.call(method, {"to": PRECOMPILE, "data": data}, "latest")["error"]
        assert error["code"] == 3 and error["message"] == f"execution reverted: {reason}", method
        assert decode_revert_reason(bytes.fromhex(error["data"][2:])) == reason
    with pytest.raises(ContractLogicError, match=reason):
        og.functions.runLLMCompletion(completion(temperature=101)).call()
    with pytest.raises(ContractLogicError, match="unknown model 'nowhere'"):
        og.functions.runLLMCompletion(completion(model="nowhere")).call()


def test_a_language_model_added_over_rpc_is_listed_and_callable_by_name(node, og, runtime):
    model = fixture_llm()
    described = node.rpc("og_addLanguageModel", "0x" + renamed_llm("rpc_chat").hex())
    assert described["name"] == "rpc_chat" and described["cid"].startswith("bafkrei")
    assert (described["contextLength"], described["maxOutputTokens"], described["costPerToken"]) == (
        model.context_length, model.max_output_tokens, model.cost_per_token)
    assert node.rpc("og_addLanguageModel", "0x" + renamed_llm("rpc_chat").hex()) == described  # idempotent
    listed = node.rpc("og_listLanguageModels")
    assert listed[0] == {"name": "tiny_chat", "cid": model.cid, "contextLength": model.context_length,
                         "maxOutputTokens": model.max_output_tokens, "costPerToken": model.cost_per_token}
    assert listed.count(described) == 1
    # the same graph under another name: the same answer, by name and by CID
    for name in ("rpc_chat", described["cid"]):
        assert og.functions.runLLMCompletion(completion(model=name)).call() == (
            runtime.complete("tiny_chat", PROMPT, 40).text,)


@pytest.mark.parametrize("what", sorted(bad_llm_files()))
def test_a_bad_language_model_file_is_refused_with_a_readable_error(node, what):
    data, words = bad_llm_files()[what]
    before = node.rpc("og_listLanguageModels")
    error = node.call("og_addLanguageModel", "0x" + data.hex())["error"]
    assert error["code"] == -32602 and words in error["message"], error
    assert node.rpc("og_listLanguageModels") == before


def test_a_language_model_param_that_is_not_hex_is_invalid_params(node):
    error = node.call("og_addLanguageModel", "not hex")["error"]
    assert error["code"] == -32602 and "0x-prefixed hex" in error["message"]
