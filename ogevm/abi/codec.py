"""ABI encoding of the OGInference calls, outputs, events and revert reasons.

Calldata is dispatched on its 4-byte selector so further functions can share the
precompile address; today the precompile serves ``runModelInference``.
"""

from __future__ import annotations

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak

from ogevm.abi import layout
from ogevm.abi.types import (
    InferenceMode,
    JsonScalar,
    ModelInferenceRequest,
    ModelInput,
    ModelOutput,
    Number,
    NumberTensor,
    StringTensor,
)
from ogevm.errors import MalformedRequest

NUMBER = "(int128,int128)"
NUMBER_TENSOR = f"(string,{NUMBER}[],uint32[])"
STRING_TENSOR = "(string,string[])"
JSON_SCALAR = "(string,string)"
MODEL_INPUT = f"({NUMBER_TENSOR}[],{STRING_TENSOR}[])"
MODEL_INFERENCE_REQUEST = f"(uint8,string,{MODEL_INPUT})"
MODEL_OUTPUT = f"({NUMBER_TENSOR}[],{STRING_TENSOR}[],{JSON_SCALAR}[],bool)"

RUN_MODEL_INFERENCE_SIGNATURE = f"runModelInference({MODEL_INFERENCE_REQUEST})"
RUN_MODEL_INFERENCE_SELECTOR = keccak(text=RUN_MODEL_INFERENCE_SIGNATURE)[:4]
MODEL_INFERENCE_EVENT_SIGNATURE = (
    f"ModelInferenceEvent(string,{MODEL_INFERENCE_REQUEST},{MODEL_OUTPUT})"
)
MODEL_INFERENCE_EVENT_TOPIC = keccak(text=MODEL_INFERENCE_EVENT_SIGNATURE)

ERROR_SELECTOR = keccak(text="Error(string)")[:4]
PANIC_SELECTOR = keccak(text="Panic(uint256)")[:4]


def encode_run_model_inference(request: ModelInferenceRequest) -> bytes:
    """Calldata of ``runModelInference(request)``."""
    return RUN_MODEL_INFERENCE_SELECTOR + layout.encode_request(request)


def decode_run_model_inference(calldata: bytes) -> ModelInferenceRequest:
    """Decode calldata of ``runModelInference`` (canonical ABI layout only).

    Raises :class:`MalformedRequest` for an unknown selector, bad ABI or an unknown mode.
    """
    selector = bytes(calldata[:4])
    if selector != RUN_MODEL_INFERENCE_SELECTOR:
        raise MalformedRequest(f"unknown function selector 0x{selector.hex()}")
    try:
        mode, cid, model_input = layout.decode_request(bytes(calldata[4:]))
    except layout.LayoutError as exc:
        raise MalformedRequest("malformed runModelInference calldata") from exc
    try:
        mode = InferenceMode(mode)
    except ValueError as exc:
        raise MalformedRequest(f"unknown inference mode {mode}") from exc
    return ModelInferenceRequest(mode, cid, model_input)


def encode_output(output: ModelOutput) -> bytes:
    """ABI encoding of a ``ModelOutput`` as the function's return data."""
    return layout.encode_output(output)


def decode_output(data: bytes) -> ModelOutput:
    """Decode return data of ``runModelInference``. Raises ``LayoutError`` (a ValueError)."""
    return layout.decode_output(data)


def encode_event_data(inference_id: str, request: ModelInferenceRequest, output: ModelOutput) -> bytes:
    """Data of ``ModelInferenceEvent`` (it has no indexed fields)."""
    return layout.encode_event(inference_id, layout.encode_request(request), output)


def decode_event_data(data: bytes) -> tuple[str, ModelInferenceRequest, ModelOutput]:
    """Inverse of :func:`encode_event_data` (via eth_abi: not on a hot path)."""
    inference_id, raw_request, raw_output = decode(
        ["string", MODEL_INFERENCE_REQUEST, MODEL_OUTPUT], bytes(data)
    )
    mode, cid, (numbers, strings) = raw_request
    request = ModelInferenceRequest(InferenceMode(mode), cid, ModelInput(_numbers(numbers), _strings(strings)))
    numbers, strings, jsons, is_simulation = raw_output
    output = ModelOutput(_numbers(numbers), _strings(strings),
                         tuple(JsonScalar(name, value) for name, value in jsons), is_simulation)
    return inference_id, request, output


def encode_revert_reason(reason: str) -> bytes:
    """Standard ``Error(string)`` revert data, read by Solidity, web3.py and ethers.js."""
    return ERROR_SELECTOR + encode(["string"], [reason])


def decode_revert_reason(data: bytes) -> str | None:
    """The reason of ``Error(string)`` or ``Panic(uint256)`` revert data, else None."""
    data = bytes(data)
    try:
        if data[:4] == ERROR_SELECTOR:
            return decode(["string"], data[4:])[0]
        if data[:4] == PANIC_SELECTOR:
            return f"panic 0x{decode(['uint256'], data[4:])[0]:02x}"
    except (DecodingError, UnicodeDecodeError):
        return None
    return None


def _numbers(raw: tuple) -> tuple[NumberTensor, ...]:
    return tuple(
        NumberTensor(name, tuple(Number(v, d) for v, d in values), tuple(shape))
        for name, values, shape in raw
    )


def _strings(raw: tuple) -> tuple[StringTensor, ...]:
    return tuple(StringTensor(name, tuple(values)) for name, values in raw)
