"""TEE verification, with a SIMULATED enclave.

No enclave hardware exists on the machines ogevm targets, so the enclave here is a
simulation, and everything that uses it says so. It models what a real TEE gives:

* the enclave generates its signing key inside itself (the key never leaves the object);
* a vendor root key signs an *attestation document* binding that key to the enclave's
  code measurement and a timestamp;
* the enclave signs each result with its key, as VANILLA nodes do, the message also
  covering its attestation document (so a record's document cannot be swapped).

Validators check the vendor signature (root from the registry), that the measurement
is allow-listed in the registry, the attestation's age, and the result signature by the
attested key. The document is ABI-encoded so contracts decode it too; the attestation
precompile (``0x…F5``) checks the vendor signature for contracts.

Document: ``abi.encode(address enclaveKey, bytes32 measurement, uint64 timestamp, bytes
signature)``; the vendor signs ``keccak256(DOMAIN || enclaveKey || measurement ||
uint64be(timestamp))`` with secp256k1 (65 bytes ``r || s || v``, v in {0, 1}).
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import keccak

from ogevm.constants import DEV_VENDOR_ROOT_KEY, SIMULATED_ENCLAVE_MEASUREMENT
from ogevm.errors import OgevmError
from ogevm.records import InferenceResult
from ogevm.verify.vanilla import ResultSigner

DOMAIN = b"ogevm/tee-attestation/v1"

_DOCUMENT_TYPES = ["address", "bytes32", "uint64", "bytes"]


class InvalidAttestation(OgevmError):
    """An attestation document that is malformed or not signed as it claims."""


class Attestation(NamedTuple):
    """What a vendor attests: this key lives in an enclave running this code, since then."""

    enclave_key: bytes
    measurement: bytes
    timestamp: int
    signature: bytes

    def message(self) -> bytes:
        return keccak(DOMAIN + self.enclave_key + self.measurement + self.timestamp.to_bytes(8, "big"))

    def encode(self) -> bytes:
        return encode(_DOCUMENT_TYPES, [self.enclave_key, self.measurement, self.timestamp, self.signature])

    @classmethod
    def decode(cls, document: bytes) -> "Attestation":
        """Parse a document. Raises :class:`InvalidAttestation` if it is malformed."""
        try:
            key, measurement, timestamp, signature = decode(_DOCUMENT_TYPES, bytes(document))
        except (DecodingError, OverflowError, ValueError) as exc:
            raise InvalidAttestation("malformed attestation document") from exc
        return cls(bytes.fromhex(key[2:]), measurement, timestamp, signature)

    def vendor(self) -> bytes:
        """Address of the key that signed the document. Raises :class:`InvalidAttestation`."""
        try:
            public = keys.Signature(self.signature).recover_public_key_from_msg_hash(self.message())
        except (BadSignature, ValidationError, ValueError) as exc:
            raise InvalidAttestation("attestation signature is malformed") from exc
        return public.to_canonical_address()


def attest(vendor_key: keys.PrivateKey, enclave_key: bytes, measurement: bytes, timestamp: int) -> Attestation:
    """The vendor's signed attestation of ``enclave_key`` (what attestation hardware does)."""
    unsigned = Attestation(enclave_key, measurement, timestamp, b"")
    return unsigned._replace(signature=vendor_key.sign_msg_hash(unsigned.message()).to_bytes())


class SimulatedEnclave:
    """A SIMULATED TEE enclave (no enclave hardware here): keeps its key, signs results.

    ``vendor_key`` plays the hardware vendor's attestation service.
    """

    simulated = True

    def __init__(self, vendor_key: keys.PrivateKey = DEV_VENDOR_ROOT_KEY,
                 measurement: bytes = SIMULATED_ENCLAVE_MEASUREMENT, timestamp: int | None = None) -> None:
        self._signer = ResultSigner(keys.PrivateKey(os.urandom(32)))
        self.address = self._signer.address
        self.attestation = attest(vendor_key, self.address, measurement,
                                  int(time.time()) if timestamp is None else timestamp)

    def sign(self, result: InferenceResult) -> bytes:
        """The enclave's signature of ``result`` with its attestation document attached."""
        return self._signer.sign(result, self.attestation.encode())
