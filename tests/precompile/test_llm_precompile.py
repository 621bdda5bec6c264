"""The LLM calls at ``0x…F4`` (``runLLMCompletion``, ``runLLMChat``) against the specification.

Codecs are checked against ``eth_abi`` (what Solidity and every client library encode), gas
against the rule of SPEC §11.7 with prompt tokens counted here from the chat template of
§11.3, and replies against the runtime run with the seed the request id gives. The committed
conformance vectors replay on a fresh chain.
"""

from __future__ import annotations

import json

import pytest
from eth.db.atomic import AtomicDB
from eth.vm.message import Message
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ogevm.abi.codec import decode_revert_reason
from ogevm.abi.llm import (
    LLM_CHAT_REQUEST,
    LLM_CHAT_RESPONSE,
    LLM_COMPLETION_REQUEST,
    RUN_LLM_CHAT_SELECTOR,
    RUN_LLM_COMPLETION_SELECTOR,
    LLMChatRequest,
    LLMCompletionRequest,
    LLMInferenceMode,
    decode_chat_response,
    decode_completion_response,
    decode_llm_chat,
    decode_llm_completion,
    encode_chat_response,
    encode_completion_response,
    encode_llm_chat,
    encode_llm_completion,
)
from ogevm.abi.types import ModelOutput, Number, NumberTensor, StringTensor, JsonScalar
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.errors import MalformedRequest
from ogevm.fixtures import FIXTURES
from ogevm.llm import default_runtime, fixture_llm
from ogevm.llm.types import ChatMessage
from ogevm.precompile.modes import CaptureProvider, ReplayProvider
from ogevm.records import ZERO_HASH, InferenceResult, RequestId
from ogevm.vm.accounts import DEV_ACCOUNTS
from ogevm.vm.calls import execute_call
from ogevm.vm.chain import DevChain, chain_class
from ogevm.vm.forks import InferencePragueVM
from ogevm.vm.genesis import genesis_params, genesis_state

from precompile.llm_requests import (
    WEATHER,
    abi_chat_responses,
    abi_chats,
    abi_completions,
    runnable_chats,
    runnable_completions,
)

A = INFERENCE_PRECOMPILE_ADDRESS
GAS = 2_000_000
SENDER = DEV_ACCOUNTS[0].address
VECTORS = json.loads((FIXTURES / "vectors" / "llm" / "vectors.json").read_text(encoding="utf-8"))

# --- the specification, written out here --------------------------------------------------
#: SPEC §11.1: the fixture model's gas per generated token.
COST_PER_TOKEN = 2018
#: SPEC §1.1 step 8 and §11.7: the mode surcharge of VANILLA and TEE.
SURCHARGE = {LLMInferenceMode.VANILLA: 0, LLMInferenceMode.TEE: 3_000}
TOOLS_HEADER = ('# Tools\nTo call a tool, answer <tool_call>{"name": NAME, "arguments": ARGUMENTS}'
                "</tool_call>.\n")


def base_gas(data: bytes) -> int:
    """G1: 5,000, 12 per word for every call of 0xF4 and 12 more per word for an LLM call."""
    return 5_000 + (12 + 12) * -(-len(data) // 32)


def llm_gas(prompt_tokens: int, max_tokens: int) -> int:
    return 20_000 + prompt_tokens * (8 + -(-COST_PER_TOKEN // 8)) + max_tokens * COST_PER_TOKEN


def chat_prompt_tokens(call: LLMChatRequest) -> int:
    """Tokens of a chat prompt for the fixture model: one per UTF-8 byte of text, one per marker."""
    bodies = []
    for m in call.messages:
        calls = ["<tool_call>" + json.dumps({"name": c.name, "arguments": json.loads(c.arguments)},
                                            ensure_ascii=False) + "</tool_call>" for c in m.tool_calls]
        bodies.append([m.role, "\n".join(([m.content] if m.content else []) + calls)])
    if call.tools and call.tool_choice != "none":
        block = TOOLS_HEADER + "\n".join(json.dumps(
            {"name": t.name, "description": t.description, "parameters": json.loads(t.parameters or "{}")},
            ensure_ascii=False) for t in call.tools)
        if bodies[0][0] == "system":
            bodies[0][1] = bodies[0][1] + "\n\n" + block if bodies[0][1] else block
        else:
            bodies.insert(0, ["system", block])
    text = "".join(f"{role}\n{body}\n" for role, body in bodies) + "assistant\n"
    return len(text.encode("utf-8")) + 2 * len(bodies) + 1


def prompt_tokens(call) -> int:
    if isinstance(call, LLMCompletionRequest):
        return len(call.prompt.encode("utf-8"))
    return chat_prompt_tokens(call)


def charge(data: bytes, call) -> int:
    """G1 + G2: the whole gas of a call that gets past the LLM charge (there is no event)."""
    return base_gas(data) + llm_gas(prompt_tokens(call), call.max_tokens) + SURCHARGE[call.mode]


def seed(tx_hash: bytes, index: int) -> int:
    return int.from_bytes(keccak(tx_hash + index.to_bytes(32, "big")), "big")


def as_abi(value):
    """A request or response as the plain tuples eth_abi takes and gives."""
    if isinstance(value, (tuple, list)):
        return tuple(as_abi(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return tuple(as_abi(getattr(value, f)) for f in value.__dataclass_fields__)
    return int(value) if isinstance(value, int) else value


def encode(call) -> bytes:
    return encode_llm_completion(call) if isinstance(call, LLMCompletionRequest) else encode_llm_chat(call)


# --- chains ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chain() -> DevChain:
    return DevChain()


def state_with(provider):
    """The head state of a fresh dev chain whose precompile asks ``provider``."""
    chain = chain_class(InferencePragueVM.with_provider(provider)).from_genesis(
        AtomicDB(), genesis_params(), genesis_state(DEV_ACCOUNTS))
    return chain.get_vm(chain.create_header_from_parent(chain.get_canonical_head())).state


def calls_in_one_transaction(state, tx_hash: bytes, datas: list[bytes]) -> list:
    """Computations of calls of the precompile made in order by one transaction ``tx_hash``."""
    context = state.get_transaction_context_class()(gas_price=0, origin=SENDER)
    context.inference_tx_hash = tx_hash
    return [state.computation_class.apply_message(state, Message(gas=GAS, to=A, sender=SENDER, value=0, data=data,
                                                                 code=b""), context) for data in datas]


# --- codecs against eth_abi ---------------------------------------------------------------
def test_selectors_are_those_of_the_solidity_signatures():
    completion = "runLLMCompletion((uint8,string,string,uint32,string[],uint32))"
    chat = ("runLLMChat((uint8,string,(string,string,string,string,(string,string,string)[])[],"
            "(string,string,string)[],string,uint32,string[],uint32))")
    assert RUN_LLM_COMPLETION_SELECTOR == keccak(text=completion)[:4] == bytes.fromhex("14800c61")
    assert RUN_LLM_CHAT_SELECTOR == keccak(text=chat)[:4] == bytes.fromhex("e39aa7e7")


@settings(max_examples=150, deadline=None)
@given(st.one_of(abi_completions, abi_chats))
def test_requests_encode_as_eth_abi_and_round_trip(call):
    abi_type = LLM_COMPLETION_REQUEST if isinstance(call, LLMCompletionRequest) else LLM_CHAT_REQUEST
    decode = decode_llm_completion if isinstance(call, LLMCompletionRequest) else decode_llm_chat
    data = encode(call)
    assert data[4:] == abi_encode([abi_type], [as_abi(call)])
    assert abi_decode([abi_type], data[4:]) == (as_abi(call),)
    assert decode(data) == call
    assert decode(data[:4] + abi_encode([abi_type], [as_abi(call)])) == call


@settings(max_examples=100, deadline=None)
@given(abi_chat_responses, st.text())
def test_responses_encode_as_eth_abi_and_round_trip(response, answer):
    data = encode_chat_response(response)
    assert data == abi_encode([LLM_CHAT_RESPONSE], [as_abi(response)])
    assert decode_chat_response(data) == response
    assert encode_completion_response(answer) == abi_encode(["(string)"], [(answer,)])
    assert decode_completion_response(abi_encode(["(string)"], [(answer,)])) == answer


def relocated_tail(data: bytes, head: int) -> bytes:
    """``data`` with a zero word inserted before the tail of dynamic member ``head`` of the
    request tuple (the last one), and its offset moved past it: a gap eth_abi reads through."""
    at = 36 + 32 * head
    offset = int.from_bytes(data[at:at + 32], "big")
    start = 36 + offset
    return data[:at] + (offset + 32).to_bytes(32, "big") + data[at + 32:start] + bytes(32) + data[start:]


@settings(max_examples=100, deadline=None)
@given(st.one_of(abi_completions, abi_chats), st.sampled_from(["top gap", "trailing word", "tail gap"]))
def test_non_canonical_calldata_of_the_same_value_is_refused(call, change):
    """eth_abi decodes each variant to the same request; the precompile takes one encoding only."""
    completion = isinstance(call, LLMCompletionRequest)
    abi_type, decode, name = ((LLM_COMPLETION_REQUEST, decode_llm_completion, "runLLMCompletion") if completion
                              else (LLM_CHAT_REQUEST, decode_llm_chat, "runLLMChat"))
    data = encode(call)
    variant = {"top gap": lambda: data[:4] + (64).to_bytes(32, "big") + bytes(32) + data[36:],
               "trailing word": lambda: data + bytes(32),
               "tail gap": lambda: relocated_tail(data, 4 if completion else 6)}[change]()
    assert abi_decode([abi_type], variant[4:]) == (as_abi(call),)
    with pytest.raises(MalformedRequest, match=f"^malformed {name} calldata$"):
        decode(variant)


@pytest.mark.parametrize("word, value, reason", [
    (0, 2, "unknown LLM inference mode 2"), (0, 255, "unknown LLM inference mode 255"),
    (0, 256, "malformed runLLMCompletion calldata"), (3, 2**32, "malformed runLLMCompletion calldata"),
    (5, 2**255, "malformed runLLMCompletion calldata"), (1, 2**64, "malformed runLLMCompletion calldata"),
    (2, 32, "malformed runLLMCompletion calldata")])  # prompt aliased onto the head: an offset into it
def test_out_of_range_words_and_aliased_offsets_are_refused(word, value, reason):
    data = encode_llm_completion(LLMCompletionRequest(0, "tiny_chat", "hi", 4, (), 0))
    at = 36 + 32 * word
    with pytest.raises(MalformedRequest, match=f"^{reason}$"):
        decode_llm_completion(data[:at] + value.to_bytes(32, "big") + data[at + 32:])


def test_an_offset_aliasing_another_member_is_refused():
    """The prompt offset pointing at the model CID's string: both decode, eth_abi reads the CID
    twice, the precompile refuses."""
    data = encode_llm_completion(LLMCompletionRequest(0, "same", "same", 4, (), 0))
    aliased = data[:36 + 64] + data[36 + 32:36 + 64] + data[36 + 96:]
    assert abi_decode([LLM_COMPLETION_REQUEST], aliased[4:]) == ((0, "same", "same", 4, (), 0),)
    with pytest.raises(MalformedRequest, match="^malformed runLLMCompletion calldata$"):
        decode_llm_completion(aliased)


# --- gas ----------------------------------------------------------------------------------
def test_the_spec_examples_of_the_gas_rule_and_the_template_count():
    """SPEC §11.7: 25 prompt tokens with max_tokens 100 cost 228,325, 270 with 100 cost 292,270,
    1,536 with 512 cost 1,454,112; and the count of a chat prompt written out here from §11.3
    is the runtime's."""
    assert fixture_llm().cost_per_token == COST_PER_TOKEN
    assert (llm_gas(25, 100), llm_gas(270, 100), llm_gas(1_536, 512)) == (228_325, 292_270, 1_454_112)
    one_tool = LLMChatRequest(0, "tiny_chat", (ChatMessage("user", "What is the weather in Paris?"),), (WEATHER,),
                              "", 100, (), 0)
    prepared = default_runtime().prepare_chat("tiny_chat", one_tool.messages, 100, one_tool.tools)
    assert chat_prompt_tokens(one_tool) == len(prepared.prompt) == 327


@settings(max_examples=40, deadline=None)
@given(st.one_of(runnable_completions("tiny_chat"), runnable_chats("tiny_chat")))
def test_a_call_uses_the_base_gas_plus_the_llm_charge(chain, call):
    data = encode(call)
    computation = chain.execute_call(A, data, gas=GAS)
    assert not computation.is_error, decode_revert_reason(computation.output)
    assert computation.get_gas_used() == charge(data, call)
    assert computation.get_log_entries() == ()


def test_one_gas_less_than_the_charge_is_out_of_gas_and_a_refusal_keeps_the_base_gas(chain):
    call = LLMChatRequest(LLMInferenceMode.TEE, "tiny_chat", (ChatMessage("user", "Hi"),), (WEATHER,),
                          "required", 50, (), 0)
    data = encode(call)
    short = chain.execute_call(A, data, gas=charge(data, call) - 1)
    assert short.is_error and not short.output and short.get_gas_used() == charge(data, call) - 1
    refused = chain.execute_call(A, encode(call._replace(tool_choice="lookup")), gas=GAS)
    assert decode_revert_reason(refused.output) == "tool_choice 'lookup' names no tool"
    assert refused.get_gas_used() == base_gas(encode(call._replace(tool_choice="lookup")))


# --- determinism: the seed is the request id -------------------------------------------------
SAMPLED = LLMCompletionRequest(LLMInferenceMode.VANILLA, "tiny_chat", "The price of ", 30, (), 80)


def test_the_same_request_id_gives_the_same_sampled_reply_and_another_index_another_seed(chain):
    state, tx = chain.state(), keccak(b"a transaction")
    data = encode(SAMPLED)
    first, second = (decode_completion_response(c.output)
                     for c in calls_in_one_transaction(state, tx, [data, data]))
    (again,) = (decode_completion_response(c.output) for c in calls_in_one_transaction(state, tx, [data]))
    runtime = default_runtime()
    expected = [runtime.complete("tiny_chat", SAMPLED.prompt, 30, (), 80, seed(tx, i)).text for i in (0, 1)]
    assert [first, second] == expected and again == first
    assert first != second  # index 1 draws from another seed
    greedy = encode(SAMPLED._replace(temperature=0))
    replies = {c.output for c in calls_in_one_transaction(state, tx, [greedy, greedy])}
    assert len(replies) == 1  # a greedy reply uses no seed


def test_a_refused_call_takes_its_index_too(chain):
    """Step 2 comes before decoding: after a malformed call and a refused one, a sampled call
    of the same transaction is request 2."""
    tx = keccak(b"another transaction")
    refused = encode(SAMPLED._replace(max_tokens=0))
    *_, third = calls_in_one_transaction(chain.state(), tx, [b"\x14\x80\x0c\x61", refused, encode(SAMPLED)])
    assert decode_completion_response(third.output) == default_runtime().complete(
        "tiny_chat", SAMPLED.prompt, 30, (), 80, seed(tx, 2)).text


def test_a_bare_call_is_request_zero_of_the_zero_hash_and_a_transaction_uses_its_hash(chain):
    data = encode(SAMPLED)
    runtime = default_runtime()
    bare = decode_completion_response(chain.call(A, data, gas=GAS))
    assert bare == runtime.complete("tiny_chat", SAMPLED.prompt, 30, (), 80, seed(ZERO_HASH, 0)).text
    mined = DevChain().send(0, A, data, gas=500_000)
    assert mined.success
    assert decode_completion_response(mined.return_data) == runtime.complete(
        "tiny_chat", SAMPLED.prompt, 30, (), 80, seed(mined.tx_hash, 0)).text


# --- what a results provider answers ---------------------------------------------------------
CHAT = LLMChatRequest(LLMInferenceMode.VANILLA, "tiny_chat", (ChatMessage("user", "Hello!"),), (), "", 20, (), 0)
COMPLETION = SAMPLED._replace(temperature=0)


@pytest.mark.parametrize("call", [COMPLETION, CHAT], ids=["completion", "chat"])
def test_a_simulation_answers_an_empty_response_and_charges_as_inline(chain, call):
    data = encode(call)
    provider = CaptureProvider({})
    computation = execute_call(state_with(provider), A, data, SENDER, 0, GAS)
    assert not computation.is_error
    empty = ("",) if call is COMPLETION else ("", ("", "", "", "", ()))
    abi_type = "(string)" if call is COMPLETION else LLM_CHAT_RESPONSE
    assert abi_decode([abi_type], computation.output) == (empty,)
    assert computation.get_gas_used() == charge(data, call) == chain.execute_call(A, data, gas=GAS).get_gas_used()
    (captured,) = provider.requests[ZERO_HASH]
    assert captured.call == call and captured.digest == keccak(data)


def strings(*tensors) -> ModelOutput:
    return ModelOutput((), tuple(StringTensor(name, tuple(values)) for name, values in tensors), (), False)


REPLY = (("finish_reason", ["stop"]), ("message", ["assistant", "Hi", "", ""]), ("tool_calls", []))
NOT_A_REPLY = {
    "completion: no tensor": (COMPLETION, strings()),
    "completion: two answers": (COMPLETION, strings(("answer", ["a", "b"]))),
    "completion: other name": (COMPLETION, strings(("text", ["a"]))),
    "completion: a number tensor too": (COMPLETION, ModelOutput(
        (NumberTensor("answer", (Number(1, 0),), (1,)),), (StringTensor("answer", ("a",)),), (), False)),
    "completion: a json too": (COMPLETION, ModelOutput((), (StringTensor("answer", ("a",)),),
                                                       (JsonScalar("answer", "1"),), False)),
    "completion: a chat reply": (COMPLETION, strings(*REPLY)),
    "chat: a completion reply": (CHAT, strings(("answer", ["a"]))),
    "chat: message of three": (CHAT, strings(REPLY[0], ("message", ["assistant", "Hi", ""]), REPLY[2])),
    "chat: tool_calls of four": (CHAT, strings(REPLY[0], REPLY[1], ("tool_calls", ["c", "f", "{}", "x"]))),
    "chat: tensors out of order": (CHAT, strings(REPLY[1], REPLY[0], REPLY[2])),
    "chat: two finish reasons": (CHAT, strings(("finish_reason", ["stop", "stop"]), REPLY[1], REPLY[2])),
}


def replay(call, result_output=None, error=None):
    """A bare call of ``call`` answered by a replay holding one hand-made result for it."""
    data = encode(call)
    result = InferenceResult(RequestId(ZERO_HASH, 0), keccak(data), result_output, error)
    return data, execute_call(state_with(ReplayProvider({}, {result.request_id: result})), A, data, SENDER, 0, GAS)


@pytest.mark.parametrize("case", NOT_A_REPLY)
def test_a_record_output_that_is_not_a_reply_reverts_after_the_charge(case):
    call, output = NOT_A_REPLY[case]
    data, computation = replay(call, output)
    assert decode_revert_reason(computation.output) == "the result of an LLM call is not a reply"
    assert computation.get_gas_used() == charge(data, call)


def test_a_record_in_reply_form_is_returned_as_it_is_and_an_error_record_reverts():
    calls = ("call_7", "get_weather", '{"city":"Oslo"}')
    _, chat = replay(CHAT, strings(("finish_reason", ["tool_calls"]), ("message", ["assistant", "", "n", "t"]),
                                   ("tool_calls", list(calls))))
    assert abi_decode([LLM_CHAT_RESPONSE], chat.output) == (("tool_calls", ("assistant", "", "n", "t", (calls,))),)
    _, completion = replay(COMPLETION, strings(("answer", ["not what the model says"])))
    assert decode_completion_response(completion.output) == "not what the model says"
    data, failed = replay(COMPLETION, error="language model 'tiny_chat' failed: boom")
    assert decode_revert_reason(failed.output) == "language model 'tiny_chat' failed: boom"
    assert failed.get_gas_used() == charge(data, COMPLETION)


# --- the committed conformance vectors ------------------------------------------------------
@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_the_conformance_vectors_replay(chain, vector):
    """Each vector replays byte for byte; a success's gas is the rule's for its request."""
    expected, data = vector["expected"], bytes.fromhex(vector["calldata"][2:])
    computation = chain.execute_call(A, data, gas=vector["gas_limit"])
    assert (not computation.is_error, "0x" + bytes(computation.output).hex(), computation.get_gas_used(),
            list(computation.get_log_entries())) == (
        expected["success"], expected["output"], expected["gas_used"], expected["logs"])
    if expected["revert_reason"] is not None:
        assert decode_revert_reason(computation.output) == expected["revert_reason"]
    if expected["success"]:
        decode = decode_llm_completion if vector["function"] == "runLLMCompletion" else decode_llm_chat
        assert expected["gas_used"] == charge(data, decode(data))
