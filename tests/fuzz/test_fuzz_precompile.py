"""Fuzzing the precompile's calldata: every call ends cleanly, within its gas limit.

Calls go to ``0x…F4`` on a chain whose store holds every fixture model and the
adversarial models that are admitted (``tests/precompile/adversarial_models.py``), as
random bytes, random requests, and valid requests with bytes flipped, cut, inserted or a
word overwritten; and the same for the LLM functions ``runLLMCompletion`` and ``runLLMChat``
(the fixture language model), plus offsets aliased onto other members. Whatever the calldata,
a call succeeds, reverts with a readable ``Error(string)`` reason that is not an internal
error, or runs out of gas (no data, all its gas); it never uses more gas than its limit, a
success of ``runModelInference`` emits its one event and an LLM call none, and nothing but
py-evm's result leaves it.
"""

from __future__ import annotations

import collections

import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_budget import examples, fuzz_settings, precompile_outcome, report
from ogevm.abi import InferenceMode, ModelInferenceRequest, encode_run_model_inference
from ogevm.abi.codec import RUN_MODEL_INFERENCE_SELECTOR
from ogevm.abi.llm import LLMCompletionRequest, encode_llm_chat, encode_llm_completion
from ogevm.constants import GAS_MODEL_BASE, INFERENCE_PRECOMPILE_ADDRESS
from ogevm.errors import ModelStoreError
from ogevm.fixtures import FIXTURES
from ogevm.llm import fixture_llm
from ogevm.models import inspect_model
from ogevm.precompile.llm import LLM_DECODERS
from ogevm.testing.strategies import inference_requests, valid_input_for
from ogevm.vm.chain import DevChain
from precompile.adversarial_models import ADMITTED
from precompile.llm_requests import abi_chats, abi_completions, runnable_chats, runnable_completions

CASES: collections.Counter[str] = collections.Counter()
GAS_LIMITS = st.one_of(st.integers(0, 60_000), st.integers(60_000, 3_000_000), st.just(30_000_000))


@pytest.fixture(scope="module")
def fuzz_chain(fixture_store):
    chain = DevChain(fixture_store)
    for build in ADMITTED.values():
        chain.add_model(build())
    yield chain
    report("precompile", sum(CASES.values()))
    for kind, count in sorted(CASES.items()):
        print(f"  {kind}: {count} calls")


def check_call(chain: DevChain, data: bytes, gas: int, kind: str) -> None:
    """The call ends in success, a readable revert or out of gas, within ``gas``; a success
    emits one event, or none for an LLM call."""
    computation = chain.execute_call(INFERENCE_PRECOMPILE_ADDRESS, data, gas=gas)
    logs = 0 if bytes(data[:4]) in LLM_DECODERS else 1
    CASES[f"{kind}: {precompile_outcome(computation, gas, logs)}"] += 1


@st.composite
def valid_calldata(draw, chain: DevChain) -> bytes:
    info = chain.models[draw(st.sampled_from(sorted(chain.models)))]
    model_input = draw(valid_input_for(info, batch=st.integers(0, 4)))
    mode = draw(st.sampled_from([InferenceMode.VANILLA, InferenceMode.TEE, InferenceMode.ZKML]))
    return encode_run_model_inference(ModelInferenceRequest(mode, info.cid, model_input))


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with one change: a byte flipped, a cut, inserted bytes or a word overwritten."""
    position = draw(st.integers(0, len(data)))
    change = draw(st.sampled_from(["flip", "cut", "insert", "word"]))
    if change == "flip" and position < len(data):
        return data[:position] + bytes([data[position] ^ draw(st.integers(1, 255))]) + data[position + 1:]
    if change == "cut":
        return data[:position]
    if change == "insert":
        return data[:position] + draw(st.binary(min_size=1, max_size=64)) + data[position:]
    word = draw(st.sampled_from([b"\xff" * 32, (2**32 - 1).to_bytes(32, "big"), (1 << 255).to_bytes(32, "big"),
                                 bytes(32), (65_536).to_bytes(32, "big")]))
    return data[:position] + word + data[position + 32:]


@fuzz_settings(300)
@given(data=st.data())
def test_mutated_valid_requests(fuzz_chain, data):
    original = data.draw(valid_calldata(fuzz_chain))
    check_call(fuzz_chain, original, data.draw(GAS_LIMITS), "valid")
    check_call(fuzz_chain, data.draw(mutated(original)), data.draw(GAS_LIMITS), "mutated")


@fuzz_settings(200)
@given(data=st.data())
def test_random_requests_and_bytes(fuzz_chain, data):
    cids = st.sampled_from(sorted(fuzz_chain.models))
    request = data.draw(inference_requests(model_cid=cids))
    check_call(fuzz_chain, encode_run_model_inference(request), data.draw(GAS_LIMITS), "random request")
    noise = data.draw(st.binary(max_size=512))
    prefix = data.draw(st.sampled_from([b"", RUN_MODEL_INFERENCE_SELECTOR]))
    check_call(fuzz_chain, prefix + noise, data.draw(GAS_LIMITS), "random bytes")


# --- LLM calls ---------------------------------------------------------------------------
LLM_SELECTORS = sorted(LLM_DECODERS)


@st.composite
def llm_calldata(draw) -> bytes:
    """Calldata of ``runLLMCompletion`` or ``runLLMChat``: a request the fixture model runs (up
    to 40 tokens, ``max_tokens`` 0 included), or any request the ABI carries, naming the fixture
    model by name or CID, or another model."""
    model = draw(st.sampled_from(["tiny_chat", fixture_llm().cid]))
    tokens = st.integers(0, 40)
    request = draw(st.one_of(runnable_completions(model, tokens), runnable_chats(model, tokens),
                             abi_completions, abi_chats))
    if draw(st.booleans()):
        request = request._replace(model_cid=model)
    if isinstance(request, LLMCompletionRequest):
        return encode_llm_completion(request)
    return encode_llm_chat(request)


@st.composite
def aliased(draw, data: bytes) -> bytes:
    """``data`` with one head word of the request tuple set to another head's word (an offset
    aliased onto another member's data), or to an offset into the heads themselves."""
    heads = (len(data) - 36) // 32
    count = min(heads, 8)  # the request tuple has 6 (completion) or 8 (chat) heads
    if count < 2:
        return data
    target, source = draw(st.lists(st.integers(0, count - 1), min_size=2, max_size=2, unique=True))
    value = (data[36 + 32 * source:68 + 32 * source] if draw(st.booleans())
             else (32 * draw(st.integers(0, count))).to_bytes(32, "big"))
    return data[:36 + 32 * target] + value + data[68 + 32 * target:]


@fuzz_settings(200)
@given(data=st.data())
def test_mutated_and_aliased_llm_calls(fuzz_chain, data):
    original = data.draw(llm_calldata())
    check_call(fuzz_chain, original, data.draw(GAS_LIMITS), "llm request")
    check_call(fuzz_chain, data.draw(mutated(original)), data.draw(GAS_LIMITS), "llm mutated")
    check_call(fuzz_chain, data.draw(aliased(original)), data.draw(GAS_LIMITS), "llm aliased")


@fuzz_settings(100)
@given(data=st.data())
def test_llm_selectors_with_garbled_or_truncated_bodies(fuzz_chain, data):
    selector = data.draw(st.sampled_from(LLM_SELECTORS))
    check_call(fuzz_chain, selector + data.draw(st.binary(max_size=512)), data.draw(GAS_LIMITS), "llm garbled")
    original = data.draw(llm_calldata())
    cut = original[:data.draw(st.integers(0, len(original) - 1))]
    check_call(fuzz_chain, cut, data.draw(GAS_LIMITS), "llm truncated")


# --- admission: a mutated model is admitted or refused with a reason, never a crash ---------
OPS = ["MatMul", "Gemm", "Conv", "Add", "ReduceSum", "Reshape", "Expand", "ConstantOfShape", "Loop",
       "Einsum", "LSTM", "MaxPool", "Det", "ZipMap", "LabelEncoder", "TreeEnsembleClassifier", "Identity"]


@st.composite
def mutated_models(draw) -> bytes:
    """A fixture or adversarial model with one field of its graph changed."""
    sources = [*(build() for build in ADMITTED.values()),
               *(p.read_bytes() for p in sorted((FIXTURES / "models").glob("*.onnx")) if p.stem != "heavy")]
    model = onnx.load_model_from_string(draw(st.sampled_from(sources)))
    graph = model.graph
    change = draw(st.sampled_from(["op", "dim", "attribute", "input", "drop"]))
    node = graph.node[draw(st.integers(0, len(graph.node) - 1))]
    if change == "op":
        node.op_type = draw(st.sampled_from(OPS))
    elif change == "dim":
        values = [v for v in (*graph.input, *graph.output) if v.type.tensor_type.shape.dim]
        if values:
            dims = draw(st.sampled_from(values)).type.tensor_type.shape.dim
            dim = dims[draw(st.integers(0, len(dims) - 1))]
            if draw(st.booleans()):
                dim.dim_value = draw(st.integers(0, 1 << 20))
            else:
                dim.dim_param = draw(st.sampled_from(["batch", "n", "d", "other"]))
    elif change == "attribute" and node.attribute:
        attribute = node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
        attribute.i = draw(st.integers(-(1 << 62), 1 << 62))
        attribute.ints[:] = draw(st.lists(st.integers(-4, 1 << 16), max_size=4))
    elif change == "input" and node.input:
        names = [*(v.name for v in graph.input), *(i.name for i in graph.initializer), ""]
        node.input[draw(st.integers(0, len(node.input) - 1))] = draw(st.sampled_from(names))
    elif change == "drop" and len(graph.node) > 1:
        graph.node.remove(node)
    return model.SerializeToString()


@fuzz_settings(150)
@given(mutated_models())
def test_mutated_models_are_admitted_or_refused_cleanly(data):
    try:
        info = inspect_model(data)
    except ModelStoreError as exc:
        assert exc.reason
        CASES["model: refused"] += 1
    else:
        assert info.gas_per_sample >= GAS_MODEL_BASE
        CASES["model: admitted"] += 1


def test_the_fuzzers_ran_their_cases(fuzz_chain):
    """Runs after the fuzzers in this module: they did run, at least their budget."""
    assert sum(CASES.values()) >= (2 * examples(300) + 2 * examples(200) + examples(150) + 3 * examples(200)
                                   + 2 * examples(100)) * 0.9
