"""Content-addressed ONNX models: store, catalogue entries, gas cost and runtime."""

from ogevm.models.binding import bind_inputs, encode_outputs
from ogevm.models.cid import compute_cid, verify_cid
from ogevm.models.runtime import ModelRuntime
from ogevm.models.store import ModelInfo, ModelStore, TensorSpec, inspect_model

__all__ = [
    "ModelInfo",
    "ModelRuntime",
    "ModelStore",
    "TensorSpec",
    "bind_inputs",
    "compute_cid",
    "encode_outputs",
    "inspect_model",
    "verify_cid",
]
