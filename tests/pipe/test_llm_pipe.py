"""LLM calls through PIPE: captured in simulation, run by the executor, replayed with the same
reply as INLINE (same header), and validated by a replica that never runs a model."""

from __future__ import annotations

import onnx
import pytest
from eth.db.atomic import AtomicDB

from ogevm.abi import InferenceMode
from ogevm.abi.codec import decode_revert_reason
from ogevm.abi.llm import (
    LLMChatRequest,
    LLMCompletionRequest,
    LLMInferenceMode,
    decode_chat_response,
    decode_completion_response,
    encode_llm_chat,
    encode_llm_completion,
)
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.errors import InvalidModel
from ogevm.llm.types import ChatMessage
from ogevm.models.store import ModelStore
from ogevm.pipe.executor import local_executor
from ogevm.pipe.pipeline import Pipeline
from ogevm.pipe.simulation import WorkerSimulator, process_workers
from ogevm.resources import MODELS, resource
from ogevm.verify.records import InvalidRecord, check_record
from ogevm.verify.tee import SimulatedEnclave
from ogevm.vm.recording_db import RecordingDB
from ogevm.vm.chain import DevChain

from llm_files import WEATHER, renamed_llm
from pipe_helpers import GAS, GWEI, NODE_KEY, Replica, mine_inline_like, receipts_of, resign



def completion(prompt: str, temperature: int = 0, max_tokens: int = 40, **changes) -> bytes:
    return encode_llm_completion(LLMCompletionRequest(
        LLMInferenceMode.VANILLA, "tiny_chat", prompt, max_tokens, (), temperature)._replace(**changes))


def chat(text: str, tool_choice: str = "required", mode=LLMInferenceMode.VANILLA) -> bytes:
    return encode_llm_chat(LLMChatRequest(mode, "tiny_chat", (ChatMessage("user", text),), (WEATHER,),
                                          tool_choice, 120, (), 0))


def send(chain: DevChain, data: bytes, sender: int):
    return chain.sign(sender, INFERENCE_PRECOMPILE_ADDRESS, data, gas=GAS, max_priority_fee_per_gas=0,
                      max_fee_per_gas=10 * GWEI)


@pytest.fixture
def chains():
    return DevChain(), DevChain()


def test_llm_transactions_through_pipe_equal_inline_and_validate_without_models(chains):
    chain, twin = chains
    calls = [completion("The price of "), completion("The price of ", temperature=80),
             completion("ETH", temperature=100, max_tokens=25), chat("What is the weather in Paris?"),
             chat("Hello!", tool_choice="none"), completion("x", max_tokens=0)]
    txs = [send(chain, data, sender) for sender, data in enumerate(calls)]
    pipeline = Pipeline(chain, NODE_KEY)
    for tx in txs:
        pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    assert {t.hash for t in built.block.transactions} == {t.hash for t in txs}
    assert pipeline.passes_per_included_tx() == 2.0
    twin_block, computations = mine_inline_like(twin, built.block)
    assert twin_block.header == built.block.header
    assert receipts_of(twin, twin_block) == receipts_of(chain, built.block)
    outputs = {t.hash: c.output for t, c in zip(twin_block.transactions, computations)}
    assert decode_revert_reason(outputs[txs[-1].hash]) == "max_tokens must be at least 1"  # priced before running
    assert decode_completion_response(outputs[txs[0].hash]) != decode_completion_response(outputs[txs[1].hash])
    reply = decode_chat_response(outputs[txs[3].hash])
    assert reply.finish_reason == "tool_calls" and reply.message.tool_calls[0].name == "get_weather"
    assert not decode_chat_response(outputs[txs[4].hash]).message.tool_calls
    assert {r.request_id.tx_hash for r in built.records} == {t.hash for t in txs[:-1]}
    Replica(chain).sync({built.block.number: built.records})


def test_an_llm_failure_found_by_the_executor_is_a_committed_revert(chains, monkeypatch):
    """A backend failure is only known when the model runs: the executor commits it as an
    error result, and the replay reverts exactly as INLINE does."""
    chain, twin = chains
    from ogevm.llm.model import WindowModel
    from ogevm.errors import ModelExecutionError

    def broken(self, window):
        raise ModelExecutionError("language model 'tiny_chat' failed: injected")

    monkeypatch.setattr(WindowModel, "run", broken)
    tx = send(chain, completion("The price of "), 0)
    pipeline = Pipeline(chain, NODE_KEY)
    pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    assert [r.result.error for r in built.records] == ["language model 'tiny_chat' failed: injected"]
    twin_block, computations = mine_inline_like(twin, built.block)
    assert twin_block.header == built.block.header
    assert decode_revert_reason(computations[0].output) == "language model 'tiny_chat' failed: injected"



def test_simulation_workers_know_a_language_model_added_to_the_store():
    """A worker process prices LLM calls on the models the node's store holds, those added after
    it started included, so a call of an added model is captured, not refused."""
    db = RecordingDB(AtomicDB())
    chain, twin = DevChain(db=db), DevChain()
    simulator = WorkerSimulator(chain, db, process_workers(chain.base_vm_class, chain.chain.chain_id), 1)
    pipeline = Pipeline(chain, NODE_KEY, simulator=simulator)
    try:
        renamed = renamed_llm("tiny_chat_2")
        added = {store.add_llm(renamed).cid for store in (chain.models, twin.models)}
        tx = send(chain, completion("The price of ", model_cid="tiny_chat_2"), 0)
        pipeline.submit(tx)
        (built,) = pipeline.run_until_idle()
        assert [r.model_cid for r in built.records] == ["tiny_chat_2"] and len(added) == 1
        twin_block, computations = mine_inline_like(twin, built.block)
        assert twin_block.header == built.block.header
        assert decode_completion_response(computations[0].output)
    finally:
        pipeline.close()



def test_a_tee_llm_call_is_signed_by_the_enclave_and_validated(chains):
    """LLMInferenceMode.TEE: the record is the enclave's, with its attestation (SIMULATED
    enclave), and the model-free replica accepts it once the registry allows the enclave."""
    chain, twin = chains
    enclave = SimulatedEnclave()
    pipeline = Pipeline(chain, NODE_KEY, executor=local_executor(chain.runtime, NODE_KEY, 1, enclave=enclave))
    assert pipeline.register_nodes() >= 1
    for number in range(1, chain.head.block_number + 1):
        twin.chain.import_block(chain.chain.get_canonical_block_by_number(number))
    tx = send(chain, chat("What is the weather in Paris?", mode=LLMInferenceMode.TEE), 0)
    pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    (record,) = built.records
    assert (record.mode, record.node, record.attestation) == (InferenceMode.TEE, enclave.address,
                                                              enclave.attestation.encode())
    twin_block, _ = mine_inline_like(twin, built.block)
    assert twin_block.header == built.block.header
    Replica(chain).sync({built.block.number: built.records})


def test_a_record_flagged_as_a_simulation_result_is_refused(chains):
    """Only CAPTURE answers with the simulation output (an LLM call gets an empty reply from
    it): a committed record carrying that flag is invalid, whoever signed it."""
    chain, _ = chains
    pipeline = Pipeline(chain, NODE_KEY)
    pipeline.submit(send(chain, completion("The price of "), 0))
    (built,) = pipeline.run_until_idle()
    (record,) = built.records
    check_record(record)
    flagged = resign(record, output=record.result.output._replace(is_simulation_result=True))
    with pytest.raises(InvalidRecord, match="flagged as a simulation result"):
        check_record(flagged)


def test_a_language_model_name_stays_bound_to_its_first_model():
    store = ModelStore()
    data = resource(MODELS, "llm/tiny_chat.onnx").read_bytes()
    assert store.add_llm(data).cid == store.llms.model("tiny_chat").cid  # the same file again: fine
    impostor = onnx.load_from_string(renamed_llm("tiny_chat"))
    impostor.doc_string = "another file, the same name"
    with pytest.raises(InvalidModel, match="the name 'tiny_chat' is taken"):
        store.add_llm(impostor.SerializeToString())


def test_a_tee_call_on_an_executor_without_an_enclave_is_rejected_with_the_reason(chains):
    """No enclave, no valid TEE record: the request is never signed with the node key, the
    transaction goes back to the rounds and ends rejected, naming why."""
    chain, _ = chains
    pipeline = Pipeline(chain, NODE_KEY)
    tx = send(chain, chat("What is the weather in Paris?", mode=LLMInferenceMode.TEE), 0)
    pipeline.submit(tx)
    assert pipeline.run_until_idle() == []
    status = pipeline.pool.status(tx.hash)
    assert status.state.value == "rejected" and "has a TEE enclave" in status.reason
