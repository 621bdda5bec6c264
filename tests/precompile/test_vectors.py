"""Replay the conformance vectors of ``fixtures/vectors/vectors.json`` on a fresh chain.

Each vector is a bare message call of the precompile; its success, output bytes, revert
reason, gas used and logs must match exactly. The generator must also reproduce the
committed files (``make_vectors.py --check``).
"""

from __future__ import annotations

import json

import pytest

from ogevm.abi.codec import (
    MODEL_INFERENCE_EVENT_TOPIC,
    decode_event_data,
    decode_revert_reason,
    encode_revert_reason,
)
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.fixtures import FIXTURES
from ogevm.models.cid import compute_cid
from ogevm.vm.calls import execute_call
from ogevm.vm.chain import DevChain

from fixture_scripts import fixture_script

VECTORS_PATH = FIXTURES / "vectors" / "vectors.json"
DOCUMENT = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
VECTORS = DOCUMENT["vectors"]
MODELS_DIR = FIXTURES / "models"
MODEL_FILES = sorted(MODELS_DIR.glob("*.onnx")) + sorted(MODELS_DIR.glob("conformance/*.onnx"))
#: Conformance models no call can bind: a bfloat16 input, and string inputs of a fixed shape
#: and of two free dimensions. Their vectors are reverts.
UNBINDABLE = {"conformance/bfloat16_input.onnx", "conformance/string_shapes.onnx"}


@pytest.fixture(scope="module")
def vector_chain() -> DevChain:
    """A fresh development chain whose store holds every fixture model."""
    chain = DevChain()
    for path in MODEL_FILES:
        chain.add_model(path)
    return chain


def unhex(text: str) -> bytes:
    assert text.startswith("0x")
    return bytes.fromhex(text[2:])


def test_the_file_header():
    assert DOCUMENT["format"] == 1
    assert unhex(DOCUMENT["precompile"]) == INFERENCE_PRECOMPILE_ADDRESS
    names = [vector["name"] for vector in VECTORS]
    assert len(names) == len(set(names))


def model_name(path) -> str:
    return path.relative_to(MODELS_DIR).as_posix()


def test_every_bindable_fixture_model_has_a_success_vector():
    succeeding = {v["model"] for v in VECTORS if v["expected"]["success"]}
    named = {v["model"] for v in VECTORS}
    assert succeeding == {model_name(path) for path in MODEL_FILES} - UNBINDABLE
    assert UNBINDABLE <= named


def test_the_models_table_names_each_fixture_by_its_cid(vector_chain):
    assert DOCUMENT["models"] == {model_name(path): compute_cid(path.read_bytes()) for path in MODEL_FILES}
    assert set(DOCUMENT["models"].values()) <= set(vector_chain.models)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vector_chain, vector):
    expected = vector["expected"]
    state = vector_chain.chain.get_vm(vector_chain.chain.create_header_from_parent(vector_chain.head)).state
    for address, words in vector["storage"].items():
        for slot, value in words.items():
            state.set_storage(unhex(address), int(slot, 16), int(value, 16))
    computation = execute_call(state, INFERENCE_PRECOMPILE_ADDRESS, unhex(vector["calldata"]),
                               vector_chain.accounts[0].address, 0, vector["gas_limit"])
    output = bytes(computation.output)

    assert (not computation.is_error) == expected["success"]
    assert computation.get_gas_used() == expected["gas_used"]
    assert output == unhex(expected["output"])
    reason = None if expected["success"] else decode_revert_reason(output)
    assert reason == expected["revert_reason"]
    logs = [
        {"address": "0x" + address.hex(), "topics": [f"0x{topic:064x}" for topic in topics],
         "data": "0x" + data.hex()}
        for address, topics, data in computation.get_log_entries()
    ]
    assert logs == expected["logs"]

    # The shape of each kind of result, independently of the recorded bytes.
    if expected["success"]:
        (log,) = logs
        assert unhex(log["address"]) == INFERENCE_PRECOMPILE_ADDRESS
        assert log["topics"] == ["0x" + MODEL_INFERENCE_EVENT_TOPIC.hex()]
        inference_id, _, _ = decode_event_data(unhex(log["data"]))
        assert inference_id == "0x" + "00" * 32 + ":0"
    elif expected["revert_reason"] is None:  # out of gas: no data, all gas used
        assert output == b""
        assert expected["gas_used"] == vector["gas_limit"]
        assert logs == []
    else:
        assert output == encode_revert_reason(expected["revert_reason"])
        assert logs == []


def test_the_generator_reproduces_the_committed_files():
    generator = fixture_script("make_vectors.py")
    assert generator.check(FIXTURES / "vectors", FIXTURES / "models") == []
    assert generator.main(["--check"], write=lambda _: None) == 0
