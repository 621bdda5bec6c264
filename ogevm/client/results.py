"""What an inference returns to the client: named arrays, exact decimals, strings and JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ogevm.abi.types import ModelOutput, Number, NumberTensor
from ogevm.client.inputs import decimal_number
from ogevm.tensors import NUMERIC_DTYPES, number_tensor_to_array, number_to_decimal


@dataclass(frozen=True)
class CallResult:
    """What one inference returned (not :class:`ogevm.records.InferenceResult`, which is what
    a results provider answers inside the precompile).

    ``outputs``: number tensors as numpy arrays in their recorded shape (integer outputs
    in the model's dtype, float outputs as float64; see the module docstring);
    ``outputs_exact``: the same as ``decimal.Decimal`` object arrays; ``strings``: string
    tensors as flat object arrays; ``jsons``: JSON outputs (maps, sequences) parsed;
    ``records``: the node's inference records of the transaction, as
    ``og_getInferenceRecords`` returned them (empty for :meth:`Client.call_infer`).
    """

    tx_hash: str | None
    outputs: dict[str, np.ndarray]
    jsons: dict[str, Any]
    strings: dict[str, np.ndarray]
    records: list[dict] = field(default_factory=list)
    outputs_exact: dict[str, np.ndarray] = field(default_factory=dict)
    receipt: dict | None = None

    @property
    def transaction_hash(self) -> str | None:
        """The SDK's name for :attr:`tx_hash`."""
        return self.tx_hash

    @property
    def model_output(self) -> dict[str, Any]:
        """Every output by name in one dict, as the SDK returns it."""
        return {**self.outputs, **self.strings, **self.jsons}

    def as_dtype(self, name: str, dtype: Any) -> np.ndarray:
        """Output ``name`` correctly rounded from its exact decimals into ``dtype``
        (one rounding, nearest-even; float32 gives back the model's own float32 bits)."""
        exact = self.outputs_exact[name]
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            return np.array([int(x) for x in exact.reshape(-1)], dtype=dtype).reshape(exact.shape)
        numbers = tuple(decimal_number(x, name) for x in exact.reshape(-1))
        return number_tensor_to_array(NumberTensor(name, numbers, exact.shape), dtype)


#: The former name of :class:`CallResult`, kept for existing imports.
InferenceResult = CallResult


def tensors_from_record(output: dict) -> tuple[list, list, list]:
    numbers = [(t["name"], tuple(t["shape"]), [Number(int(v), int(d)) for v, d in t["values"]])
               for t in output.get("numbers", [])]
    strings = [(t["name"], list(t["values"])) for t in output.get("strings", [])]
    jsons = [(j["name"], j["value"]) for j in output.get("jsons", [])]
    return numbers, strings, jsons


def tensors_from_output(output: ModelOutput) -> tuple[list, list, list]:
    numbers = [(t.name, tuple(t.shape), list(t.values)) for t in output.numbers]
    strings = [(t.name, list(t.values)) for t in output.strings]
    jsons = [(j.name, j.value) for j in output.jsons]
    return numbers, strings, jsons


def _object_array(values: list) -> np.ndarray:
    """A flat object array of ``values`` (numpy never looks inside the elements)."""
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _dtype_of(onnx_type: str | None) -> np.dtype:
    dtype = NUMERIC_DTYPES.get(onnx_type or "")
    if dtype is None or dtype.kind == "f":
        return np.dtype(np.float64)
    return dtype


def call_result(types: Mapping[str, str], tx_hash: str | None, numbers: list, strings: list, jsons: list,
                records: list, receipt: dict | None) -> CallResult:
    """The :class:`CallResult` of decoded outputs; ``types`` are the model's output types
    by name (``tensor(float)``...), which decide each number array's dtype."""
    outputs, exact = {}, {}
    for name, shape, values in numbers:
        decimals = _object_array([number_to_decimal(v) for v in values]).reshape(shape)
        dtype = _dtype_of(types.get(name))
        if dtype.kind == "f":
            array = np.array([float(d) for d in decimals.reshape(-1)], dtype=dtype)
        else:
            array = np.array([int(d) for d in decimals.reshape(-1)], dtype=dtype)
        outputs[name], exact[name] = array.reshape(shape), decimals
    return CallResult(
        tx_hash=tx_hash, outputs=outputs,
        jsons={name: json.loads(value) for name, value in jsons},
        strings={name: _object_array(values) for name, values in strings},
        records=records, outputs_exact=exact, receipt=receipt,
    )
