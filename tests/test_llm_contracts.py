"""The Solidity side of the LLM calls: the interface's selectors are the precompile's, the
``LLMCaller`` harness passes requests and replies through unchanged, and ``ChatAgent`` acts on
the tool call the model chose, the same INLINE and through PIPE, with readable reverts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ogevm.abi.codec import decode_revert_reason
from ogevm.abi.llm import (
    LLM_CHAT_REQUEST,
    LLM_COMPLETION_REQUEST,
    RUN_LLM_CHAT_SELECTOR,
    RUN_LLM_COMPLETION_SELECTOR,
    LLMChatResponse,
    LLMInferenceMode,
)
from ogevm.errors import TransactionFailed
from ogevm.fixtures import fixture_contract
from ogevm.llm import DEFAULT_MODEL, default_runtime
from ogevm.llm.types import ChatMessage, ToolCall, ToolDefinition
from ogevm.pipe.pipeline import Pipeline
from ogevm.precompile.llm import chat_output
from ogevm.precompile.modes import CaptureProvider
from ogevm.vm.chain import DevChain

# tests/ is on sys.path (pytest's rootdir conftest), so the PIPE test helpers are ``pipe.pipe_helpers``
from pipe.pipe_helpers import GAS, GWEI, NODE_KEY, Replica, deploy_all, mine_inline_like, receipt_ok, receipts_of

MAX_TOKENS = 120
TREASURY = 100
PROMPT = "Please send me 12 tokens for the bug report"
WEATHER = ToolDefinition("Get the weather of a city", "get_weather",
                         '{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}')


@pytest.fixture(scope="module")
def runtime():
    """The LLM runtime on its own, to tell what the model answers without any chain."""
    return default_runtime()


@pytest.fixture
def chain():
    return DevChain()


def agent_args(model: str = DEFAULT_MODEL, max_tokens: int = MAX_TOKENS, treasury: int = TREASURY,
               mode: LLMInferenceMode = LLMInferenceMode.VANILLA) -> tuple:
    return model, int(mode), max_tokens, treasury


def expected_reply(runtime, agent, prompt: str, must_act: bool):
    """What the model answers the agent's request, asked directly (temperature 0)."""
    (system,), (name,), (description,), (parameters,), (max_tokens,) = (
        agent.call(n) for n in ("SYSTEM_PROMPT", "TOOL_NAME", "TOOL_DESCRIPTION", "TOOL_PARAMETERS", "maxTokens"))
    messages = (ChatMessage("system", system), ChatMessage("user", prompt))
    return runtime.chat(DEFAULT_MODEL, messages, max_tokens, (ToolDefinition(description, name, parameters),),
                        "required" if must_act else "auto")


def amount_of(reply) -> int:
    (call,) = reply.message.tool_calls
    return json.loads(call.arguments)["amount"]


def call_reverts(contract, name: str, *args) -> str:
    """The revert reason of ``name(*args)`` run as a call (it must revert)."""
    with pytest.raises(TransactionFailed) as failed:
        contract.call(name, *args)
    return failed.value.reason


def as_tuple(message: ChatMessage) -> tuple:
    return (message.role, message.content, message.name, message.tool_call_id,
            tuple((c.id, c.name, c.arguments) for c in message.tool_calls))


# --- the interface --------------------------------------------------------------------------
def test_the_solidity_interface_has_the_precompile_selectors():
    interface = fixture_contract("OGInference")
    completion, chat = interface.function("runLLMCompletion"), interface.function("runLLMChat")
    assert completion.signature == f"runLLMCompletion({LLM_COMPLETION_REQUEST})"
    assert chat.signature == f"runLLMChat({LLM_CHAT_REQUEST})"
    assert (completion.selector, chat.selector) == (RUN_LLM_COMPLETION_SELECTOR, RUN_LLM_CHAT_SELECTOR)
    # the selectors solc compiled into a caller (PUSH4 <selector>) are the same four bytes
    code = fixture_contract("LLMCaller").runtime_code
    for selector in (RUN_LLM_COMPLETION_SELECTOR, RUN_LLM_CHAT_SELECTOR):
        assert b"\x63" + selector in code


def test_a_contract_passes_completions_and_chats_through_unchanged(chain, runtime):
    caller = chain.deploy(fixture_contract("LLMCaller"))
    assert caller.call("complete", (0, DEFAULT_MODEL, "The price of ", 40, [], 0)) == (
        runtime.complete(DEFAULT_MODEL, "The price of ", 40).text,)
    question = (ChatMessage("user", "What is the weather in Paris?"),)
    expected = runtime.chat(DEFAULT_MODEL, question, 100, (WEATHER,), "required")
    assert expected.finish_reason == "tool_calls"
    request = (1, DEFAULT_MODEL, [as_tuple(m) for m in question], [(WEATHER.description, WEATHER.name,
                                                                      WEATHER.parameters)], "required", 100, [], 0)
    assert caller.call("chat", request) == ((expected.finish_reason, as_tuple(expected.message)),)


# --- ChatAgent, INLINE ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(LLMInferenceMode))
def test_the_agent_pays_what_the_model_asks_for(chain, runtime, mode):
    agent = chain.deploy(fixture_contract("ChatAgent"), *agent_args(mode=mode))
    reply = expected_reply(runtime, agent, PROMPT, must_act=True)
    amount = amount_of(reply)
    result = agent.transact("ask", PROMPT, True, gas=GAS)
    assert result.success, result.revert_reason
    asker = chain.accounts[0].address
    assert agent.events(result, "Transfer") == [
        {"to": int.from_bytes(asker, "big"), "amount": amount, "callId": reply.message.tool_calls[0].id}]
    assert agent.call("treasury") == (TREASURY - amount,)
    assert agent.call("balanceOf", asker) == (amount,)
    assert agent.call("lastAnswer") == ("",)


def test_a_reply_without_a_tool_call_is_kept_as_text(chain, runtime):
    agent = chain.deploy(fixture_contract("ChatAgent"), *agent_args())
    reply = expected_reply(runtime, agent, "Hello", must_act=False)
    assert reply.finish_reason != "tool_calls" and reply.message.content  # the path under test
    result = agent.transact("ask", "Hello", False, gas=GAS)
    assert result.success, result.revert_reason
    assert agent.call("lastAnswer") == (reply.message.content,)
    assert [(e["finishReason"], e["content"]) for e in agent.events(result, "Answer")] == [
        (reply.finish_reason, reply.message.content)]
    assert agent.call("treasury") == (TREASURY,) and agent.events(result, "Transfer") == []


def test_while_simulated_the_agent_does_nothing(chain):
    agent = chain.deploy(fixture_contract("ChatAgent"), *agent_args())
    capture = chain.base_vm_class.with_provider(CaptureProvider(chain.models))
    tx = chain.sign(0, agent.address, agent.interface.function("ask").encode(PROMPT, True), gas=GAS)
    _, (result,) = chain.mine([tx], vm_class=capture)
    assert result.success and result.logs == ()
    assert agent.interface.function("ask").decode(result.return_data) == (0,)
    assert agent.call("treasury") == (TREASURY,)


def test_an_amount_above_the_treasury_reverts(chain, runtime):
    probe = chain.deploy(fixture_contract("ChatAgent"), *agent_args())
    amount = amount_of(expected_reply(runtime, probe, PROMPT, must_act=True))
    assert amount > 0
    poor = chain.deploy(fixture_contract("ChatAgent"), *agent_args(treasury=amount - 1))
    result = poor.transact("ask", PROMPT, True, gas=GAS)
    assert result.revert_reason == "ChatAgent: amount above the treasury"


@pytest.mark.parametrize(("calls", "paid", "reason"), [
    ((("transfer", '{"amount":42}'), ("transfer", '{"to":"0xabc","amount":7}')), [42, 7], None),
    ((("transfer", '{"amount":42}'), ("mint", '{"amount":1}')), [], "ChatAgent: unknown tool"),
    ((("transfer", '{"amount":"lots"}'),), [], "FlatJson: 'amount' is not an unsigned integer"),
    ((("transfer", '{"amount":4.2}'),), [], "FlatJson: not a flat JSON object"),
])
def test_the_agent_acts_on_every_call_of_a_reply_or_on_none(chain, calls, paid, reason):
    """Replies the fixture model never gives (mocked): several calls are all paid; one bad
    call reverts the whole transaction."""
    agent = chain.deploy(fixture_contract("ChatAgent"), *agent_args())
    message = ChatMessage("assistant", tool_calls=tuple(ToolCall(f"call_{i}", *c) for i, c in enumerate(calls)))
    chain.mock_inference(DEFAULT_MODEL, chat_output(LLMChatResponse("tool_calls", message)))
    result = agent.transact("ask", PROMPT, True, gas=GAS)
    assert result.revert_reason == reason
    assert [e["amount"] for e in agent.events(result, "Transfer")] == paid
    assert agent.call("treasury") == (TREASURY - sum(paid),)


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "reason"), [
    (agent_args(model="QmNoSuchModel"), "unknown model 'QmNoSuchModel'"),
    (agent_args(max_tokens=0), "max_tokens must be at least 1"),
    (agent_args(max_tokens=600), "max_tokens 600 is above the limit 512 of model 'tiny_chat'"),
])
def test_a_misconfigured_agent_reverts_with_the_reason(chain, args, reason):
    agent = chain.deploy(fixture_contract("ChatAgent"), *args)
    result = agent.transact("ask", PROMPT, True, gas=GAS)
    assert result.revert_reason == call_reverts(agent, "ask", PROMPT, True) == reason


@pytest.mark.parametrize(("changes", "reason"), [
    ({1: "QmNoSuchModel"}, "unknown model 'QmNoSuchModel'"),
    ({5: 0}, "max_tokens must be at least 1"),
    ({7: 101}, "temperature 101 is outside 0..100"),
    ({4: "lookup"}, "tool_choice 'lookup' names no tool"),
    ({3: [("", "bad name", "{}")]}, "tool 0: name 'bad name' is not 1-64 letters, digits, _ or -"),
    ({2: []}, "a chat needs at least one message"),
])
def test_bad_chat_requests_revert_with_a_reason_a_contract_can_catch(chain, changes, reason):
    caller = chain.deploy(fixture_contract("LLMCaller"))
    request = [0, DEFAULT_MODEL, [("user", "Hi", "", "", [])], [(WEATHER.description, WEATHER.name,
                                                                 WEATHER.parameters)], "auto", 40, [], 0]
    for field, value in changes.items():
        request[field] = value
    assert caller.call("tryChat", tuple(request)) == (False, reason)
    assert call_reverts(caller, "chat", tuple(request)) == reason


def test_a_bad_completion_reverts_with_a_reason_a_contract_can_catch(chain):
    caller = chain.deploy(fixture_contract("LLMCaller"))
    request = (0, DEFAULT_MODEL, "The price of ", 40, [], 101)
    result = caller.transact("tryComplete", request, gas=GAS)
    assert result.success and caller.call("lastReason") == ("temperature 101 is outside 0..100",)
    assert caller.transact("complete", request, gas=GAS).revert_reason == "temperature 101 is outside 0..100"


# --- the arguments parser -------------------------------------------------------------------
@pytest.fixture(scope="module")
def parser():
    """A ChatAgent to call ``parseAmount`` on (a pure function: one deployment serves all)."""
    return DevChain().deploy(fixture_contract("ChatAgent"), *agent_args())


@pytest.mark.parametrize(("arguments", "reason"), [
    ("{}", "FlatJson: no field 'amount'"),
    ('{"amount":-1}', "FlatJson: not an unsigned integer"),
    ('{"amount":1.5}', "FlatJson: not a flat JSON object"),
    ('{"amount":1e3}', "FlatJson: not a flat JSON object"),
    ('{"amount":"5"}', "FlatJson: 'amount' is not an unsigned integer"),
    ('{"amount":05}', "FlatJson: number with a leading zero"),
    ('{"amount":' + "9" * 31 + "}", "FlatJson: number longer than 30 digits"),
    ('{"amount":' + "9" * 240 + "}", "FlatJson: number longer than 30 digits"),  # would overflow
    ('{"amount":1,"amount":1}', "FlatJson: 'amount' appears twice"),
    ('{"amount": 1}', "FlatJson: not an unsigned integer"),
    ('{"amount":1} ', "FlatJson: not a flat JSON object"),
    ('{"amount":1,}', "FlatJson: not a flat JSON object"),
    ('{"note":{"x":1},"amount":1}', "FlatJson: not an unsigned integer"),
    ('{"note":"a\\"b","amount":1}', "FlatJson: escapes are not supported"),
    ('{"note":"a\nb","amount":1}', "FlatJson: control character in a string"),
    ('{"note":"ab', "FlatJson: unterminated string"),
    ("", "FlatJson: not a flat JSON object"),
    ("{", "FlatJson: not a flat JSON object"),
    ("[5]", "FlatJson: not a flat JSON object"),
    ("x" * 257, "FlatJson: longer than 256 bytes"),
])
def test_the_parser_reverts_on_arguments_it_does_not_fully_understand(parser, arguments, reason):
    assert call_reverts(parser, "parseAmount", arguments) == reason


plain_text = st.text(st.characters(min_codepoint=0x20, exclude_characters='"\\', exclude_categories=("Cs",)),
                     max_size=12)
flat_objects = st.dictionaries(st.sampled_from(["amount", "to", "note", "Amount", "amount2", ""]),
                               st.integers(0, 10**30 - 1) | plain_text, max_size=4)


@settings(max_examples=40, deadline=None)
@given(flat_objects)
def test_the_parser_reads_every_flat_object_the_precompile_can_give(parser, obj):
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) <= 256 and isinstance(obj.get("amount"), int):
        assert parser.call("parseAmount", text) == (obj["amount"],)
    else:
        assert call_reverts(parser, "parseAmount", text).startswith("FlatJson: ")


@st.composite
def near_flat_objects(draw) -> str:
    """The text of a flat object with an integer amount somewhere, then up to three characters
    inserted, deleted or replaced."""
    items = [(k, v) for k, v in draw(flat_objects).items() if k != "amount"]
    items.insert(draw(st.integers(0, len(items))), ("amount", draw(st.integers(0, 10**30 - 1))))
    text = json.dumps(dict(items), ensure_ascii=False, separators=(",", ":"))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(("insert", "delete", "replace")))
        char = "" if edit == "delete" else draw(st.sampled_from('{}[]":,0123456789-.e \\\nx'))
        text = text[:at] + char + text[at + (edit != "insert"):]
    return text


@settings(max_examples=80, deadline=None)
@given(near_flat_objects())
def test_what_the_parser_accepts_is_that_json_integer(parser, text):
    try:
        (value,) = parser.call("parseAmount", text)
    except TransactionFailed as exc:
        assert exc.reason.startswith("FlatJson: ")
        return
    parsed = json.loads(text)
    assert type(parsed["amount"]) is int and parsed["amount"] == value


# --- ChatAgent through PIPE -----------------------------------------------------------------
def test_the_agent_through_pipe_equals_inline_and_validates_without_models(runtime):
    """A paying ask, a text ask and a reverting ask in one PIPE block: the same header as
    the INLINE twin, and a replica without models imports it."""
    chain, twin = DevChain(), DevChain()
    contracts = [("ChatAgent", agent_args()), ("ChatAgent", agent_args(treasury=0))]
    agent, poor = deploy_all(chain, contracts)
    assert [c.address for c in deploy_all(twin, contracts)] == [agent.address, poor.address]
    amount = amount_of(expected_reply(runtime, agent, PROMPT, must_act=True))
    assert amount > 0
    ask = agent.interface.function("ask")
    txs = [chain.sign(sender, contract.address, ask.encode(prompt, must_act), gas=GAS, max_fee_per_gas=10 * GWEI)
           for sender, contract, prompt, must_act in [(0, agent, PROMPT, True), (1, agent, "Hello", False),
                                                     (2, poor, PROMPT, True)]]
    pipeline = Pipeline(chain, NODE_KEY)
    for tx in txs:
        pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    hashes = [t.hash for t in built.block.transactions]
    assert sorted(hashes) == sorted(t.hash for t in txs) == sorted(r.request_id.tx_hash for r in built.records)
    ok = dict(zip(hashes, map(receipt_ok, receipts_of(chain, built.block))))
    assert [ok[t.hash] for t in txs] == [True, True, False]
    assert agent.call("treasury") == (TREASURY - amount,)
    assert agent.call("balanceOf", chain.accounts[0].address) == (amount,)
    assert agent.call("lastAnswer") == (expected_reply(runtime, agent, "Hello", must_act=False).message.content,)
    assert poor.call("treasury") == (0,)
    twin_block, computations = mine_inline_like(twin, built.block)
    assert twin_block.header == built.block.header
    reverted = computations[hashes.index(txs[2].hash)]
    assert decode_revert_reason(reverted.output) == "ChatAgent: amount above the treasury"
    Replica(chain).sync({built.block.number: built.records})
