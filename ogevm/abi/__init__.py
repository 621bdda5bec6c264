"""SolidML / OGInference ABI: the types contracts use and their codecs."""

from ogevm.abi.codec import (
    MODEL_INFERENCE_EVENT_TOPIC,
    RUN_MODEL_INFERENCE_SELECTOR,
    decode_event_data,
    decode_output,
    decode_revert_reason,
    decode_run_model_inference,
    encode_event_data,
    encode_output,
    encode_revert_reason,
    encode_run_model_inference,
)
from ogevm.abi.types import (
    SIMULATION_OUTPUT,
    InferenceMode,
    JsonScalar,
    ModelInferenceRequest,
    ModelInput,
    ModelOutput,
    Number,
    NumberTensor,
    StringTensor,
)

__all__ = [
    "MODEL_INFERENCE_EVENT_TOPIC",
    "RUN_MODEL_INFERENCE_SELECTOR",
    "SIMULATION_OUTPUT",
    "InferenceMode",
    "JsonScalar",
    "ModelInferenceRequest",
    "ModelInput",
    "ModelOutput",
    "Number",
    "NumberTensor",
    "StringTensor",
    "decode_event_data",
    "decode_output",
    "decode_revert_reason",
    "decode_run_model_inference",
    "encode_event_data",
    "encode_output",
    "encode_revert_reason",
    "encode_run_model_inference",
]
