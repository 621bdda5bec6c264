"""Attacks on the LLM calls at ``0x…F4`` and on the language models a node accepts.

The attacker has a funded account and may add ``byte-window-v1`` files to a dev node. Each
test is one attack: a reply the model may legally write, a file a node may be sent, or
calldata of an adversarial shape. What must hold: a call ends in success, a readable revert
or out of gas; INLINE and PIPE agree; the work a call causes is about what its gas pays for;
no reason carries a library's message.
"""

from __future__ import annotations

import itertools
import string
import time
import warnings

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from fuzz_budget import fuzz_settings, precompile_outcome
from ogevm.abi.codec import decode_revert_reason
from ogevm.abi.llm import (
    LLMChatRequest,
    LLMCompletionRequest,
    LLMInferenceMode,
    decode_chat_response,
    encode_llm_chat,
    encode_llm_completion,
)
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.errors import InvalidInput, InvalidModel, ModelStoreError
from ogevm.llm import LLMRuntime, default_runtime, tokenizer
from ogevm.llm.constants import MAX_JSON_DEPTH, MAX_WINDOW_TOKENS
from ogevm.llm.model import Generation, LanguageModel, WindowModel
from ogevm.llm.runtime import _vocabulary
from ogevm.llm.sampling import sample
from ogevm.llm.template import Special
from ogevm.llm.toolcalls import _depth, check_tools, forced_start, load_json, parse_calls
from ogevm.llm.types import ChatMessage, ToolCall, ToolDefinition
from ogevm.pipe.pipeline import Pipeline
from ogevm.precompile.llm import response_data
from ogevm.precompile.mocks import InvalidMock, parse_output
from ogevm.resources import MODELS, resource
from ogevm.vm.chain import DevChain
from llm_files import WEATHER, renamed_llm, with_metadata
from pipe.pipe_helpers import GAS, GWEI, NODE_KEY

A = INFERENCE_PRECOMPILE_ADDRESS
VANILLA = LLMInferenceMode.VANILLA
#: A tool whose forced call starts ``<tool_call>{"name": "f", "arguments": {"x": ``.
F = ToolDefinition("", "f", '{"properties": {"x": {}}}')


# --- language model files an attacker can write ------------------------------------------------
def window_file(nodes, constants: dict, window: int = 1, name: str = "evil", ml: bool = False) -> bytes:
    """A ``byte-window-v1`` file: ``nodes`` map ``context`` int64 [1, window] to ``logits``."""
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("context", TensorProto.INT64, [1, window])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, tokenizer.VOCAB_SIZE])],
        [numpy_helper.from_array(value, key) for key, value in constants.items()])
    opsets = [helper.make_opsetid("", 18)] + ([helper.make_opsetid("ai.onnx.ml", 3)] if ml else [])
    model = helper.make_model(graph, opset_imports=opsets, ir_version=9)
    helper.set_model_props(model, {"ogevm.llm.format": "byte-window-v1", "ogevm.llm.name": name,
                                   "ogevm.llm.window": str(window), "ogevm.llm.context_length": "2048",
                                   "ogevm.llm.max_output_tokens": "512"})
    return model.SerializeToString()


def one_hot(winner: np.ndarray | int) -> np.ndarray:
    """Rows of logits where each row's token ``winner`` scores 50 and the others -50."""
    rows = np.full((tokenizer.VOCAB_SIZE + 1, tokenizer.VOCAB_SIZE), -50.0, np.float32)
    rows[np.arange(len(rows)), winner] = 50.0
    return rows


def column_file(column: int, window: int, name: str) -> bytes:
    """A model that always says the token at ``column`` of its window (pads included)."""
    return window_file([helper.make_node("Gather", ["context", "column"], ["token"], axis=1),
                        helper.make_node("Gather", ["table", "token"], ["logits"], axis=0)],
                       {"column": np.array(column, np.int64), "table": one_hot(np.arange(261) % 260)},
                       window, name)


def logits_file(logits: np.ndarray, name: str) -> bytes:
    """A model that gives the same ``logits`` after every context."""
    return window_file([helper.make_node("Gather", ["table", "zero"], ["logits"], axis=0)],
                       {"table": logits.astype(np.float32)[None, :], "zero": np.array([0], np.int64)}, 1, name)


def scripted_file(text: bytes, name: str = "scripted", window: int = 6) -> bytes:
    """A model that, after each ``window`` bytes of ``text``, says the byte that follows them in
    ``text`` (and ``<|endoftext|>`` anywhere else): it writes ``text`` once the reply starts it."""
    table: dict[int, int] = {}
    for i, byte in enumerate(text):
        context = ([tokenizer.PAD] * window + list(text[:i]))[-window:]
        key = sum(token * 512 ** (window - 1 - j) for j, token in enumerate(context))
        assert table.setdefault(key, byte) == byte, "the script repeats a context with another follower"
    return window_file(
        [helper.make_node("MatMul", ["context", "pack"], ["key2d"]),
         helper.make_node("Reshape", ["key2d", "flat"], ["key"]),
         helper.make_node("LabelEncoder", ["key"], ["next"], domain="ai.onnx.ml", keys_int64s=list(table),
                          values_int64s=list(table.values()), default_int64=tokenizer.END_OF_TEXT),
         helper.make_node("Gather", ["table", "next"], ["logits"], axis=0)],
        {"pack": np.array([[512 ** (window - 1 - i)] for i in range(window)], np.int64),
         "flat": np.array([1], np.int64), "table": one_hot(np.arange(261) % 260)}, window, name, ml=True)


def fixture_file() -> bytes:
    return resource(MODELS, "llm/tiny_chat.onnx").read_bytes()


def forced_reply(rest: str) -> bytes:
    """What a model must write to call ``F`` with its forced start followed by ``rest``."""
    return (forced_start(check_tools((F,))[0]) + rest).encode()


def call(chain: DevChain, data: bytes, gas: int = 3_000_000):
    computation = chain.execute_call(A, data, gas=gas)
    precompile_outcome(computation, gas, logs=0)
    return computation


def ask_f(model: str, max_tokens: int = 120) -> LLMChatRequest:
    return LLMChatRequest(VANILLA, model, (ChatMessage("user", "go"),), (F,), "f", max_tokens, (), 0)


# --- a reply the model may write ------------------------------------------------------------------
def test_a_tool_call_with_a_lone_surrogate_escape_is_text_inline_and_in_pipe():
    """``{"x": "\\ud800"}`` is valid JSON, but its string names no character: as a call it has no
    UTF-8 form. Before the fix INLINE reverted with ``internal error: UnicodeEncodeError`` and
    PIPE rejected the transaction after four rounds of unpaid generation, its reason quoting
    Python's exception. Any real LLM asked to write that escape would do it."""
    chain = DevChain()
    model = chain.models.add_llm(scripted_file(forced_reply('"\\ud800"}}</tool_call>'))).name
    request = ask_f(model)
    inline = call(chain, encode_llm_chat(request))
    assert not inline.is_error
    reply = decode_chat_response(inline.output)
    assert (reply.finish_reason, reply.message.tool_calls) == ("stop", ())
    assert reply.message.content.endswith('{"x": "\\ud800"}}</tool_call>')

    tx = chain.sign(0, A, encode_llm_chat(request), gas=GAS, max_priority_fee_per_gas=0, max_fee_per_gas=10 * GWEI)
    pipeline = Pipeline(chain, NODE_KEY)
    pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    (record,) = built.records
    assert [t.hash for t in built.block.transactions] == [tx.hash]
    assert response_data(request, record.result.output) == inline.output


def test_a_number_too_large_for_a_float_is_not_json():
    """``1e400`` parses to infinity and was written back as ``Infinity``, which is not JSON: a tool's
    parameters rendered it into the prompt, and a call's arguments came back in a form that the
    same chain then refused when the reply was sent back as a message."""
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_json('{"x": 1e400}')
    with pytest.raises(InvalidInput, match="tool 'f': parameters is not valid JSON"):
        check_tools((ToolDefinition("", "f", '{"properties": {"x": {"maximum": -1e400}}}'),))
    assert parse_calls('<tool_call>{"name": "f", "arguments": {"x": 1e400}}</tool_call>', frozenset("f")) is None
    assert parse_calls('<tool_call>{"name": "f", "arguments": {"x": 1e300}}</tool_call>', frozenset("f")) == (
        "", [("f", '{"x":1e+300}')])


def _reference_depth(text: str) -> int:
    """The nesting rule of SPEC §11.8 written as the obvious loop."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@fuzz_settings(300)
@given(st.text(st.sampled_from('[]{}"\\ aé\n'), max_size=80))
def test_the_nesting_scan_is_the_rule_of_the_spec(text):
    assert _depth(text) == _reference_depth(text)


def test_json_texts_cost_about_what_their_calldata_pays():
    """A chat refused for its length still parses every tool call's arguments first, and pays
    only the base gas of its calldata (12 per word). The nesting scan ran in the interpreter at
    about 270 ns per gas, ten times what ``runModelInference`` costs; it must cost no more than
    tokenizing a prompt of the same size, which every refused completion does."""
    chain = DevChain()
    padded = "{" + " " * 16_000 + "}"
    calls = tuple(ToolCall("c", "f", padded) for _ in range(40))
    chat = encode_llm_chat(LLMChatRequest(VANILLA, "tiny_chat", (ChatMessage("assistant", tool_calls=calls),),
                                          (), "", 1, (), 0))
    completion = encode_llm_completion(LLMCompletionRequest(VANILLA, "tiny_chat", "x" * (len(chat) - 400), 1, (), 0))

    def seconds(data: bytes) -> float:
        assert "exceeds the context" in decode_revert_reason(call(chain, data).output)
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            chain.execute_call(A, data, gas=3_000_000)
            runs.append(time.perf_counter() - start)
        return min(runs)

    assert seconds(chat) < 3 * seconds(completion)


def test_plus_infinite_logits_take_all_the_weight():
    """``exp(inf - inf)`` is NaN: sampling leaned on ``NaN != 0`` to pick the last ``+inf`` token,
    which SPEC §11.5 does not say (no token has ``w > 0`` there). Now the ``+inf`` tokens share
    the weight, and no NaN is ever computed."""
    logits = np.zeros(tokenizer.VOCAB_SIZE, np.float32)
    logits[[65, 66]] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chosen = {sample(logits, t, u) for t in (1, 50, 100) for u in np.linspace(0, 0.999, 9)}
    assert chosen == {65, 66}
    runtime = LLMRuntime([WindowModel(logits_file(logits, "infinite"))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        texts = {runtime.complete("infinite", "x", 6, temperature=80, seed=seed).text for seed in range(4)}
    assert all(set(text) <= {"A", "B"} and len(text) == 6 for text in texts) and len(texts) > 1


def test_a_stop_sequence_inside_the_forced_start_ends_the_reply_as_text():
    runtime = default_runtime()
    for stop in ('"name"', "<tool_call>", "{"):
        reply = runtime.chat("tiny_chat", (ChatMessage("user", "Weather in Rome?"),), 80, (WEATHER,), "required",
                             (stop,))
        assert (reply.finish_reason, reply.message.tool_calls) == ("stop", ())
        assert stop not in reply.message.content
        assert ('<tool_call>{"name": "get_weather"'.startswith(reply.message.content))


class _WideVocabulary(LanguageModel):
    """A vocabulary shaped like a BPE one (the bytes, then words, half of them after a space),
    whose logits are all 0; it counts the calls of ``token_bytes``. No onnxruntime-genai model
    with a large vocabulary is available here, and the cost under test is the runtime's."""

    name, cid, context_length, max_output_tokens, cost_per_token = "wide", "wide", 4096, 512, 2_000
    end_tokens = frozenset({tokenizer.END_OF_TEXT})

    def __init__(self, words: int) -> None:
        stems = ["".join(letters) for letters in itertools.islice(itertools.product(string.ascii_lowercase, repeat=4),
                                                                  words // 2)]
        self.pieces = [bytes([b]) for b in range(256)] + [b""] * 4 + [
            f"{space}{stem}".encode() for space in ("", " ") for stem in stems]
        self.lookups = 0

    def encode(self, text: str) -> list[int]:
        return list(text.encode())

    def token_bytes(self, token: int) -> bytes:
        self.lookups += 1
        return self.pieces[token]

    def special_token(self, marker: Special) -> int:
        return tokenizer.SPECIAL_IDS[marker.value]

    def start(self, prompt) -> Generation:
        size = len(self.pieces)

        class _Zeros(Generation):
            def logits(self) -> np.ndarray:
                return np.zeros(size, np.float32)

            def append(self, token: int) -> None:
                pass

        return _Zeros()


def test_a_forced_step_does_not_walk_the_vocabulary():
    """A forced step read the bytes of every token that starts with the next forced byte, for
    every allowed tool: with a BPE vocabulary (half its tokens start with a space) that was
    70,000 Python calls for 50 tokens here, 9 ms per step at 50,000 tokens and 16 tools."""
    model = _WideVocabulary(20_000)
    runtime = LLMRuntime([model])
    request = runtime.prepare_chat("wide", (ChatMessage("user", "hi"),), 50, (F,), "required")
    runtime.run_chat(request)  # builds the per-model index
    model.lookups = 0
    reply = runtime.run_chat(request)
    assert reply.message.content.startswith(forced_reply("").decode())
    assert model.lookups < 50 * reply.tokens_out


@fuzz_settings(200)
@given(rest=st.one_of(st.binary(min_size=1, max_size=8),
                      st.sampled_from([b" ", b"a", b" a", b" aab", b"aaab", b"aaabz", b" aaac ", b'{"x": '])))
def test_the_tokens_a_forced_step_allows_are_those_of_the_spec(rest):
    """SPEC §11.4: the tokens whose bytes lead towards the forced start, or run past its end."""
    model = _WideVocabulary(600)
    expected = {token for token, piece in enumerate(model.pieces)
                if piece and (rest.startswith(piece) or piece.startswith(rest))}
    assert set(_vocabulary(model, len(model.pieces)).continuing(rest).tolist()) == expected


# --- language model files a node may be sent ----------------------------------------------------
def test_a_model_cannot_take_the_name_of_a_cid():
    """A file whose metadata name is another model's CID took the calls that name that CID (SPEC
    §13.2: only a CID pins the same model on every node), and blocked that model from being added."""
    honest = WindowModel(renamed_llm("honest"))
    store_chain = DevChain()
    with pytest.raises(ModelStoreError, match="has the form of a CID"):
        store_chain.models.add_llm(renamed_llm(honest.cid))
    store_chain.models.add_llm(renamed_llm("honest"))
    assert store_chain.models.llms.model(honest.cid).name == "honest"


@pytest.mark.parametrize("changes", [{"window": "six"}, {"window": "6_0"}, {"window": "\u0666"}, {"window": " 6"},
                                     {"context_length": "9" * 40}, {"max_output_tokens": ""}])
def test_metadata_numbers_are_ascii_digits_and_refusals_quote_no_python_message(changes):
    """``int`` took ``6_0`` (60) and other scripts' digits, and a refusal quoted its message
    (``invalid literal for int() with base 10``) into the JSON-RPC error."""
    (key,) = changes
    with pytest.raises(InvalidModel, match=f"metadata ogevm.llm.{key} is not a number") as refused:
        WindowModel(with_metadata(fixture_file(), **changes))
    assert "int()" not in str(refused.value)


def test_a_window_beyond_the_limit_is_refused():
    """The static gas of a graph does not count the window it is fed: a cheap graph on a window of
    a million tokens cost 30,000 ns per gas (a Python loop over the window at every step)."""
    wide = MAX_WINDOW_TOKENS + 1
    with pytest.raises(InvalidModel, match=f"window must be 1..{MAX_WINDOW_TOKENS} tokens, not {wide}"):
        WindowModel(column_file(0, wide, "wide"))


@pytest.fixture(scope="module")
def column_models() -> dict[int, WindowModel]:
    return {window: WindowModel(column_file(0, window, f"first{window}")) for window in (1, 3, 7)}


@fuzz_settings(40)
@given(window=st.sampled_from([1, 3, 7]), prompt=st.text(st.sampled_from("ab"), max_size=9),
       steps=st.integers(1, 12))
def test_the_window_slides_over_pads_prompt_and_reply(column_models, window, prompt, steps):
    """A model that repeats the first token of its window shows the window at every step."""
    context = [tokenizer.PAD] * window + list(prompt.encode())
    for _ in range(steps):
        context.append(context[-window])
    expected = bytes(t for t in context[window + len(prompt):] if t < 256).decode()
    reply = LLMRuntime([column_models[window]]).complete(f"first{window}", prompt, steps)
    assert (reply.text, reply.finish_reason) == (expected, "length")


def test_an_onnxruntime_failure_is_named_without_its_message():
    """A Gather whose table is shorter than the vocabulary fails at run time; the committed reason
    quoted onnxruntime's message (node names, library wording that differs between builds)."""
    chain = DevChain()
    chain.models.add_llm(window_file(
        [helper.make_node("Gather", ["table", "context"], ["rows"], axis=0),
         helper.make_node("ReduceSum", ["rows", "axis"], ["logits"], keepdims=0)],
        {"table": np.zeros((100, tokenizer.VOCAB_SIZE), np.float32), "axis": np.array([1], np.int64)}, 1, "short"))
    data = encode_llm_completion(LLMCompletionRequest(VANILLA, "short", "x", 4, (), 0))
    reason = decode_revert_reason(call(chain, data).output)
    assert reason == "language model 'short' failed: onnxruntime could not run it"


def test_a_model_with_random_operators_is_refused():
    """Every run of such a model gives another reply: eth_call and the transaction disagree."""
    data = window_file([helper.make_node("RandomUniform", [], ["logits"], shape=[1, tokenizer.VOCAB_SIZE],
                                         dtype=TensorProto.FLOAT)], {}, 1, "dice")
    with pytest.raises(ModelStoreError):
        DevChain().models.add_llm(data)


def test_a_mocked_reply_without_a_utf8_form_is_refused():
    with pytest.raises(InvalidMock):
        parse_output({"strings": [{"name": "answer", "values": ["\ud800"]}]})


# --- calldata of adversarial shapes ---------------------------------------------------------------
NESTED = {depth: "{" + '"a":[' * (depth - 1) + "1" + "]" * (depth - 1) + "}" for depth in (MAX_JSON_DEPTH,
                                                                                         MAX_JSON_DEPTH + 1)}


@st.composite
def adversarial_chats(draw) -> LLMChatRequest:
    """Chats at and just past every limit of SPEC §11.8, with many tool calls and big texts."""
    tool_count = draw(st.sampled_from([0, 1, 16, 17]))
    parameters = draw(st.sampled_from(["", NESTED[MAX_JSON_DEPTH], NESTED[MAX_JSON_DEPTH + 1],
                                       '{"properties": {"' + "p" * 300 + '": {}}}', "[]", '{"x": 1e400}']))
    tools = tuple(ToolDefinition("d" * draw(st.integers(0, 50)), f"t{i}", parameters) for i in range(tool_count))
    arguments = draw(st.sampled_from(["{}", NESTED[MAX_JSON_DEPTH], "{" + " " * 2_000 + "}", '{"a": "\\ud800"}']))
    calls = tuple(ToolCall(f"c{i}", "t0", arguments) for i in range(draw(st.integers(0, 40))))
    messages = (ChatMessage("assistant", "x" * draw(st.integers(0, 3_000)), tool_calls=calls),
                *[ChatMessage("user", "hi")] * draw(st.sampled_from([0, 1, 63, 64])))
    choices = ["", "none", "required", "t0", "t15", "nobody"]
    stops = tuple(draw(st.lists(st.sampled_from(["<tool_call>", '"', "x" * 64, "y" * 65, "\n"]), max_size=5)))
    return LLMChatRequest(draw(st.sampled_from(LLMInferenceMode)), "tiny_chat", messages, tools,
                          draw(st.sampled_from(choices)), draw(st.sampled_from([1, 8, 512, 513])), stops,
                          draw(st.sampled_from([0, 100, 101])))


@pytest.fixture(scope="module")
def fuzz_chain() -> DevChain:
    return DevChain()


@fuzz_settings(60)
@given(request=adversarial_chats(), gas=st.sampled_from([60_000, 3_000_000]))
def test_adversarial_chats_end_cleanly_within_their_gas(fuzz_chain, request, gas):
    computation = fuzz_chain.execute_call(A, encode_llm_chat(request), gas=gas)
    precompile_outcome(computation, gas, logs=0)


def test_onnx_helpers_write_files_the_checker_accepts():
    """The attack files above are real models, not rejected for a reason of their own."""
    for data in (column_file(0, 3, "c"), logits_file(np.zeros(tokenizer.VOCAB_SIZE), "l"),
                 scripted_file(b"hello", "s")):
        onnx.checker.check_model(onnx.load_from_string(data))
        assert WindowModel(data).cost_per_token > 0
