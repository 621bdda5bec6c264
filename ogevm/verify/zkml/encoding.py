"""The canonical encoding of a ZKML proof and the field elements of its public values:
what records store, node signatures cover and validators decode."""

from __future__ import annotations

from typing import Sequence

import rlp
from rlp.exceptions import RLPException
from rlp.sedes import Binary, CountableList, List

from ogevm.errors import ProofInvalid

#: The BN254 scalar field modulus: ezkl's public values are elements of this field.
FIELD_MODULUS = 0x30644E72E131A029B85045B68181585D2833E84879B9709143E1F593F0000001

#: The canonical proof: ``rlp([public values, proof bytes])``, each public value a 32-byte
#: little-endian field element, the proof bytes ezkl's (not empty).
_PROOF_SEDES = List([CountableList(Binary.fixed_length(32)), Binary(min_length=1)], strict=True)
_NOT_CANONICAL = "the proof is not in its canonical encoding (rlp([public values, proof bytes]))"


def encode_proof(felts: Sequence[int], body: bytes) -> bytes:
    """The one encoding of a proof with public values ``felts`` (field elements in ``[0, p)``)
    and proof bytes ``body``: what records store and node signatures cover."""
    return rlp.encode([[felt.to_bytes(32, "little") for felt in felts], bytes(body)], sedes=_PROOF_SEDES)


def decode_proof(proof: bytes) -> tuple[list[int], bytes]:
    """The public values (field elements) and proof bytes of a canonical proof.

    Raises :class:`ProofInvalid` unless ``proof`` is exactly ``encode_proof`` of what it
    decodes to: other RLP forms, trailing bytes, a public value of another length or not
    below the field modulus, or an empty proof are all refused.
    """
    try:
        raw_felts, body = rlp.decode(bytes(proof), sedes=_PROOF_SEDES, strict=True)
    except (RLPException, RecursionError, TypeError) as exc:  # nested lists recurse in rlp
        raise ProofInvalid(_NOT_CANONICAL) from exc
    felts = [int.from_bytes(raw, "little") for raw in raw_felts]
    if any(felt >= FIELD_MODULUS for felt in felts):
        raise ProofInvalid("a public value is not a canonical field element")
    if encode_proof(felts, body) != bytes(proof):
        raise ProofInvalid(_NOT_CANONICAL)
    return felts, body


def felt_to_int(felt) -> int:
    """The signed integer a public value (64 hex digits, little endian) stands for."""
    if not isinstance(felt, str) or len(felt) != 64:
        raise ProofInvalid("a public value is not 32 bytes of hex")
    try:
        value = int.from_bytes(bytes.fromhex(felt), "little")
    except ValueError as exc:
        raise ProofInvalid("a public value is not 32 bytes of hex") from exc
    if value >= FIELD_MODULUS:
        raise ProofInvalid("a public value is not a canonical field element")
    return signed(value)


def signed(felt: int) -> int:
    """The signed integer a field element stands for."""
    return felt - FIELD_MODULUS if felt > FIELD_MODULUS // 2 else felt
