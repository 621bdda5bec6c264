"""A block's inference bundle: its ordered records and the trie root in ``extra_data``.

Record ``i`` is stored in a hexary trie under ``rlp(i)`` (as transactions are), as
``rlp([tx_hash, index, digest, mode, model_cid, output, error, node, signature,
attestation, proof])`` where ``output`` is the ABI-encoded ``ModelOutput`` (empty for an
error), ``error`` the reason (empty for an output), ``attestation`` the TEE attestation
document and ``proof`` the ZKML proof (each empty when the mode has none). The 32-byte
root is the header's ``extra_data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import rlp
from rlp.sedes import List, big_endian_int, binary
from trie import HexaryTrie

from ogevm.abi.codec import decode_output, encode_output
from ogevm.abi.types import InferenceMode
from ogevm.records import InferenceResult, RequestId


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

    @property
    def request_id(self) -> RequestId:
        return self.result.request_id

    def encode(self) -> bytes:
        """RLP of the record (see the module docstring)."""
        r = self.result
        output = encode_output(r.output) if r.output is not None else b""
        return rlp.encode([r.request_id.tx_hash, r.request_id.index, r.digest, int(self.mode),
                           self.model_cid.encode(), output, (r.error or "").encode(), self.node,
                           self.signature, self.attestation, self.proof])

    @classmethod
    def decode(cls, data: bytes) -> "InferenceRecord":
        """Inverse of :meth:`encode`. Raises ``rlp.DecodingError`` / ValueError on bad data."""
        tx_hash, index, digest, mode, cid, output, error, node, signature, attestation, proof = rlp.decode(
            data, sedes=_RECORD_SEDES)
        result = InferenceResult(
            RequestId(tx_hash, index), digest,
            output=decode_output(output) if output else None, error=error.decode() if error else None,
        )
        record = cls(result, InferenceMode(mode), cid.decode(), node, signature, attestation, proof)
        if record.encode() != bytes(data):
            raise ValueError("non-canonical inference record encoding")
        return record


#: Integers must be minimal (no leading zero byte) and no field may be a list.
_RECORD_SEDES = List([binary, big_endian_int, binary, big_endian_int, binary, binary, binary, binary, binary,
                      binary, binary])

EMPTY_BUNDLE_ROOT = HexaryTrie({}).root_hash


def bundle_root(records: Sequence[InferenceRecord]) -> bytes:
    """The trie root a block commits to in ``extra_data`` (the empty trie's root if none)."""
    trie = HexaryTrie({})
    for i, record in enumerate(records):
        trie[rlp.encode(i)] = record.encode()
    return trie.root_hash
