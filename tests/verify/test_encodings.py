"""One encoding per record: the record and bundle codecs accept exactly the bytes they emit.

A bundle's trie root commits to the records' encodings, so any second byte form of the same
records would be a second valid bundle root (and block hash) for the same block contents.
"""

from __future__ import annotations

import pytest
import rlp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ogevm.abi.codec import encode_output
from ogevm.abi.types import InferenceMode, ModelOutput, Number, NumberTensor
from ogevm.pipe.bundle import decode_bundle, encode_bundle
from ogevm.records import MAX_BATCH_DEPTH, BatchPosition, InferenceRecord, InferenceResult, MalformedBundle, RequestId
from ogevm.testing.strategies import model_outputs

OUTPUT = ModelOutput((NumberTensor("y", (Number(71, 1),), (1, 1)),), (), (), False)
RECORD = InferenceRecord(InferenceResult(RequestId(b"\x01" * 32, 3), b"\x02" * 32, output=OUTPUT),
                         InferenceMode.ZKML, "bafkrei", b"\x03" * 20, b"\x04" * 65, proof=b"\x05")

#: The record's RLP items as raw byte strings, in the order of the encoding.
FIELDS = [b"\x01" * 32, b"\x03", b"\x02" * 32, b"\x01", b"bafkrei", encode_output(OUTPUT), b"", b"\x03" * 20,
          b"\x04" * 65, b"", b"\x05", b"", b"", b""]
#: A VANILLA record of a signed batch: leaf 2 of a tree two levels deep.
BATCHED = InferenceRecord(RECORD.result, InferenceMode.VANILLA, "bafkrei", b"\x03" * 20, b"\x04" * 65,
                          batch=BatchPosition(b"\x06" * 32, 2, (b"\x07" * 32, b"\x08" * 32)))
BATCHED_FIELDS = [*FIELDS[:3], b"", *FIELDS[4:10], b"", b"\x06" * 32, b"\x02", b"\x07" * 32 + b"\x08" * 32]


def encoded(fields=FIELDS, **changes) -> bytes:
    """RLP of ``fields`` with the items named in ``changes`` (by position ``f<i>``) replaced."""
    items = list(fields)
    for key, value in changes.items():
        items[int(key[1:])] = value
    return rlp.encode(items)


def test_the_fields_are_the_records_encoding():
    assert encoded() == RECORD.encode()
    assert InferenceRecord.decode(encoded()) == RECORD
    assert encoded(BATCHED_FIELDS) == BATCHED.encode()
    assert InferenceRecord.decode(encoded(BATCHED_FIELDS)) == BATCHED


@pytest.mark.parametrize(
    "data, reason",
    [
        (encoded() + b"\x00", "malformed inference record"),
        (rlp.encode(FIELDS + [b""]), "malformed inference record"),
        (rlp.encode(FIELDS[:-1]), "malformed inference record"),
        (encoded(f0=b"\x01" * 31), "malformed inference record"),
        (encoded(f2=b"\x02" * 33), "malformed inference record"),
        (encoded(f7=b"\x03" * 21), "malformed inference record"),
        (encoded(f8=b"\x04" * 64), "malformed inference record"),
        (encoded(f1=b"\x00\x03"), "not minimal length"),
        (encoded(f1=b"\x01" + b"\x00" * 32), "call index beyond 256 bits"),
        (encoded(f3=b"\x03"), "is not a valid InferenceMode"),
        (encoded(f3=b"\x00"), "not minimal length"),
        (encoded(f4=b"\xff\xfe"), "UnicodeDecodeError"),
        (encoded(f6=b"\xc0\x80"), "UnicodeDecodeError"),  # an overlong NUL
        (encoded(f5=b"\x00" * 31), "malformed inference record"),
        (encoded(f5=encode_output(OUTPUT) + b"\x00" * 32), "malformed inference record"),
        (encoded(f6=b"failed"), "exactly one of output and error"),
        (encoded(f5=b""), "exactly one of output and error"),
        (rlp.encode(FIELDS[:9] + [[b""]] + FIELDS[10:]), "malformed inference record"),
        (rlp.encode(b"not a list"), "malformed inference record"),
        (b"", "malformed inference record"),
    ],
    ids=["trailing-byte", "extra-item", "missing-item", "short-tx-hash", "long-digest", "long-node",
         "short-signature", "index-leading-zero", "index-beyond-uint256", "unknown-mode", "mode-zero-byte",
         "cid-not-utf8", "error-overlong-utf8", "output-not-abi", "output-trailing-word", "output-and-error",
         "neither", "nested-list", "not-a-list", "empty"],
)
def test_every_other_record_encoding_is_malformed(data, reason):
    with pytest.raises(MalformedBundle, match=reason) as raised:
        InferenceRecord.decode(data)
    assert isinstance(raised.value, ValueError) and len(raised.value.reason) <= 300


@pytest.mark.parametrize(
    "data, reason",
    [
        (encoded(f12=b"\x01"), "a batch index or path without a batch root"),
        (encoded(f13=b"\x07" * 32), "a batch index or path without a batch root"),
        (encoded(BATCHED_FIELDS, f11=b"\x06" * 31), "a batch root of 31 bytes"),
        (encoded(BATCHED_FIELDS, f11=b"\x06" * 33), "a batch root of 33 bytes"),
        (encoded(BATCHED_FIELDS, f13=b""), "a path of 0 bytes"),
        (encoded(BATCHED_FIELDS, f13=b"\x07" * 63), "a path of 63 bytes"),
        (encoded(BATCHED_FIELDS, f13=b"\x07" * 32 * (MAX_BATCH_DEPTH + 1)), "a path of 1056 bytes"),
        (encoded(BATCHED_FIELDS, f12=b"\x04"), "a batch index of 3 bits beyond a path of 2 levels"),
        (encoded(BATCHED_FIELDS, f12=b"\x01" + b"\x00" * 40), "of 321 bits beyond a path of 2 levels"),
        (encoded(BATCHED_FIELDS, f12=b"\x00\x02"), "not minimal length"),
        (encoded(BATCHED_FIELDS, f12=b"\x00"), "not minimal length"),
        (encoded(BATCHED_FIELDS, f13=[b"\x07" * 32, b"\x08" * 32]), "malformed inference record"),
    ],
    ids=["index-without-root", "path-without-root", "short-root", "long-root", "root-without-path",
         "path-not-whole-levels", "path-beyond-max-depth", "index-beyond-path", "huge-index",
         "index-leading-zero", "index-zero-byte", "path-as-list"],
)
def test_every_other_batch_position_encoding_is_malformed(data, reason):
    """A batch position has one form: all three fields empty, or a 32-byte root, whole
    32-byte levels (1 to 32 of them) and an index whose bits beyond the path are zero (they
    would name the same leaf)."""
    with pytest.raises(MalformedBundle, match=reason) as raised:
        InferenceRecord.decode(data)
    assert isinstance(raised.value, ValueError) and len(raised.value.reason) <= 300


def test_a_long_form_length_prefix_is_malformed():
    """The same items with the 32-byte tx hash under a long-string prefix (0xb8 0x20)."""
    canonical = encoded()
    long_form = b"\xb8\x20" + FIELDS[0]
    payload = long_form + canonical[canonical.index(FIELDS[0]) + 32:]
    data = b"\xf9" + len(payload).to_bytes(2, "big") + payload
    with pytest.raises(MalformedBundle):
        InferenceRecord.decode(data)


def list_header(size: int) -> bytes:
    """The RLP header of a list whose payload is ``size`` bytes."""
    if size <= 55:
        return bytes([0xC0 + size])
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0xF7 + len(length)]) + length


def test_lists_nested_beyond_the_recursion_limit_are_malformed_not_a_crash():
    """py-evm raises Python's recursion limit to 100,000; the RLP decoder recurses per level."""
    headers, size = [], 0
    for _ in range(110_000):
        header = list_header(size)
        headers.append(header)
        size += len(header)
    data = b"".join(reversed(headers))
    for decode in (InferenceRecord.decode, decode_bundle):
        with pytest.raises(MalformedBundle, match="RecursionError"):
            decode(data)


# --- bundles ------------------------------------------------------------------------------
def test_bundles_round_trip_and_name_the_malformed_record():
    records = [RECORD, InferenceRecord(RECORD.result, InferenceMode.VANILLA, "bafkrei", b"\x03" * 20, b"\x04" * 65)]
    data = encode_bundle(records)
    assert decode_bundle(data) == records
    assert decode_bundle(encode_bundle([])) == []
    with pytest.raises(MalformedBundle, match="^record 1: non-canonical|^record 1: malformed"):
        decode_bundle(rlp.encode([RECORD.encode(), RECORD.encode() + b"\x00"]))
    with pytest.raises(MalformedBundle, match="^malformed inference bundle"):
        decode_bundle(data + b"\x00")
    with pytest.raises(MalformedBundle, match="^malformed inference bundle"):
        decode_bundle(rlp.encode([[RECORD.encode()]]))


# --- properties -----------------------------------------------------------------------------
hashes = st.binary(min_size=32, max_size=32)
batch_positions = st.integers(1, MAX_BATCH_DEPTH).flatmap(lambda depth: st.builds(
    BatchPosition, hashes, st.integers(0, 2**depth - 1), st.lists(hashes, min_size=depth, max_size=depth).map(tuple)))
records = st.builds(
    lambda tx, index, digest, outcome, mode, cid, node, signature, extra, batch: InferenceRecord(
        InferenceResult(RequestId(tx, index), digest, **outcome), mode, cid, node, signature,
        attestation=extra if mode is InferenceMode.TEE else b"",
        proof=extra if mode is InferenceMode.ZKML and "output" in outcome else b"",
        batch=batch if mode is InferenceMode.VANILLA else None),
    hashes, st.integers(0, 2**256 - 1), hashes,
    st.one_of(model_outputs(max_tensors=2).map(lambda o: {"output": o}),
              st.text(min_size=1, max_size=40).map(lambda e: {"error": e})),
    st.sampled_from(list(InferenceMode)), st.text(max_size=60), st.binary(min_size=20, max_size=20),
    st.binary(min_size=65, max_size=65), st.binary(max_size=40), st.none() | batch_positions,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records, data=st.data())
def test_a_record_has_one_encoding(record, data):
    """Round trip; and every change of one byte fails to decode or decodes to another record."""
    encoding = record.encode()
    assert InferenceRecord.decode(encoding) == record
    position = data.draw(st.integers(0, len(encoding) - 1), label="position")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != encoding[position]), label="value")
    changed = encoding[:position] + bytes([value]) + encoding[position + 1:]
    try:
        decoded = InferenceRecord.decode(changed)
    except MalformedBundle:
        return
    assert decoded != record
