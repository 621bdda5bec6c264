"""Python mirrors of the public OGInference Solidity types.

Each type is a ``NamedTuple`` whose field order is the ABI order, so a value passes to
``eth_abi`` as it is and a decoded tuple converts back with :func:`from_abi` helpers.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class InferenceMode(IntEnum):
    """How a result is verified: the ``ModelInferenceMode`` enum, in its order."""

    VANILLA = 0
    ZKML = 1
    TEE = 2


class Number(NamedTuple):
    """``value * 10**-decimals``: (15, 1) is 1.5 and (10, 0) is 10."""

    value: int
    decimals: int


class NumberTensor(NamedTuple):
    """``TensorLib.MultiDimensionalNumberTensor``: row-major values and a shape."""

    name: str
    values: tuple[Number, ...]
    shape: tuple[int, ...]


class StringTensor(NamedTuple):
    """``TensorLib.StringTensor``: a flat list of strings."""

    name: str
    values: tuple[str, ...]


class JsonScalar(NamedTuple):
    """``TensorLib.JsonScalar``: a named JSON text (maps and sequences of a model)."""

    name: str
    value: str


class ModelInput(NamedTuple):
    """``ModelInput``: named number and string tensors."""

    numbers: tuple[NumberTensor, ...]
    strings: tuple[StringTensor, ...]


class ModelInferenceRequest(NamedTuple):
    """``ModelInferenceRequest``: the argument of ``runModelInference``."""

    mode: InferenceMode
    model_cid: str
    input: ModelInput


class ModelOutput(NamedTuple):
    """``ModelOutput`` in its current form (with ``jsons``)."""

    numbers: tuple[NumberTensor, ...]
    strings: tuple[StringTensor, ...]
    jsons: tuple[JsonScalar, ...]
    is_simulation_result: bool


#: The output a simulation returns: empty tensors, ``is_simulation_result = true``.
SIMULATION_OUTPUT = ModelOutput((), (), (), True)
