"""Testing helpers for ogevm users: Hypothesis strategies and exact reference helpers."""

from ogevm.testing.strategies import (
    arrays_for,
    exact_number,
    inference_requests,
    input_from_arrays,
    model_inputs,
    model_outputs,
    nearest_float,
    number_tensors,
    number_value,
    numbers,
    string_tensors,
    valid_input_for,
)

__all__ = [
    "arrays_for",
    "exact_number",
    "inference_requests",
    "input_from_arrays",
    "model_inputs",
    "model_outputs",
    "nearest_float",
    "number_tensors",
    "number_value",
    "numbers",
    "string_tensors",
    "valid_input_for",
]
