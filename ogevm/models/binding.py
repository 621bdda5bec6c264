"""Binding a request's tensors to a model's inputs, and encoding what the model returns.

Both directions are deterministic functions of the catalogue entry (``ModelInfo``), so
every node gets the same revert for the same bad input without loading the model.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

import numpy as np

from ogevm.abi.types import JsonScalar, ModelInput, ModelOutput, NumberTensor
from ogevm.constants import MAX_INPUT_TENSORS, MAX_MODEL_TENSOR_ELEMENTS
from ogevm.errors import InvalidInput, InvalidOutput
from ogevm.models.cost import gas_of
from ogevm.models.store import ModelInfo, TensorSpec
from ogevm.tensors import (
    NUMERIC_DTYPES,
    STRING_DTYPE,
    array_to_number_tensor,
    array_to_string_tensor,
    canonical_decimal,
    number_tensor_to_array,
    string_tensor_to_array,
)

Feeds = Mapping[str, np.ndarray]


def bind_inputs(info: ModelInfo, model_input: ModelInput) -> dict[str, np.ndarray]:
    """Arrays for ``session.run`` from a request's tensors, checked against ``info``.

    Raises :class:`InvalidInput` for unknown, duplicate or missing tensor names, a
    string tensor for a numeric input (or the reverse), an unsupported input type, a
    shape the model does not accept, and every value error of the tensor codec.
    """
    tensors = [*model_input.numbers, *model_input.strings]
    if len(tensors) > MAX_INPUT_TENSORS:
        raise InvalidInput(f"{len(tensors)} input tensors; the limit is {MAX_INPUT_TENSORS}")
    given: dict[str, Any] = {}
    for tensor in tensors:
        if tensor.name in given:
            raise InvalidInput(f"tensor {tensor.name!r} is given twice")
        if info.input(tensor.name) is None:
            expected = ", ".join(repr(spec.name) for spec in info.inputs)
            raise InvalidInput(f"model has no input {tensor.name!r} (inputs: {expected})")
        given[tensor.name] = tensor
    feeds = {}
    for spec in info.inputs:
        if spec.name not in given:
            raise InvalidInput(f"missing input {spec.name!r} ({spec.type})")
        feeds[spec.name] = _bind(spec, given[spec.name])
    return feeds


def samples(info: ModelInfo, model_input: ModelInput) -> int:
    """Rows of a request: the leading dimension of the first input when it is free, else 1.

    A model without inputs, a fixed leading dimension or an empty batch counts one row.
    """
    first = info.inputs[0] if info.inputs else None
    if first is None or not first.batch_dimension:
        return 1
    shapes = {tensor.name: tuple(tensor.shape) for tensor in model_input.numbers}
    for tensor in model_input.strings:
        if tensor.name == first.name:
            shapes[tensor.name] = _string_shape(first, len(tensor.values))
    return _rows(info, shapes)


def model_gas(info: ModelInfo, feeds: Feeds) -> int:
    """Model gas of a call with these bound inputs (spec §2), known before the model runs.

    Raises :class:`InvalidInput` when the largest tensor the model would compute at
    these shapes exceeds ``MAX_MODEL_TENSOR_ELEMENTS``.
    """
    shapes = {name: array.shape for name, array in feeds.items()}
    ops, largest = info.cost.at(shapes)
    if largest > MAX_MODEL_TENSOR_ELEMENTS:
        raise InvalidInput(
            f"the model would compute a tensor of {largest} elements at these input shapes; "
            f"the limit is {MAX_MODEL_TENSOR_ELEMENTS}"
        )
    return gas_of(ops, _rows(info, shapes))


def _rows(info: ModelInfo, shapes: Mapping[str, tuple[int, ...]]) -> int:
    first = info.inputs[0] if info.inputs else None
    shape = shapes.get(first.name) if first is not None and first.batch_dimension else None
    return max(1, shape[0]) if shape else 1


def encode_outputs(info: ModelInfo, values: list[Any]) -> ModelOutput:
    """Canonical ``ModelOutput`` of what ``session.run`` returned, in output order.

    Numeric tensors become number tensors, string tensors string tensors, and maps or
    sequences (e.g. ZipMap probabilities) canonical JSON in ``jsons``. Raises
    :class:`InvalidOutput` for NaN, infinity and values that cannot be encoded.
    """
    numbers, strings, jsons = [], [], []
    for spec, value in zip(info.outputs, values):
        if spec.type == STRING_DTYPE:
            strings.append(array_to_string_tensor(spec.name, value))
        elif spec.type.startswith("tensor("):
            numbers.append(array_to_number_tensor(spec.name, np.asarray(value)))
        else:
            jsons.append(JsonScalar(spec.name, canonical_json(spec.name, value, _float_type(spec.type))))
    return ModelOutput(tuple(numbers), tuple(strings), tuple(jsons), False)


def encode_stacked_outputs(info: ModelInfo, values: list[Any], sizes: Sequence[int]) -> list[ModelOutput] | None:
    """``encode_outputs`` of each request's rows of a stacked run's ``values`` (``sizes`` rows
    each, in order), encoding every element once instead of slicing array by array.

    The outputs equal those of ``encode_outputs(info, [value[start:stop] for value in values])``.
    None when that needs the slice-by-slice path: an output that is not a numeric tensor of
    rank >= 1, or one that fails to encode (so only the requests whose rows fail get the error).
    """
    if any(spec.type == STRING_DTYPE or not spec.type.startswith("tensor(") for spec in info.outputs):
        return None
    arrays = [np.asarray(value) for value in values[:len(info.outputs)]]
    if any(array.ndim == 0 for array in arrays):
        return None
    try:
        tensors = [array_to_number_tensor(spec.name, array) for spec, array in zip(info.outputs, arrays)]
    except InvalidOutput:
        return None
    row_sizes = [math.prod(array.shape[1:]) for array in arrays]
    outputs, start = [], 0
    for size in sizes:
        numbers = []
        for tensor, row_size, array in zip(tensors, row_sizes, arrays):
            first, end = min(start, len(array)), min(start + size, len(array))  # as ``value[start:stop]``
            numbers.append(NumberTensor(tensor.name, tensor.values[first * row_size:end * row_size],
                                        (end - first, *tensor.shape[1:])))
        outputs.append(ModelOutput(tuple(numbers), (), (), False))
        start += size
    return outputs


def canonical_json(name: str, value: Any, float_type: type = np.float32) -> str:
    """Compact JSON with sorted map keys and numbers in their shortest exact decimal form.

    Raises :class:`InvalidOutput` for NaN or infinity.
    """
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{canonical_json(name, value[k], float_type)}" for k in sorted(value))
        return "{" + ",".join(items) + "}"
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical_json(name, item, float_type) for item in value) + "]"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise InvalidOutput(f"output {name!r} contains {'NaN' if math.isnan(value) else 'infinity'}")
        return canonical_decimal(float_type(value))
    return json.dumps(str(value))


def _float_type(onnx_type: str) -> type:
    return np.float64 if "tensor(double)" in onnx_type else np.float32


def _bind(spec: TensorSpec, tensor) -> np.ndarray:
    is_string_tensor = not hasattr(tensor, "shape")
    if spec.type == STRING_DTYPE:
        if not is_string_tensor:
            raise InvalidInput(f"input {spec.name!r} takes strings but got a number tensor")
        return string_tensor_to_array(tensor, _string_shape(spec, len(tensor.values)))
    dtype = NUMERIC_DTYPES.get(spec.type)
    if dtype is None:
        raise InvalidInput(f"input {spec.name!r} has unsupported type {spec.type}")
    if is_string_tensor:
        raise InvalidInput(f"input {spec.name!r} takes {spec.type} but got a string tensor")
    _check_dims(spec, tuple(tensor.shape))
    return number_tensor_to_array(tensor, dtype)


def _check_dims(spec: TensorSpec, shape: tuple[int, ...]) -> None:
    fits = len(shape) == len(spec.shape) and all(
        not isinstance(d, int) or d == s for d, s in zip(spec.shape, shape)
    )
    if not fits:
        raise InvalidInput(f"input {spec.name!r} has shape {list(shape)}; the model expects {_dims(spec)}")


def _dims(spec: TensorSpec) -> list[int | str]:
    """The declared shape as reasons write it: each free dimension as ``'?'`` (SPEC §1.2)."""
    return [d if isinstance(d, int) else "?" for d in spec.shape]


def _string_shape(spec: TensorSpec, count: int) -> tuple[int, ...]:
    """String tensors carry no shape: fill the model's one free dimension from the count."""
    free = [i for i, d in enumerate(spec.shape) if not isinstance(d, int)]
    fixed = math.prod(d for d in spec.shape if isinstance(d, int))
    if len(free) > 1:
        raise InvalidInput(f"input {spec.name!r} has several free dimensions; strings carry no shape")
    if not free:
        return tuple(spec.shape)
    if fixed == 0 or count % fixed:
        raise InvalidInput(f"input {spec.name!r}: {count} strings do not fill shape {_dims(spec)}")
    shape = list(spec.shape)
    shape[free[0]] = count // fixed
    return tuple(shape)
