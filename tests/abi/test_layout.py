"""The strict canonical codec agrees with eth_abi, and refuses every other layout."""

from __future__ import annotations

import pytest
from eth_abi import decode, encode
from hypothesis import given, settings
from hypothesis import strategies as st

from ogevm.abi import layout
from ogevm.abi.codec import MODEL_INFERENCE_REQUEST, MODEL_OUTPUT
from ogevm.abi.types import ModelInferenceRequest, ModelInput, Number, NumberTensor
from ogevm.testing.strategies import inference_requests, model_outputs

FAST = settings(max_examples=150, deadline=None)


@FAST
@given(inference_requests())
def test_request_encoding_equals_eth_abi(request):
    assert layout.encode_request(request) == encode([MODEL_INFERENCE_REQUEST], [request])
    mode, cid, model_input = layout.decode_request(encode([MODEL_INFERENCE_REQUEST], [request]))
    assert (mode, cid, model_input) == (int(request.mode), request.model_cid, request.input)


@FAST
@given(model_outputs())
def test_output_encoding_equals_eth_abi(output):
    assert layout.encode_output(output) == encode([MODEL_OUTPUT], [output])
    assert layout.decode_output(layout.encode_output(output)) == output


@FAST
@given(st.text(max_size=40), inference_requests(), model_outputs())
def test_event_encoding_equals_eth_abi(inference_id, request, output):
    expected = encode(["string", MODEL_INFERENCE_REQUEST, MODEL_OUTPUT], [inference_id, request, output])
    encoded_request = layout.encode_request(request)
    assert layout.encode_event(inference_id, encoded_request, output) == expected
    # the precompile's one-pass form: the return data and the event, the output encoded once
    assert layout.encode_output_and_event(inference_id, encoded_request, output) == (
        encode([MODEL_OUTPUT], [output]), expected)


#: Values around the int64 bounds, where decoding leaves its four-int64 fast path, and wider.
INT128_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**127), 2**127 - 1),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, -(2**64), 0, -1]),
)


@FAST
@given(st.lists(st.tuples(INT128_VALUES, INT128_VALUES), max_size=10))
def test_numbers_of_every_width_decode_as_eth_abi_does(pairs):
    tensor = NumberTensor("x", tuple(Number(v, d) for v, d in pairs), (len(pairs),))
    request = ModelInferenceRequest(0, "bafk", ModelInput((tensor,), ()))
    encoded = encode([MODEL_INFERENCE_REQUEST], [request])
    assert layout.decode_request(encoded)[2] == request.input == decode([MODEL_INFERENCE_REQUEST], encoded)[0][2]


REQUEST = ModelInferenceRequest(0, "bafk", ModelInput((NumberTensor("x", (Number(15, 1),), (1, 1)),), ()))


def test_trailing_bytes_are_refused():
    data = layout.encode_request(REQUEST)
    assert decode([MODEL_INFERENCE_REQUEST], data + b"\x00" * 32)  # eth_abi tolerates them
    with pytest.raises(layout.LayoutError, match="bytes after"):
        layout.decode_request(data + b"\x00" * 32)


def test_aliased_offsets_are_refused():
    # two tensors whose heads both point at the first tensor's tail: eth_abi follows them
    two = ModelInferenceRequest(0, "bafk", ModelInput((REQUEST.input.numbers[0],) * 2, ()))
    data = bytearray(layout.encode_request(two))
    # locate the numbers array: its two offsets are consecutive words after its length word 2
    marker = (2).to_bytes(32, "big")
    at = bytes(data).index(marker, 32 * 6)
    first = data[at + 32:at + 64]
    data[at + 64:at + 96] = first  # second head now aliases the first tail
    assert decode([MODEL_INFERENCE_REQUEST], bytes(data))  # accepted by a general decoder
    with pytest.raises(layout.LayoutError, match="offset is not canonical"):
        layout.decode_request(bytes(data))


@pytest.mark.parametrize("mutate, reason", [
    (lambda d: d[:-1], "ends early"),
    (lambda d: d[:32 * 3] + (2**200).to_bytes(32, "big") + d[32 * 4:], "length exceeds|ends early|offset"),
])
def test_truncated_or_oversized_lengths_are_refused(mutate, reason):
    with pytest.raises(layout.LayoutError, match=reason):
        layout.decode_request(mutate(layout.encode_request(REQUEST)))


def test_int128_out_of_range_and_dirty_padding_are_refused():
    data = bytearray(layout.encode_request(REQUEST))
    value_word = bytes(data).index((15).to_bytes(32, "big"))
    data[value_word] = 0x01  # sets a bit above int128
    with pytest.raises(layout.LayoutError, match="int128"):
        layout.decode_request(bytes(data))
    padded = bytearray(layout.encode_request(REQUEST))
    padded[bytes(padded).index(b"bafk") + 4] = 0x01  # the zero padding after the CID string
    with pytest.raises(layout.LayoutError, match="padding"):
        layout.decode_request(bytes(padded))
    odd = REQUEST._replace(input=ModelInput((NumberTensor("x", (Number(1, 0),), (123457,)),), ()))
    data = layout.encode_request(odd)
    dim = (123457).to_bytes(32, "big")
    with pytest.raises(layout.LayoutError, match="uint32"):
        layout.decode_request(data.replace(dim, (2**40).to_bytes(32, "big")))
