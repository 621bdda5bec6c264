"""Mocked inference for tests: a model answers what the test says, not what it computes.

A mock sets the result of a model for one request digest (``keccak256`` of the call's
calldata, :attr:`~ogevm.records.InferenceRequest.digest`) or for any input, until it is
cleared: an output (a negative price, an extreme value) or an error reason (a failing or
NaN-producing model, which reverts the call as a real failure would). A mock for one
digest wins over a mock for any input of the same model.

The same table answers INLINE calls (:class:`~ogevm.precompile.modes.InlineProvider`) and
PIPE's executor, so a block built with a mock holds what ``eth_call`` returned. PIPE signs a
mocked result with the development mock key (:data:`~ogevm.vm.accounts.DEV_MOCK_KEY`), which is
never registered: only a validator in dev mode accepts such a block.

:func:`parse_output` reads an output in the JSON shape of ``og_getInferenceRecords``;
:func:`request_digest` gives the digest of a call, to mock one input only.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable

from eth_utils import keccak

from ogevm.abi.codec import encode_run_model_inference
from ogevm.abi.types import JsonScalar, ModelInferenceRequest, ModelOutput, Number, NumberTensor, StringTensor
from ogevm.constants import MAX_REASON_CHARS
from ogevm.errors import OgevmError
from ogevm.records import InferenceRequest, InferenceResult
from ogevm.tensors import INT128_MAX, INT128_MIN

Outcome = tuple[ModelOutput | None, str | None]


class InvalidMock(OgevmError):
    """A mock that cannot be set: an unknown model, a malformed output or digest."""


class InferenceMocks:
    """The mocks in force, by model CID and digest (``None``: any input). Thread-safe: the
    node's RPC threads set them while PIPE's workers read them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mocks: dict[tuple[str, bytes | None], Outcome] = {}

    def set(self, cid: str, output: ModelOutput | None = None, error: str | None = None,
            digest: bytes | None = None) -> None:
        """Make ``cid`` answer ``output`` (or fail with ``error``) for ``digest``, or for any input.
        Raises :class:`InvalidMock` unless exactly one of ``output`` and ``error`` is given."""
        if (output is None) == (error is None):
            raise InvalidMock("a mock has exactly one of an output and an error")
        if error is not None and not (isinstance(error, str) and 0 < len(error) <= MAX_REASON_CHARS):
            raise InvalidMock(f"a mocked error is a reason of 1 to {MAX_REASON_CHARS} characters")
        if digest is not None and len(digest) != 32:
            raise InvalidMock("a digest is 32 bytes")
        if output is not None and output.is_simulation_result:
            raise InvalidMock("a mocked output cannot be a simulation result")
        with self._lock:
            self._mocks[(cid, digest)] = (output, error)

    def clear(self, cid: str | None = None) -> int:
        """Remove the mocks of ``cid`` (every mock if None); returns how many were removed."""
        with self._lock:
            gone = [key for key in self._mocks if cid is None or key[0] == cid]
            for key in gone:
                del self._mocks[key]
        return len(gone)

    def resolve(self, request: InferenceRequest) -> InferenceResult | None:
        """The mocked result of ``request``, or None if no mock covers it."""
        with self._lock:
            outcome = self._mocks.get((request.model_cid, request.digest)) or self._mocks.get((request.model_cid, None))
        if outcome is None:
            return None
        output, error = outcome
        return InferenceResult(request.id, request.digest, output=output, error=error)

    def __bool__(self) -> bool:
        return bool(self._mocks)

    def __len__(self) -> int:
        return len(self._mocks)


def request_digest(call: ModelInferenceRequest) -> bytes:
    """The digest the precompile gives ``call`` (``keccak256`` of its calldata): what a mock
    for this input alone is keyed by."""
    return keccak(encode_run_model_inference(call))


def parse_output(value: Any) -> ModelOutput:
    """A ``ModelOutput`` from its JSON shape in ``og_getInferenceRecords``: ``{"numbers": [{"name",
    "shape", "values": [[value, decimals], ...]}], "strings": [{"name", "values"}], "jsons":
    [{"name", "value"}]}`` (each list optional; a record's ``decimal`` lists are ignored).
    Raises :class:`InvalidMock` naming what is wrong."""
    if not isinstance(value, dict):
        raise InvalidMock("an output is an object with numbers, strings and jsons")
    unknown = set(value) - {"numbers", "strings", "jsons"}
    if unknown:
        raise InvalidMock(f"unknown output field(s): {', '.join(sorted(unknown))}")
    numbers = tuple(_number_tensor(t, i) for i, t in enumerate(_list(value, "numbers")))
    strings = tuple(StringTensor(_text(t, "name", f"strings[{i}]"), tuple(_texts(t, f"strings[{i}]")))
                    for i, t in enumerate(_list(value, "strings")))
    jsons = tuple(JsonScalar(_text(j, "name", f"jsons[{i}]"), _text(j, "value", f"jsons[{i}]"))
                  for i, j in enumerate(_list(value, "jsons")))
    return ModelOutput(numbers, strings, jsons, False)


def _list(value: dict, key: str) -> list:
    items = value.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidMock(f"{key} is a list of objects")
    return items


def _text(item: dict, key: str, where: str) -> str:
    text = item.get(key)
    if not isinstance(text, str):
        raise InvalidMock(f"{where}.{key} is a string")
    return _encodable(text, f"{where}.{key}")


def _encodable(text: str, where: str) -> str:
    """``text`` if it has a UTF-8 form (JSON may carry a lone surrogate escape, which has none)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidMock(f"{where} is not valid Unicode: {exc.reason} at index {exc.start}") from None
    return text


def _texts(item: dict, where: str) -> Iterable[str]:
    values = item.get("values")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidMock(f"{where}.values is a list of strings")
    return [_encodable(value, f"{where}.values[{i}]") for i, value in enumerate(values)]


def _number_tensor(item: dict, index: int) -> NumberTensor:
    where = f"numbers[{index}]"
    values, shape = item.get("values"), item.get("shape")
    if not isinstance(values, list):
        raise InvalidMock(f"{where}.values is a list of [value, decimals] pairs")
    numbers = []
    for pair in values:
        if not (isinstance(pair, list) and len(pair) == 2 and all(_is_int(x) for x in pair)
                and all(INT128_MIN <= x <= INT128_MAX for x in pair)):
            raise InvalidMock(f"{where}.values holds [value, decimals] pairs of int128 integers")
        numbers.append(Number(*pair))
    if shape is None:
        shape = [len(numbers)]
    if not (isinstance(shape, list) and all(_is_int(d) and 0 <= d < 2**32 for d in shape)):
        raise InvalidMock(f"{where}.shape is a list of uint32 dimensions")
    count = 1
    for dimension in shape:
        count *= dimension
    if count != len(numbers):
        raise InvalidMock(f"{where}: shape {shape} holds {count} values, not {len(numbers)}")
    return NumberTensor(_text(item, "name", where), tuple(numbers), tuple(shape))


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
