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

import functools
import struct

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
# Flat helpers rather than one general tuple encoder: outputs are encoded for every call,
# record and leaf hash, where a general encoder's per-member bookkeeping cost more than the bytes.
def encode_uint(value: int) -> bytes:
    return value.to_bytes(WORD, "big")


def _bytes(raw: bytes) -> bytes:
    return len(raw).to_bytes(WORD, "big") + raw + bytes(-len(raw) % WORD)


def encode_string(text: str) -> bytes:
    return _bytes(text.encode("utf-8"))


def _offsets(head_size: int, tails) -> bytes:
    """The offset words of dynamic members whose ``tails`` follow ``head_size`` bytes of heads."""
    words, offset = [], head_size
    for tail in tails:
        words.append(offset.to_bytes(WORD, "big"))
        offset += len(tail)
    return b"".join(words)


def _dynamic(tails) -> bytes:
    """A tuple of dynamic members only."""
    return _offsets(WORD * len(tails), tails) + b"".join(tails)


def dynamic_tuple(static_heads: list[bytes | None], tails: list[bytes]) -> bytes:
    """Heads in order: bytes for a static member, None for a dynamic one (its tail is next)."""
    offsets = _offsets(WORD * len(static_heads), tails)
    dynamic = (offsets[at:at + WORD] for at in range(0, len(offsets), WORD))
    return b"".join([next(dynamic) if head is None else head for head in static_heads]) + b"".join(tails)


def dynamic_array(encoded: list[bytes]) -> bytes:
    return len(encoded).to_bytes(WORD, "big") + _dynamic(encoded)


def _number_tensor(t: NumberTensor) -> bytes:
    frame = _cached_frame if len(t.name) <= _CACHED_NAME_CHARS else _tensor_frame
    before, after = frame(t.name, len(t.values), tuple(t.shape))
    return before + b"".join(
        [v.to_bytes(WORD, "big", signed=True) + d.to_bytes(WORD, "big", signed=True) for v, d in t.values]) + after


def _tensor_frame(name: str, count: int, shape: tuple[int, ...]) -> tuple[bytes, bytes]:
    """A number tensor's encoding before its values' words (heads, name, count) and after them
    (shape): fixed by the name, the count and the shape, which a model's outputs repeat (so
    frames of short names are cached)."""
    name_part = encode_string(name)
    shape_part = len(shape).to_bytes(WORD, "big") + b"".join([d.to_bytes(WORD, "big") for d in shape])
    values_size = WORD + 2 * WORD * count
    heads = b"".join(encode_uint(offset) for offset in (
        3 * WORD, 3 * WORD + len(name_part), 3 * WORD + len(name_part) + values_size))
    return heads + name_part + count.to_bytes(WORD, "big"), shape_part


_CACHED_NAME_CHARS = 64
_cached_frame = functools.lru_cache(maxsize=1024)(_tensor_frame)


def _string_tensor(t: StringTensor) -> bytes:
    return _dynamic((encode_string(t.name), dynamic_array([encode_string(v) for v in t.values])))


def _model_input(m: ModelInput) -> bytes:
    return _dynamic((dynamic_array([_number_tensor(t) for t in m.numbers]),
                     dynamic_array([_string_tensor(t) for t in m.strings])))


def encode_request(request: ModelInferenceRequest) -> bytes:
    """``abi.encode(request)`` (one dynamic tuple: a leading offset word, then the tuple)."""
    body = dynamic_tuple([encode_uint(int(request.mode)), None, None],
                          [encode_string(request.model_cid), _model_input(request.input)])
    return encode_uint(WORD) + body


_FLAGS = (encode_uint(0), encode_uint(1))
_EMPTY_ARRAY = encode_uint(0)


def _output_body(o: ModelOutput) -> bytes:
    tails = (dynamic_array([_number_tensor(t) for t in o.numbers]),
             dynamic_array([_string_tensor(t) for t in o.strings]) if o.strings else _EMPTY_ARRAY,
             dynamic_array([_dynamic((encode_string(j.name), encode_string(j.value))) for j in o.jsons])
             if o.jsons else _EMPTY_ARRAY)
    return _offsets(4 * WORD, tails) + _FLAGS[bool(o.is_simulation_result)] + b"".join(tails)


def encode_output(output: ModelOutput) -> bytes:
    """``abi.encode(output)``."""
    return encode_uint(WORD) + _output_body(output)


def encode_event(inference_id: str, encoded_request: bytes, output: ModelOutput) -> bytes:
    """``abi.encode(inferenceID, request, output)``: the data of ``ModelInferenceEvent``.

    ``encoded_request`` is ``abi.encode(request)``; the precompile passes its calldata
    after the selector, which is exactly that because only the canonical layout decodes.
    """
    return _event(inference_id, encoded_request, _output_body(output))


def encode_output_and_event(inference_id: str, encoded_request: bytes,
                            output: ModelOutput) -> tuple[bytes, bytes]:
    """``(encode_output(output), encode_event(...))``, encoding the output once."""
    body = _output_body(output)
    return encode_uint(WORD) + body, _event(inference_id, encoded_request, body)


def _event(inference_id: str, encoded_request: bytes, output_body: bytes) -> bytes:
    return _dynamic((encode_string(inference_id), encoded_request[WORD:], output_body))


# --- decoding --------------------------------------------------------------------------
class Reader:
    """Canonical-layout reader: :meth:`fields` checks each offset against the cursor.

    Readers take a position and return ``(value, end)``, so one pass reads each byte once.
    """

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

    def fields(self, pos: int, members: tuple) -> tuple[list, int]:
        """A tuple's fields in order. A member is a reader (a dynamic field: its head must
        be the offset of the cursor) or an int ``bits`` (a static ``uint<bits>`` head)."""
        values, tail = [], pos + WORD * len(members)
        for head, member in zip(range(pos, tail, WORD), members):
            if type(member) is int:
                values.append(self.uint(head, member))
                continue
            if self.word(head) != tail - pos:
                raise LayoutError("offset is not canonical")
            value, tail = member(tail)
            values.append(value)
        return values, tail

    def array(self, pos: int, read) -> tuple[tuple, int]:
        values, end = self.fields(pos + WORD, (read,) * self.count(pos, WORD))
        return tuple(values), end

    def numbers(self, pos: int) -> tuple[tuple[Number, ...], int]:
        n = self.count(pos, 2 * WORD)  # so every word below is inside the data
        start, end = pos + WORD, pos + WORD + 2 * WORD * n
        parts = struct.unpack_from(f">{8 * n}q", self.data, start)  # each word as four int64
        low = parts[3::4]
        if parts[0::4] == parts[1::4] == parts[2::4] == tuple([x >> 63 for x in low]):
            # every word sign-extends its low eight bytes: all are int64 values (so int128)
            return tuple(map(Number, low[0::2], low[1::2])), end
        return self._wide_numbers(start, n), end

    def _wide_numbers(self, start: int, n: int) -> tuple[Number, ...]:
        data, values = self.data, []
        for at in range(start, start + 2 * WORD * n, 2 * WORD):
            value = int.from_bytes(data[at:at + WORD], "big", signed=True)
            decimals = int.from_bytes(data[at + WORD:at + 2 * WORD], "big", signed=True)
            if not (_INT128_MIN <= value <= _INT128_MAX and _INT128_MIN <= decimals <= _INT128_MAX):
                raise LayoutError("value does not fit int128")
            values.append(Number(value, decimals))
        return tuple(values)

    def uint32s(self, pos: int) -> tuple[tuple[int, ...], int]:
        n = self.count(pos, WORD)
        start, data = pos + WORD, self.data
        values = tuple(int.from_bytes(data[at:at + WORD], "big") for at in range(start, start + WORD * n, WORD))
        if any(value >> 32 for value in values):
            raise LayoutError("value does not fit uint32")
        return values, start + WORD * n

    def strings(self, pos: int) -> tuple[tuple[str, ...], int]:
        return self.array(pos, self.string)

    def number_tensor(self, pos: int) -> tuple[NumberTensor, int]:
        (name, values, shape), end = self.fields(pos, (self.string, self.numbers, self.uint32s))
        return NumberTensor(name, values, shape), end

    def string_tensor(self, pos: int) -> tuple[StringTensor, int]:
        (name, values), end = self.fields(pos, (self.string, self.strings))
        return StringTensor(name, values), end

    def json_scalar(self, pos: int) -> tuple[JsonScalar, int]:
        (name, value), end = self.fields(pos, (self.string, self.string))
        return JsonScalar(name, value), end

    def number_tensors(self, pos: int) -> tuple[tuple[NumberTensor, ...], int]:
        return self.array(pos, self.number_tensor)

    def string_tensors(self, pos: int) -> tuple[tuple[StringTensor, ...], int]:
        return self.array(pos, self.string_tensor)

    def json_scalars(self, pos: int) -> tuple[tuple[JsonScalar, ...], int]:
        return self.array(pos, self.json_scalar)

    def model_input(self, pos: int) -> tuple[ModelInput, int]:
        (numbers, strings), end = self.fields(pos, (self.number_tensors, self.string_tensors))
        return ModelInput(numbers, strings), end

    def request(self, pos: int) -> tuple[tuple[int, str, ModelInput], int]:
        (mode, cid, model_input), end = self.fields(pos, (8, self.string, self.model_input))
        return (mode, cid, model_input), end

    def output(self, pos: int) -> tuple[ModelOutput, int]:
        (numbers, strings, jsons, flag), end = self.fields(
            pos, (self.number_tensors, self.string_tensors, self.json_scalars, 1))
        return ModelOutput(numbers, strings, jsons, bool(flag)), end

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
    reader = Reader(bytes(data))
    return reader.top(reader.request)


def decode_output(data: bytes) -> ModelOutput:
    """Inverse of :func:`encode_output`. Raises :class:`LayoutError`."""
    reader = Reader(bytes(data))
    return reader.top(reader.output)
