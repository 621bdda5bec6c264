"""The LLM runtime on the fixture model: decoding, stops, tool calls, errors, gas."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ogevm.errors import InvalidInput, InvalidModel, ModelExecutionError, UnknownModel
from ogevm.fixtures import FIXTURES
from ogevm.llm import ChatMessage, LLMRuntime, ToolCall, ToolDefinition, default_runtime, fixture_llm, llm_gas
from ogevm.llm import tokenizer
from ogevm.llm.constants import GAS_LLM_BASE, GAS_LLM_PER_PROMPT_TOKEN, MAX_JSON_DEPTH
from ogevm.llm.model import Generation, LanguageModel, WindowModel
from ogevm.llm.sampling import greedy, sample, seed_bytes, uniform
from ogevm.llm.template import Special, render_chat
from ogevm.llm.toolcalls import check_tools, parse_calls

MODEL = "tiny_chat"
GENERATOR = FIXTURES / "generate_llm.py"
WEATHER = ToolDefinition("Get the weather of a city", "get_weather",
                         '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}')
LOOKUP = ToolDefinition("Look a word up", "lookup",
                        '{"type": "object", "properties": {"lang": {"type": "string"}, '
                        '"word": {"type": "string"}}, "required": ["word"]}')
CLOCK = ToolDefinition("The time now", "now", "")
ASK = (ChatMessage("user", "What is the weather in Rome?"),)


@pytest.fixture(scope="module")
def runtime() -> LLMRuntime:
    return default_runtime()


@pytest.fixture(scope="module")
def model() -> WindowModel:
    return fixture_llm()


# --- the fixture file ------------------------------------------------------------------------
def test_the_committed_model_matches_a_fresh_generation(tmp_path):
    result = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    changed = tmp_path / "out"
    changed.mkdir()
    (changed / "tiny_chat.onnx").write_bytes((FIXTURES / "models/llm/tiny_chat.onnx").read_bytes() + b"\0")
    result = subprocess.run([sys.executable, str(GENERATOR), "--check", "--out", str(changed)],
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout.strip()) == (1, f"differs: {changed / 'tiny_chat.onnx'}")


def test_an_onnx_model_that_is_no_language_model_is_refused():
    with pytest.raises(InvalidModel, match="ogevm.llm.format"):
        WindowModel.load(FIXTURES / "models/linear_regression.onnx")


def test_the_model_is_known_by_cid_and_name_and_its_cost_is_the_store_gas(runtime, model):
    from ogevm.models.store import inspect_model

    info = inspect_model((FIXTURES / "models/llm/tiny_chat.onnx").read_bytes())
    assert runtime.model(MODEL) is runtime.model(info.cid)
    assert model.cost_per_token == info.gas_per_sample > 0


# --- tokenizer and template --------------------------------------------------------------------
@given(st.text())
def test_text_is_its_utf8_bytes_and_never_a_special_token(text):
    tokens = tokenizer.encode(text)
    assert max(tokens, default=0) < 256
    assert tokenizer.decode(tokens) == text.encode("utf-8")


def test_a_prompt_that_spells_a_marker_gets_no_special_token(model):
    assert model.encode("<|im_end|>") == list(b"<|im_end|>")
    assert tokenizer.decode([tokenizer.MESSAGE_START, 104, 105, tokenizer.END_OF_TEXT]) == b"hi"


def test_the_chat_template_renders_as_specified():
    messages = (ChatMessage("user", "Weather?"),
                ChatMessage("assistant", "Let me see.", tool_calls=(ToolCall("call_0", "now", '{ }'),)),
                ChatMessage("tool", "noon", tool_call_id="call_0"))
    pieces = render_chat(messages, check_tools((CLOCK,)))
    start, end = Special.MESSAGE_START, Special.MESSAGE_END
    assert pieces == [
        start, 'system\n# Tools\nTo call a tool, answer <tool_call>{"name": NAME, "arguments": ARGUMENTS}'
               '</tool_call>.\n{"name": "now", "description": "The time now", "parameters": {}}', end, "\n",
        start, "user\nWeather?", end, "\n",
        start, 'assistant\nLet me see.\n<tool_call>{"name": "now", "arguments": {}}</tool_call>', end, "\n",
        start, "tool\nnoon", end, "\n",
        start, "assistant\n"]


def test_tools_join_an_existing_system_message():
    pieces = render_chat((ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")), check_tools((CLOCK,)))
    assert pieces[1].startswith("system\nBe brief.\n\n# Tools\n")
    assert pieces.count(Special.MESSAGE_START) == 3


# --- decoding ------------------------------------------------------------------------------------
def test_greedy_is_the_argmax_of_every_step(runtime, model):
    prompt = "A smart contract"
    result = runtime.complete(MODEL, prompt, 60)
    context = [tokenizer.PAD] * model.window + model.encode(prompt)
    chosen = []
    for _ in range(result.tokens_out):
        token = int(np.argmax(model.run(context[-model.window:])))
        chosen.append(token)
        context.append(token)
    assert tokenizer.decode(chosen).decode() == result.text
    assert (chosen[-1] in model.end_tokens) == (result.finish_reason == "stop")


def test_greedy_breaks_ties_to_the_lowest_id():
    assert greedy(np.array([1.0, 3.0, 3.0, -np.inf], dtype=np.float32)) == 1


def test_uniform_is_sha256_of_seed_and_step_cut_to_53_bits():
    seed = seed_bytes(2 ** 200 + 7)
    digest = hashlib.sha256(seed + (5).to_bytes(8, "big")).digest()
    assert uniform(seed, 5) == (int.from_bytes(digest[:8], "big") >> 11) * 2.0 ** -53
    assert seed_bytes(1) == bytes(31) + b"\x01"


@given(st.binary(min_size=32, max_size=32), st.integers(0, 2 ** 64 - 1))
def test_uniform_is_in_the_unit_interval(seed, step):
    assert 0.0 <= uniform(seed, step) < 1.0


def test_sampling_follows_the_tempered_softmax():
    logits = np.array([0.0, np.log(3.0), -np.inf, np.log(4.0)], dtype=np.float32)  # p = 1/8, 3/8, 0, 4/8
    assert [sample(logits, 100, u) for u in (0.0, 0.124, 0.126, 0.499, 0.501, 1 - 2 ** -53)] == [0, 0, 1, 1, 3, 3]
    # At temperature 50 the weights are squared: 1, 9, 0, 16 out of 26.
    assert [sample(logits, 50, u) for u in (1 / 26 - 1e-6, 1 / 26 + 1e-6, 10 / 26 + 1e-6)] == [0, 1, 3]
    seed = seed_bytes(9)
    counts = np.bincount([sample(logits, 100, uniform(seed, step)) for step in range(4000)], minlength=4)
    assert counts[2] == 0
    assert np.allclose(counts / 4000, [1 / 8, 3 / 8, 0, 1 / 2], atol=0.03)


def test_the_same_seed_gives_the_same_text_and_seeds_differ(runtime):
    texts = [runtime.complete(MODEL, "The weather", 60, temperature=80, seed=seed).text for seed in range(6)]
    assert texts[0] == runtime.complete(MODEL, "The weather", 60, temperature=80, seed=0).text
    assert len(set(texts)) > 1
    greedy_text = runtime.complete(MODEL, "The weather", 60).text
    assert greedy_text == runtime.complete(MODEL, "The weather", 60, seed=12345).text  # t = 0 ignores the seed


# --- how a reply ends ------------------------------------------------------------------------------
def test_max_tokens_ends_with_length(runtime):
    result = runtime.complete(MODEL, "The weather", 7)
    assert (result.finish_reason, result.tokens_out, len(result.text)) == ("length", 7, 7)
    assert result.tokens_in == len("The weather")


def test_the_end_token_ends_with_stop(runtime):
    long = runtime.complete(MODEL, "A smart contract", 200)
    assert long.finish_reason == "stop" and long.tokens_out < 200
    assert long.tokens_out == len(long.text.encode()) + 1  # the end token counts, has no text


def test_a_stop_sequence_cuts_before_itself(runtime):
    full = runtime.complete(MODEL, "The weather", 120).text
    stop = full[20:24]
    first = full.index(stop)
    result = runtime.complete(MODEL, "The weather", 120, stop_sequences=[stop])
    assert (result.text, result.finish_reason) == (full[:first], "stop")
    assert result.tokens_out == first + len(stop)
    earlier = full[first - 5:first - 2]
    result = runtime.complete(MODEL, "The weather", 120, stop_sequences=[stop, earlier])
    assert result.text == full[:full.index(earlier)]
    assert runtime.complete(MODEL, "The weather", 120, stop_sequences=["\x00zz"]).text == full


# --- chat and tool calls -----------------------------------------------------------------------------
def test_a_chat_without_tools_answers_text(runtime):
    reply = runtime.chat(MODEL, [ChatMessage("user", "Hello!")], 100)
    assert reply.finish_reason == "stop" and reply.message.role == "assistant"
    assert reply.message.content and not reply.message.tool_calls


def test_a_named_tool_choice_gives_a_well_formed_call(runtime):
    reply = runtime.chat(MODEL, ASK, 100, tools=[WEATHER, LOOKUP], tool_choice="lookup")
    assert reply.finish_reason == "tool_calls"
    (call,) = reply.message.tool_calls
    assert (call.id, call.name, reply.message.content) == ("call_0", "lookup", "")
    arguments = json.loads(call.arguments)
    assert next(iter(arguments)) == "word"  # the first required property is forced
    assert call.arguments == json.dumps(arguments, separators=(",", ":"))


@pytest.mark.parametrize("seed", range(4))
def test_required_calls_one_of_the_tools(runtime, seed):
    reply = runtime.chat(MODEL, ASK, 100, tools=[WEATHER, CLOCK], tool_choice="required", temperature=40, seed=seed)
    assert reply.finish_reason == "tool_calls"
    assert reply.message.tool_calls[0].name in {"get_weather", "now"}


def test_a_tool_without_parameters_is_called_with_no_arguments(runtime):
    reply = runtime.chat(MODEL, ASK, 100, tools=[CLOCK], tool_choice="now")
    assert reply.message.tool_calls == (ToolCall("call_0", "now", "{}"),)
    assert reply.tokens_out == len('<tool_call>{"name": "now", "arguments": {}}</tool_call>')


def test_a_forced_argument_name_the_model_never_emits_is_still_written(runtime):
    odd = ToolDefinition("", "f", '{"properties": {"citt\u00e0\\"\\u0001": {}}, "required": [1, "zz"]}')
    reply = runtime.chat(MODEL, ASK, 120, [odd], "f")
    assert reply.finish_reason == "tool_calls"
    assert list(json.loads(reply.message.tool_calls[0].arguments))[0] == 'citt\u00e0"\x01'


def test_call_ids_count_the_calls_already_in_the_chat(runtime):
    history = ASK + (ChatMessage("assistant", tool_calls=(ToolCall("call_0", "get_weather", '{"city": "Rome"}'),)),
                     ChatMessage("tool", "sunny", tool_call_id="call_0"), ChatMessage("user", "And Paris?"))
    reply = runtime.chat(MODEL, history, 100, tools=[WEATHER], tool_choice="get_weather")
    assert reply.message.tool_calls[0].id == "call_1"


def test_tool_choice_none_hides_the_tools(runtime):
    plain = runtime.prepare_chat(MODEL, ASK, 50)
    hidden = runtime.prepare_chat(MODEL, ASK, 50, tools=[WEATHER], tool_choice="none")
    shown = runtime.prepare_chat(MODEL, ASK, 50, tools=[WEATHER])
    assert hidden.prompt == plain.prompt and len(shown.prompt) > len(plain.prompt)
    assert hidden.tool_names is None


def test_a_call_cut_by_max_tokens_is_text(runtime):
    reply = runtime.chat(MODEL, ASK, 30, tools=[WEATHER], tool_choice="get_weather")
    assert reply.finish_reason == "length" and not reply.message.tool_calls
    forced = '<tool_call>{"name": "get_weather", "arguments": {"city": '
    assert reply.message.content == forced[:30]


NAMES = frozenset({"get_weather", "now"})


@pytest.mark.parametrize("text, expected", [
    ('<tool_call>{"name": "now", "arguments": {}}</tool_call>', ("", [("now", "{}")])),
    ('Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Rome", "n": [1, 2]}}</tool_call>\n'
     '<tool_call>{"name": "now", "arguments": {}}</tool_call>',
     ("Sure.", [("get_weather", '{"city":"Rome","n":[1,2]}'), ("now", "{}")])),
    ("no call at all", None),
    ('<tool_call>{"name": "now", "arguments": {}', None),  # not closed
    ('<tool_call>{"name": "now", "arguments": {}}</tool_call><tool_call>', None),  # one left open
    ('<tool_call>{"name": "now", "arguments": {}</tool_call>', None),  # bad JSON
    ('<tool_call>["now", {}]</tool_call>', None),  # not an object
    ('<tool_call>{"name": "later", "arguments": {}}</tool_call>', None),  # no such tool
    ('<tool_call>{"name": ["now"], "arguments": {}}</tool_call>', None),  # a name that is no string
    ('<tool_call>{"name": "now", "arguments": "{}"}</tool_call>', None),  # arguments not an object
    ('<tool_call>{"name": "now", "arguments": {}, "x": 1}</tool_call>', None),  # an extra key
    ('<tool_call>{"name": "now", "arguments": ' + "[" * 5000 + "]" * 5000 + "}</tool_call>", None),
])
def test_tool_calls_are_parsed_or_the_reply_stays_text(text, expected):
    assert parse_calls(text, NAMES) == expected


class _FixedModel(LanguageModel):
    """The byte tokenizer with the same logits at every step: a backend that fails in ways
    the fixture model cannot."""

    name = cid = "fixed"
    context_length, max_output_tokens, cost_per_token = 2048, 512, 1
    end_tokens = frozenset({tokenizer.END_OF_TEXT, tokenizer.MESSAGE_END})

    def __init__(self, logits: np.ndarray) -> None:
        self._logits = logits

    def encode(self, text):
        return tokenizer.encode(text)

    def token_bytes(self, token):
        return tokenizer.decode([token])

    def special_token(self, marker):
        return tokenizer.SPECIAL_IDS[marker.value]

    def start(self, prompt):
        return _FixedGeneration(self._logits)


class _FixedGeneration(Generation):
    def __init__(self, logits: np.ndarray) -> None:
        self._logits = logits

    def logits(self):
        return self._logits

    def append(self, token):
        pass


def test_logits_that_choose_no_token_fail_readably():
    for logits in (np.full(260, np.nan, dtype=np.float32), np.full(260, -np.inf, dtype=np.float32)):
        with pytest.raises(ModelExecutionError, match="language model 'fixed' gave logits that choose no token"):
            LLMRuntime([_FixedModel(logits)]).complete("fixed", "Hi", 3)


def test_a_forced_call_is_written_even_where_the_model_gives_it_no_chance():
    logits = np.full(260, -np.inf, dtype=np.float32)
    logits[ord("x")] = 0.0
    reply = LLMRuntime([_FixedModel(logits)]).chat("fixed", ASK, 80, [CLOCK, WEATHER], "required")
    forced = '<tool_call>{"name": "get_weather", "arguments": {"city": '  # "g" < "n": the lowest id wins
    assert (reply.finish_reason, reply.message.content) == ("length", forced + "x" * (80 - len(forced)))


class _NoAngleBrackets(_FixedModel):
    def token_bytes(self, token):
        return b"" if token == ord("<") else super().token_bytes(token)


def test_a_forced_call_the_vocabulary_cannot_write_fails_readably():
    model = _NoAngleBrackets(np.zeros(260, dtype=np.float32))
    with pytest.raises(ModelExecutionError, match="has no token that continues the forced tool call"):
        LLMRuntime([model]).chat("fixed", ASK, 80, [CLOCK], "now")


# --- errors --------------------------------------------------------------------------------------
def _prompt_error(runtime, **changes):
    request = dict(model=MODEL, prompt="Hi", max_tokens=10, stop_sequences=(), temperature=0, seed=0) | changes
    with pytest.raises(InvalidInput) as info:
        runtime.prepare_completion(**request)
    return info.value.reason


def _chat_error(runtime, **changes):
    request = dict(model=MODEL, messages=ASK, max_tokens=10, tools=(WEATHER,), tool_choice="") | changes
    with pytest.raises(InvalidInput) as info:
        runtime.prepare_chat(**request)
    return info.value.reason


def test_an_unknown_model_is_named(runtime):
    with pytest.raises(UnknownModel, match="unknown model 'bafkreinothere'"):
        runtime.complete("bafkreinothere", "Hi", 5)


@pytest.mark.parametrize("changes, reason", [
    (dict(max_tokens=0), "max_tokens must be at least 1"),
    (dict(max_tokens=513), "max_tokens 513 is above the limit 512 of model 'tiny_chat'"),
    (dict(prompt="x" * 2000, max_tokens=100),
     "prompt of 2000 tokens plus max_tokens 100 exceeds the context of 2048 tokens of model 'tiny_chat'"),
    (dict(prompt="x" * 5000), "prompt of 5000 tokens plus max_tokens 10 exceeds the context"),
    (dict(temperature=101), "temperature 101 is outside 0..100"),
    (dict(temperature=-1), "temperature -1 is outside 0..100"),
    (dict(stop_sequences=["a", "b", "c", "d", "e"]), "5 stop sequences; at most 4 are allowed"),
    (dict(stop_sequences=["ok", ""]), "stop sequence 1 must be 1..64 bytes, not 0"),
    (dict(stop_sequences=["é" * 33]), "stop sequence 0 must be 1..64 bytes, not 66"),
    (dict(seed=2 ** 256), "the seed must be in 0 .. 2**256 - 1"),
    (dict(prompt="a\ud800b"), "text is not valid Unicode: surrogates not allowed at index 1"),
])
def test_bad_completion_requests_are_refused_readably(runtime, changes, reason):
    assert _prompt_error(runtime, **changes).startswith(reason)


@pytest.mark.parametrize("changes, reason", [
    (dict(tools=(ToolDefinition("", "get_weather", "{"),)), "tool 'get_weather': parameters is not valid JSON"),
    (dict(tools=(ToolDefinition("", "f", "[1]"),)), "tool 'f': parameters must be a JSON object, not array"),
    (dict(tools=(ToolDefinition("", "f", '{"a": NaN}'),)), "tool 'f': parameters is not valid JSON"),
    (dict(tools=(ToolDefinition("", "f", "[" * (MAX_JSON_DEPTH + 1)),)),
     f"tool 'f': parameters is nested deeper than {MAX_JSON_DEPTH} levels"),
    (dict(tools=(ToolDefinition("", "f", '{"a": "' + "x" * 20000 + '"}'),)),
     "tool 'f': parameters is longer than 16384 bytes"),
    (dict(tools=(ToolDefinition("", "bad name", "{}"),)), "tool 0: name 'bad name' is not 1-64 letters"),
    (dict(tools=(WEATHER, WEATHER)), "tool 1: name 'get_weather' is used twice"),
    (dict(tools=(CLOCK,) * 17), "17 tools; at most 16 are allowed"),
    (dict(tool_choice="lookup"), "tool_choice 'lookup' names no tool"),
    (dict(tools=(), tool_choice="required"), "tool_choice 'required' but no tools are given"),
    (dict(messages=()), "a chat needs at least one message"),
    (dict(messages=ASK * 65), "65 messages; at most 64 are allowed"),
    (dict(messages=(ChatMessage("robot", "hi"),)), "message 0: role 'robot' is not one of system, user"),
    (dict(messages=(ChatMessage("user", "hi", tool_calls=(ToolCall("c", "now", "{}"),)),)),
     "message 0: only assistant messages carry tool calls"),
    (dict(messages=(ChatMessage("assistant", tool_calls=(ToolCall("c", "now", "{nope"),)),)),
     "message 0: arguments of tool call 'c' is not valid JSON"),
    (dict(max_tokens=600), "max_tokens 600 is above the limit 512"),
    (dict(messages=(ChatMessage("user", "x" * 2100),)), "prompt of 2"),
])
def test_bad_chat_requests_are_refused_readably(runtime, changes, reason):
    assert _chat_error(runtime, **changes).startswith(reason)


# --- gas -------------------------------------------------------------------------------------------
def test_the_gas_formula():
    assert llm_gas(0, 0, 0) == GAS_LLM_BASE
    # 10 prompt tokens at 8 + ceil(2018 / 8) = 261 each, 20 output tokens at 2018 each.
    assert llm_gas(10, 20, 2018) == 20_000 + 10 * 261 + 20 * 2018
    assert llm_gas(3, 1, 8) == 20_000 + 3 * (GAS_LLM_PER_PROMPT_TOKEN + 1) + 8
    with pytest.raises(ValueError):
        llm_gas(-1, 1, 1)


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10 ** 7), st.integers(1, 100))
def test_gas_grows_with_every_size(prompt, output, cost, more):
    gas = llm_gas(prompt, output, cost)
    assert llm_gas(prompt + more, output, cost) > gas
    assert llm_gas(prompt, output + more, cost) >= gas + more * cost
    assert llm_gas(prompt, output, cost + more) >= gas


def test_a_request_is_priced_before_it_runs(runtime, model):
    request = runtime.prepare_chat(MODEL, ASK, 40, tools=[WEATHER])
    assert request.gas == llm_gas(len(request.prompt), 40, model.cost_per_token)
    assert math.ceil(request.gas) == request.gas > 40 * model.cost_per_token


# --- any input: a reply within max_tokens, or a readable error ----------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=st.text(max_size=300), max_tokens=st.integers(-2, 600), temperature=st.integers(-5, 130),
       stops=st.lists(st.text(max_size=6), max_size=5), seed=st.integers(-1, 2 ** 257))
def test_any_completion_returns_within_max_tokens_or_a_readable_error(runtime, prompt, max_tokens,
                                                                     temperature, stops, seed):
    try:
        result = runtime.complete(MODEL, prompt, max_tokens, stops, temperature, seed)
    except InvalidInput as exc:
        assert exc.reason
        return
    assert 1 <= result.tokens_out <= max_tokens
    assert result.finish_reason in {"stop", "length"}
    assert not any(stop and stop in result.text for stop in stops)


JSON_TEXT = st.one_of(st.text(max_size=40), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8).map(json.dumps))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.text(max_size=80), role=st.sampled_from(["user", "system", "assistant", "tool", "admin"]),
       names=st.lists(st.sampled_from(["get_weather", "now", "a b", ""]), max_size=3),
       parameters=st.lists(JSON_TEXT, min_size=3, max_size=3),
       tool_choice=st.sampled_from(["", "auto", "none", "required", "now", "other"]),
       max_tokens=st.integers(0, 120), temperature=st.integers(0, 101), seed=st.integers(0, 2 ** 32))
def test_any_chat_returns_within_max_tokens_or_a_readable_error(runtime, content, role, names, parameters,
                                                               tool_choice, max_tokens, temperature, seed):
    tools = [ToolDefinition("", name, parameters[i]) for i, name in enumerate(names)]
    try:
        reply = runtime.chat(MODEL, [ChatMessage(role, content)], max_tokens, tools, tool_choice,
                             temperature=temperature, seed=seed)
    except InvalidInput as exc:
        assert exc.reason
        return
    assert 1 <= reply.tokens_out <= max_tokens
    assert reply.finish_reason in {"stop", "length", "tool_calls"}
    assert (reply.finish_reason == "tool_calls") == bool(reply.message.tool_calls)
    for call in reply.message.tool_calls:
        assert call.name in names and isinstance(json.loads(call.arguments), dict)
