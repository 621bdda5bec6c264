"""A block's inference bundle: its ordered records and the trie root in ``extra_data``.

Record ``i`` (:class:`~ogevm.records.InferenceRecord`, encoded by its ``encode``) is stored in
a hexary trie under ``rlp(i)``, as transactions are; the 32-byte root is the header's
``extra_data`` (``EMPTY_BUNDLE_ROOT`` for a block without inference). A bundle travels and
is stored as the RLP list of its records' encodings (:func:`encode_bundle`). One record has
one encoding, so the root is a function of the records. What depends on the mode
(signatures, attestations, proofs) is checked by ``ogevm.verify.records``.
"""

from __future__ import annotations

from typing import Sequence

import rlp
from rlp.exceptions import RLPException
from rlp.sedes import CountableList, binary
from trie import HexaryTrie

from ogevm.records import InferenceRecord, MalformedBundle

_BUNDLE_SEDES = CountableList(binary)


def bundle_root(records: Sequence[InferenceRecord]) -> bytes:
    """The trie root a block commits to in ``extra_data`` (``EMPTY_BUNDLE_ROOT``, the empty trie's, if none)."""
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
