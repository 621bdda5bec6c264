"""A block's inference bundle: its ordered records and the trie root in ``extra_data``.

Record ``i`` is stored in a hexary trie under ``rlp(i)`` (as transactions are), as
``rlp([tx_hash, index, digest, mode, model_cid, output, error, node, signature,
attestation, proof, batch_root, batch_index, batch_path])`` where ``output`` is the
ABI-encoded ``ModelOutput`` (empty for an error), ``error`` the reason (empty for an
output), ``attestation`` the TEE attestation document, ``proof`` the canonical ZKML proof
(each empty when the mode has none), and the batch fields the record's position in the
batch its node signed (:class:`~ogevm.verify.vanilla.BatchPosition`; the path as its
32-byte siblings concatenated), all three empty for a record signed alone. The
32-byte root is the header's ``extra_data``. A bundle travels and is stored as the RLP list
of its records' encodings (:func:`encode_bundle`).

One record has one encoding: :meth:`InferenceRecord.decode` accepts only the bytes that
:meth:`InferenceRecord.encode` gives for what they decode to, so the root is a function of
the records. What depends on the mode (signatures, attestations, proofs) is checked by
``ogevm.verify.records``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import rlp
from rlp.exceptions import RLPException
from rlp.sedes import Binary, CountableList, List, big_endian_int, binary
from trie import HexaryTrie

from ogevm.abi.codec import decode_output, encode_output
from ogevm.abi.types import InferenceMode
from ogevm.errors import OgevmError
from ogevm.records import InferenceResult, RequestId
from ogevm.verify.vanilla import MAX_BATCH_DEPTH, BatchPosition


class MalformedBundle(OgevmError, ValueError):
    """Bytes that are not the one encoding of a record (or of a list of records)."""


@dataclass(frozen=True)
class InferenceRecord:
    """One result as a block commits to it: what, for which request, by whom."""

    result: InferenceResult
    mode: InferenceMode
    model_cid: str
    node: bytes
    signature: bytes
    attestation: bytes = b""
    proof: bytes = b""
    #: Set when ``signature`` signs a batch of results rather than this one alone.
    batch: BatchPosition | None = None

    @property
    def request_id(self) -> RequestId:
        return self.result.request_id

    def encode(self) -> bytes:
        """RLP of the record (see the module docstring)."""
        r = self.result
        output = encode_output(r.output) if r.output is not None else b""
        batch = self.batch or BatchPosition(b"", 0, ())
        return rlp.encode([r.request_id.tx_hash, r.request_id.index, r.digest, int(self.mode),
                           self.model_cid.encode(), output, (r.error or "").encode(), self.node,
                           self.signature, self.attestation, self.proof, batch.root, batch.index,
                           b"".join(batch.path)])

    @classmethod
    def decode(cls, data: bytes) -> "InferenceRecord":
        """Inverse of :meth:`encode`. Raises :class:`MalformedBundle` for any other bytes:
        not a 14-item RLP list of strings, a hash, address or signature of another length,
        an index beyond 256 bits, an unknown mode, text that is not UTF-8, an output that is
        not an ABI-encoded ``ModelOutput``, both or neither of output and error, a batch
        position that is not one (:func:`_batch_position`), or a non-canonical form of any
        of these."""
        try:
            (tx_hash, index, digest, mode, cid, output, error, node, signature, attestation,
             proof, batch_root, batch_index, batch_path) = rlp.decode(bytes(data), sedes=_RECORD_SEDES, strict=True)
            if index >= 2**256:
                raise ValueError("call index beyond 256 bits")
            result = InferenceResult(
                RequestId(tx_hash, index), digest,
                output=decode_output(output) if output else None, error=error.decode() if error else None,
            )
            record = cls(result, InferenceMode(mode), cid.decode(), node, signature, attestation, proof,
                         _batch_position(batch_root, batch_index, batch_path))
        except (RLPException, ValueError, RecursionError) as exc:  # nested lists recurse in rlp
            raise MalformedBundle(f"malformed inference record: {type(exc).__name__}: {exc}"[:300]) from exc
        if record.encode() != bytes(data):
            raise MalformedBundle("non-canonical inference record encoding")
        return record


def _batch_position(root: bytes, index: int, path: bytes) -> BatchPosition | None:
    """The batch fields of a record: all empty (signed alone), or a 32-byte root, a path of
    1 to ``MAX_BATCH_DEPTH`` 32-byte siblings and an index below 2^depth (its higher bits
    would be a second encoding of the same position)."""
    if not root:
        if index or path:
            raise ValueError("a batch index or path without a batch root")
        return None
    depth, rest = divmod(len(path), 32)
    if len(root) != 32 or rest or not 1 <= depth <= MAX_BATCH_DEPTH:
        raise ValueError(f"a batch root of {len(root)} bytes or a path of {len(path)} bytes (32 per level, "
                         f"1 to {MAX_BATCH_DEPTH} levels)")
    if index >> depth:
        raise ValueError(f"a batch index of {index.bit_length()} bits beyond a path of {depth} levels")
    return BatchPosition(root, index, tuple(path[i:i + 32] for i in range(0, len(path), 32)))


_HASH, _ADDRESS, _SIGNATURE = Binary.fixed_length(32), Binary.fixed_length(20), Binary.fixed_length(65)
#: Integers must be minimal (no leading zero byte) and no field may be a list.
_RECORD_SEDES = List([_HASH, big_endian_int, _HASH, big_endian_int, binary, binary, binary, _ADDRESS, _SIGNATURE,
                      binary, binary, binary, big_endian_int, binary], strict=True)
_BUNDLE_SEDES = CountableList(binary)

EMPTY_BUNDLE_ROOT = HexaryTrie({}).root_hash


def bundle_root(records: Sequence[InferenceRecord]) -> bytes:
    """The trie root a block commits to in ``extra_data`` (the empty trie's root if none)."""
    return encodings_root([record.encode() for record in records])


def encodings_root(encodings: Sequence[bytes]) -> bytes:
    """:func:`bundle_root` of the records with these encodings (no need to decode them)."""
    trie = HexaryTrie({})
    for i, encoding in enumerate(encodings):
        trie[rlp.encode(i)] = encoding
    return trie.root_hash


def encode_bundle(records: Sequence[InferenceRecord]) -> bytes:
    """The bundle as it travels and is stored: the RLP list of the records' encodings."""
    return rlp.encode([record.encode() for record in records], sedes=_BUNDLE_SEDES)


def split_bundle(data: bytes) -> list[bytes]:
    """The record encodings of an encoded bundle, not decoded yet. Raises
    :class:`MalformedBundle` unless ``data`` is the canonical RLP list of byte strings."""
    try:
        encodings = rlp.decode(bytes(data), sedes=_BUNDLE_SEDES, strict=True)
    except (RLPException, RecursionError) as exc:
        raise MalformedBundle(f"malformed inference bundle: {type(exc).__name__}: {exc}"[:300]) from exc
    if rlp.encode(encodings, sedes=_BUNDLE_SEDES) != bytes(data):
        raise MalformedBundle("non-canonical inference bundle encoding")
    return list(encodings)


def decode_records(encodings: Sequence[bytes]) -> list[InferenceRecord]:
    """The records of :func:`split_bundle`. Raises :class:`MalformedBundle` naming the first
    record that is not the one encoding of a record."""
    records = []
    for i, encoding in enumerate(encodings):
        try:
            records.append(InferenceRecord.decode(encoding))
        except MalformedBundle as exc:
            raise MalformedBundle(f"record {i}: {exc.reason}") from exc
    return records


def decode_bundle(data: bytes) -> list[InferenceRecord]:
    """Inverse of :func:`encode_bundle`. Raises :class:`MalformedBundle` for any other bytes."""
    return decode_records(split_bundle(data))
