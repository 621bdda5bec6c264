"""ABI codecs of runModelInference, ModelOutput, ModelInferenceEvent and revert data."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ogevm.abi import (
    MODEL_INFERENCE_EVENT_TOPIC,
    RUN_MODEL_INFERENCE_SELECTOR,
    InferenceMode,
    ModelInferenceRequest,
    ModelInput,
    Number,
    NumberTensor,
    StringTensor,
    decode_event_data,
    decode_output,
    decode_revert_reason,
    decode_run_model_inference,
    encode_event_data,
    encode_output,
    encode_revert_reason,
    encode_run_model_inference,
)
from ogevm.errors import MalformedRequest
from ogevm.testing import inference_requests, model_outputs

FAST = settings(max_examples=60, deadline=None)

# Written out by hand from the Solidity structs, not taken from the codec module.
CANONICAL_SIGNATURE = (
    "runModelInference((uint8,string,"
    "((string,(int128,int128)[],uint32[])[],(string,string[])[])))"
)
CANONICAL_EVENT = (
    "ModelInferenceEvent(string,"
    "(uint8,string,((string,(int128,int128)[],uint32[])[],(string,string[])[])),"
    "((string,(int128,int128)[],uint32[])[],(string,string[])[],(string,string)[],bool))"
)
REQUEST_TYPE = "(uint8,string,((string,(int128,int128)[],uint32[])[],(string,string[])[]))"

SAMPLE = ModelInferenceRequest(
    InferenceMode.VANILLA,
    "bafkreidezz7zhjzho725azqtprk2j2tzend5ekgqw5btxh3ltt5ulear5m",
    ModelInput(
        (NumberTensor("x", (Number(1, 0), Number(25, 1), Number(-3, 2), Number(4, 0)), (1, 4)),),
        (StringTensor("text", ("buy", "sell")),),
    ),
)


def test_selector_is_keccak_of_canonical_signature():
    assert RUN_MODEL_INFERENCE_SELECTOR == keccak(text=CANONICAL_SIGNATURE)[:4]
    assert len(RUN_MODEL_INFERENCE_SELECTOR) == 4


def test_event_topic_is_keccak_of_canonical_signature():
    assert MODEL_INFERENCE_EVENT_TOPIC == keccak(text=CANONICAL_EVENT)


def test_calldata_layout():
    calldata = encode_run_model_inference(SAMPLE)
    assert calldata[:4] == RUN_MODEL_INFERENCE_SELECTOR
    assert calldata[4:] == encode([REQUEST_TYPE], [SAMPLE])
    assert (len(calldata) - 4) % 32 == 0


def test_sample_round_trip_keeps_types():
    decoded = decode_run_model_inference(encode_run_model_inference(SAMPLE))
    assert decoded == SAMPLE
    assert isinstance(decoded, ModelInferenceRequest)
    assert isinstance(decoded.mode, InferenceMode)
    assert isinstance(decoded.input.numbers[0], NumberTensor)
    assert isinstance(decoded.input.numbers[0].values[1], Number)
    assert decoded.input.numbers[0].values[1] == Number(25, 1)
    assert isinstance(decoded.input.strings[0], StringTensor)


@FAST
@given(inference_requests())
def test_request_round_trip(request):
    calldata = encode_run_model_inference(request)
    assert decode_run_model_inference(calldata) == request


@FAST
@given(model_outputs())
def test_output_round_trip(output):
    decoded = decode_output(encode_output(output))
    assert decoded == output
    assert type(decoded.is_simulation_result) is bool


@FAST
@given(st.text(max_size=40), inference_requests(), model_outputs())
def test_event_round_trip(inference_id, request, output):
    data = encode_event_data(inference_id, request, output)
    assert decode_event_data(data) == (inference_id, request, output)


def test_error_string_revert_reason():
    data = encode_revert_reason("unknown model 'abc'")
    assert data[:4] == keccak(text="Error(string)")[:4] == bytes.fromhex("08c379a0")
    assert decode_revert_reason(data) == "unknown model 'abc'"


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_error_string_round_trip(reason):
    assert decode_revert_reason(encode_revert_reason(reason)) == reason


def test_panic_revert_reason():
    data = keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11])
    assert data[:4] == bytes.fromhex("4e487b71")
    assert decode_revert_reason(data) == "panic 0x11"
    assert decode_revert_reason(data[:4] + encode(["uint256"], [1])) == "panic 0x01"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x08\xc3\x79", bytes.fromhex("08c379a0"), bytes.fromhex("08c379a0") + b"\x00" * 31,
     bytes.fromhex("4e487b71") + b"\x01", b"\xde\xad\xbe\xef" + encode(["string"], ["x"])],
)
def test_revert_reason_of_other_data_is_none(data):
    assert decode_revert_reason(data) is None


def _malformed(calldata: bytes) -> str:
    with pytest.raises(MalformedRequest) as info:
        decode_run_model_inference(calldata)
    message = info.value.reason
    assert message == str(info.value)
    assert message and message.isprintable()
    return message


def test_unknown_selector():
    calldata = b"\x12\x34\x56\x78" + encode_run_model_inference(SAMPLE)[4:]
    message = _malformed(calldata)
    assert "selector" in message and "0x12345678" in message


@pytest.mark.parametrize("calldata", [b"", b"\x01", RUN_MODEL_INFERENCE_SELECTOR[:3]])
def test_calldata_shorter_than_selector(calldata):
    assert "selector" in _malformed(calldata)


def test_selector_without_arguments():
    assert "malformed" in _malformed(RUN_MODEL_INFERENCE_SELECTOR)


@FAST
@given(inference_requests(), st.data())
def test_truncated_calldata(request, data):
    calldata = encode_run_model_inference(request)
    cut = data.draw(st.integers(4, len(calldata) - 1))
    assert "malformed" in _malformed(calldata[:cut])


def test_garbled_offset():
    calldata = bytearray(encode_run_model_inference(SAMPLE))
    calldata[4:36] = (2**255).to_bytes(32, "big")  # head offset far past the end
    assert "malformed" in _malformed(bytes(calldata))


def test_garbled_string_bytes():
    body = encode([REQUEST_TYPE], [(0, "\u00e9\u00e9\u00e9\u00e9", ((), ()))])
    encoded_cid = "\u00e9\u00e9\u00e9\u00e9".encode()
    position = body.index(encoded_cid)
    garbled = body[:position] + b"\xff" + body[position + 1:]  # not UTF-8 any more
    assert "malformed" in _malformed(RUN_MODEL_INFERENCE_SELECTOR + garbled)


def test_bad_number_sign_extension():
    body = bytearray(encode([REQUEST_TYPE], [SAMPLE]))
    # the first Number's value is 1: make its upper bytes non-canonical for int128
    one = (1).to_bytes(32, "big")
    position = body.index(one + (0).to_bytes(32, "big"))
    body[position] = 0x7F
    assert "malformed" in _malformed(RUN_MODEL_INFERENCE_SELECTOR + bytes(body))


@pytest.mark.parametrize("mode", [3, 7, 255])
def test_bad_mode(mode):
    calldata = RUN_MODEL_INFERENCE_SELECTOR + encode([REQUEST_TYPE], [(mode, "cid", ((), ()))])
    message = _malformed(calldata)
    assert "mode" in message and str(mode) in message


def test_mode_out_of_uint8_range():
    calldata = bytearray(
        RUN_MODEL_INFERENCE_SELECTOR + encode([REQUEST_TYPE], [(0, "cid", ((), ()))])
    )
    calldata[4 + 32 + 30] = 0x01  # mode word = 256: not a valid uint8
    assert "malformed" in _malformed(bytes(calldata))


def _decode_or_malformed(calldata: bytes) -> None:
    try:
        result = decode_run_model_inference(calldata)
    except MalformedRequest as exc:
        assert exc.reason
    else:
        assert isinstance(result, ModelInferenceRequest)
        assert isinstance(result.mode, InferenceMode)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_raise_malformed(calldata):
    _decode_or_malformed(calldata)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_after_selector_only_raise_malformed(body):
    _decode_or_malformed(RUN_MODEL_INFERENCE_SELECTOR + body)


@settings(max_examples=100, deadline=None)
@given(inference_requests(), st.data())
def test_mutated_calldata_only_raises_malformed(request, data):
    calldata = bytearray(encode_run_model_inference(request))
    edits = data.draw(st.lists(
        st.tuples(st.integers(4, len(calldata) - 1), st.integers(0, 255)), min_size=1, max_size=4,
    ))
    for position, value in edits:
        calldata[position] = value
    _decode_or_malformed(bytes(calldata))
