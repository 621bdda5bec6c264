"""A strict, linear-time ABI codec for the OGInference types.

Why not ``eth_abi``: the precompile decodes attacker-chosen calldata on every call, and
general decoders follow offsets wherever they point, so aliased offsets can make
decoding cost far more than the calldata's gas pays for; they are also slow on
tensors. This codec reads the one layout Solidity produces (the *canonical* encoding):
every offset must point exactly where the canonical encoding puts that tail, padding
must be zero, integers must fit their type, strings must be UTF-8, and nothing may
follow the value. So each byte is read once, and a value has exactly one encoding.
The tests check it against ``eth_abi`` on random values.
"""

from __future__ import annotations

from ogevm.abi.types import (
    JsonScalar,
    ModelInferenceRequest,
    ModelInput,
    ModelOutput,
    Number,
    NumberTensor,
    StringTensor,
)

WORD = 32
_INT128_MIN, _INT128_MAX = -(2**127), 2**127 - 1


class LayoutError(ValueError):
    """Bytes that are not the canonical encoding of the expected type."""


# --- encoding ------------------------------------------------------------------------
def _uint(value: int) -> bytes:
    return value.to_bytes(WORD, "big")


def _int(value: int) -> bytes:
    return value.to_bytes(WORD, "big", signed=True)


def _bytes(raw: bytes) -> bytes:
    return _uint(len(raw)) + raw + b"\x00" * (-len(raw) % WORD)


def _string(text: str) -> bytes:
    return _bytes(text.encode("utf-8"))


def _dynamic_tuple(static_heads: list[bytes | None], tails: list[bytes]) -> bytes:
    """Heads in order: bytes for a static member, None for a dynamic one (its tail is next)."""
    head_size = WORD * len(static_heads)
    heads, offset, tail_iter = [], head_size, iter(tails)
    body = []
    for head in static_heads:
        if head is None:
            tail = next(tail_iter)
            heads.append(_uint(offset))
            body.append(tail)
            offset += len(tail)
        else:
            heads.append(head)
    return b"".join(heads) + b"".join(body)


def _dynamic_array(encoded: list[bytes]) -> bytes:
    return _uint(len(encoded)) + _dynamic_tuple([None] * len(encoded), encoded)


def _numbers(values) -> bytes:
    return _uint(len(values)) + b"".join(_int(v) + _int(d) for v, d in values)


def _number_tensor(t: NumberTensor) -> bytes:
    return _dynamic_tuple([None, None, None], [
        _string(t.name), _numbers(t.values), _uint(len(t.shape)) + b"".join(_uint(d) for d in t.shape)])


def _string_tensor(t: StringTensor) -> bytes:
    return _dynamic_tuple([None, None], [_string(t.name), _dynamic_array([_string(v) for v in t.values])])


def _model_input(m: ModelInput) -> bytes:
    return _dynamic_tuple([None, None], [_dynamic_array([_number_tensor(t) for t in m.numbers]),
                                         _dynamic_array([_string_tensor(t) for t in m.strings])])


def encode_request(request: ModelInferenceRequest) -> bytes:
    """``abi.encode(request)`` (one dynamic tuple: a leading offset word, then the tuple)."""
    body = _dynamic_tuple([_uint(int(request.mode)), None, None],
                          [_string(request.model_cid), _model_input(request.input)])
    return _uint(WORD) + body


def _output_body(o: ModelOutput) -> bytes:
    return _dynamic_tuple([None, None, None, _uint(1 if o.is_simulation_result else 0)], [
        _dynamic_array([_number_tensor(t) for t in o.numbers]),
        _dynamic_array([_string_tensor(t) for t in o.strings]),
        _dynamic_array([_dynamic_tuple([None, None], [_string(j.name), _string(j.value)]) for j in o.jsons]),
    ])


def encode_output(output: ModelOutput) -> bytes:
    """``abi.encode(output)``."""
    return _uint(WORD) + _output_body(output)


def encode_event(inference_id: str, encoded_request: bytes, output: ModelOutput) -> bytes:
    """``abi.encode(inferenceID, request, output)``: the data of ``ModelInferenceEvent``.

    ``encoded_request`` is ``abi.encode(request)``; the precompile passes its calldata
    after the selector, which is exactly that because only the canonical layout decodes.
    """
    return _dynamic_tuple([None, None, None],
                          [_string(inference_id), encoded_request[WORD:], _output_body(output)])


# --- decoding --------------------------------------------------------------------------
class _Reader:
    """Canonical-layout reader: ``expect_tail`` checks each offset against the cursor."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def word(self, pos: int) -> int:
        if pos + WORD > len(self.data):
            raise LayoutError("calldata ends early")
        return int.from_bytes(self.data[pos:pos + WORD], "big")

    def uint(self, pos: int, bits: int) -> int:
        value = self.word(pos)
        if value >> bits:
            raise LayoutError(f"value does not fit uint{bits}")
        return value

    def int128(self, pos: int) -> int:
        value = self.word(pos)
        if value >= 2**255:
            value -= 2**256
        if not _INT128_MIN <= value <= _INT128_MAX:
            raise LayoutError("value does not fit int128")
        return value

    def count(self, pos: int, element_size: int) -> int:
        """A length word whose elements (at least ``element_size`` bytes each) fit the data."""
        n = self.word(pos)
        if n * element_size > len(self.data) - pos - WORD:
            raise LayoutError("length exceeds the calldata")
        return n

    def raw(self, pos: int) -> tuple[bytes, int]:
        n = self.count(pos, 1)
        start, padded = pos + WORD, (n + WORD - 1) // WORD * WORD
        if start + padded > len(self.data):
            raise LayoutError("calldata ends early")
        if any(self.data[start + n:start + padded]):
            raise LayoutError("non-zero padding")
        return self.data[start:start + n], start + padded

    def string(self, pos: int) -> tuple[str, int]:
        raw, end = self.raw(pos)
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise LayoutError("string is not UTF-8") from exc

    def tuple(self, pos: int, members: list) -> tuple[list, int]:
        """``members``: ("static", reader) or ("dynamic", reader); readers return (value, end)."""
        values, tail = [], pos + WORD * len(members)
        for i, (kind, read) in enumerate(members):
            head = pos + WORD * i
            if kind == "static":
                values.append(read(head))
                continue
            if self.word(head) != tail - pos:
                raise LayoutError("offset is not canonical")
            value, tail = read(tail)
            values.append(value)
        return values, tail

    def array(self, pos: int, read) -> tuple[list, int]:
        n = self.count(pos, WORD)
        values, end = self.tuple(pos + WORD, [("dynamic", read)] * n)
        return values, end

    def numbers(self, pos: int) -> tuple[tuple[Number, ...], int]:
        n = self.count(pos, 2 * WORD)
        start = pos + WORD
        values = tuple(Number(self.int128(start + 64 * i), self.int128(start + 64 * i + WORD)) for i in range(n))
        return values, start + 64 * n

    def uint32s(self, pos: int) -> tuple[tuple[int, ...], int]:
        n = self.count(pos, WORD)
        start = pos + WORD
        return tuple(self.uint(start + WORD * i, 32) for i in range(n)), start + WORD * n

    def number_tensor(self, pos: int) -> tuple[NumberTensor, int]:
        (name, values, shape), end = self.tuple(
            pos, [("dynamic", self.string), ("dynamic", self.numbers), ("dynamic", self.uint32s)])
        return NumberTensor(name, values, shape), end

    def string_tensor(self, pos: int) -> tuple[StringTensor, int]:
        (name, values), end = self.tuple(pos, [("dynamic", self.string),
                                                ("dynamic", lambda p: self.array(p, self.string))])
        return StringTensor(name, tuple(values)), end

    def json_scalar(self, pos: int) -> tuple[JsonScalar, int]:
        (name, value), end = self.tuple(pos, [("dynamic", self.string), ("dynamic", self.string)])
        return JsonScalar(name, value), end

    def model_input(self, pos: int) -> tuple[ModelInput, int]:
        (numbers, strings), end = self.tuple(pos, [("dynamic", lambda p: self.array(p, self.number_tensor)),
                                                   ("dynamic", lambda p: self.array(p, self.string_tensor))])
        return ModelInput(tuple(numbers), tuple(strings)), end

    def top(self, read) -> object:
        """A single dynamic value encoded on its own: offset word 32, the value, nothing after."""
        if self.word(0) != WORD:
            raise LayoutError("offset is not canonical")
        value, end = read(WORD)
        if end != len(self.data):
            raise LayoutError("bytes after the encoded value")
        return value


def decode_request(data: bytes) -> tuple[int, str, ModelInput]:
    """(mode, model CID, input) of ``abi.encode(request)``; the mode is range-checked by the caller.

    Raises :class:`LayoutError` for anything but the canonical encoding.
    """
    reader = _Reader(bytes(data))
    (mode, cid, model_input) = reader.top(lambda pos: reader.tuple(pos, [
        ("static", lambda p: reader.uint(p, 8)), ("dynamic", reader.string), ("dynamic", reader.model_input)]))
    return mode, cid, model_input


def decode_output(data: bytes) -> ModelOutput:
    """Inverse of :func:`encode_output`. Raises :class:`LayoutError`."""
    reader = _Reader(bytes(data))

    def output(pos: int):
        (numbers, strings, jsons, flag), end = reader.tuple(pos, [
            ("dynamic", lambda p: reader.array(p, reader.number_tensor)),
            ("dynamic", lambda p: reader.array(p, reader.string_tensor)),
            ("dynamic", lambda p: reader.array(p, reader.json_scalar)),
            ("static", lambda p: reader.uint(p, 1))])
        return ModelOutput(tuple(numbers), tuple(strings), tuple(jsons), bool(flag)), end

    return reader.top(output)
