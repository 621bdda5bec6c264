"""VANILLA verification: the inference node signs what it computed.

The node signs (secp256k1) ``keccak256(DOMAIN || tx_hash || index (32 bytes) ||
request digest || output hash [|| attachment hash])``, where the output hash is ``keccak256``
of the ABI-encoded ``ModelOutput`` or, for a failed inference, of ``"error:" || reason``,
and the attachment hash is ``keccak256`` of what the record carries beside the result: its
canonical ZKML proof, or its TEE attestation document (VANILLA messages have none). A signature is
accepted only in its low-s form: ``(r, n - s)`` would otherwise be a second valid
signature of the same message, and so a second encoding of the same record.
"""

from __future__ import annotations

import coincurve
from eth_keys import keys
from eth_keys.constants import SECPK1_N
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import keccak

from ogevm.abi.codec import encode_output
from ogevm.records import InferenceResult, RequestId

DOMAIN = b"ogevm/inference-result/v1"
SIGNATURE_LENGTH = 65


def output_hash(result: InferenceResult) -> bytes:
    """Hash of what the request produced: its encoded output or its error reason."""
    if result.error is not None:
        return keccak(b"error:" + result.error.encode())
    return keccak(encode_output(result.output))


def signing_hash(request_id: RequestId, digest: bytes, result_hash: bytes, attachment: bytes = b"") -> bytes:
    """The 32-byte message a node signs for one result (and its proof or attestation)."""
    attachment_hash = keccak(attachment) if attachment else b""
    return keccak(DOMAIN + request_id.tx_hash + request_id.index.to_bytes(32, "big") + digest + result_hash
                  + attachment_hash)


def is_low_s(signature: bytes) -> bool:
    """True if ``signature`` (``r || s || v``) has ``s <= n / 2``, the one form accepted."""
    return len(signature) == SIGNATURE_LENGTH and int.from_bytes(signature[32:64], "big") <= SECPK1_N // 2


class ResultSigner:
    """Signs results with one key; keeps the secp256k1 key object (built once, not per call)."""

    def __init__(self, key: keys.PrivateKey) -> None:
        self._key = coincurve.PrivateKey(key.to_bytes())
        self.address = key.public_key.to_canonical_address()

    def sign(self, result: InferenceResult, attachment: bytes = b"") -> bytes:
        """A 65-byte low-s signature ``r || s || v`` (v in {0, 1}) of ``result`` and ``attachment``."""
        message = signing_hash(result.request_id, result.digest, output_hash(result), attachment)
        return self._key.sign_recoverable(message, hasher=None)  # libsecp256k1 gives low s


def sign_result(key: keys.PrivateKey, result: InferenceResult, attachment: bytes = b"") -> bytes:
    """A 65-byte signature of ``result`` by ``key`` (for one-off signing; see ResultSigner)."""
    return ResultSigner(key).sign(result, attachment)


def recover_signer(result: InferenceResult, signature: bytes, attachment: bytes = b"") -> bytes | None:
    """The address that signed ``result`` (with ``attachment``), or None if the signature is
    malformed or not low-s."""
    if not is_low_s(signature):
        return None
    message = signing_hash(result.request_id, result.digest, output_hash(result), attachment)
    try:
        public = keys.Signature(signature).recover_public_key_from_msg_hash(message)
    except (BadSignature, ValidationError, ValueError):
        return None
    return public.to_canonical_address()
