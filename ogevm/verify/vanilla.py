"""VANILLA verification: the inference node signs what it computed.

The node signs (secp256k1) ``keccak256(DOMAIN || tx_hash || index (32 bytes) ||
request digest || output hash)``, where the output hash is ``keccak256`` of the
ABI-encoded ``ModelOutput`` or, for a failed inference, of ``"error:" || reason``.
"""

from __future__ import annotations

import coincurve
from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import keccak

from ogevm.abi.codec import encode_output
from ogevm.records import InferenceResult, RequestId

DOMAIN = b"ogevm/inference-result/v1"


def output_hash(result: InferenceResult) -> bytes:
    """Hash of what the request produced: its encoded output or its error reason."""
    if result.error is not None:
        return keccak(b"error:" + result.error.encode())
    return keccak(encode_output(result.output))


def signing_hash(request_id: RequestId, digest: bytes, result_hash: bytes) -> bytes:
    """The 32-byte message a node signs for one result."""
    return keccak(DOMAIN + request_id.tx_hash + request_id.index.to_bytes(32, "big") + digest + result_hash)


class ResultSigner:
    """Signs results with one key; keeps the secp256k1 key object (built once, not per call)."""

    def __init__(self, key: keys.PrivateKey) -> None:
        self._key = coincurve.PrivateKey(key.to_bytes())
        self.address = key.public_key.to_canonical_address()

    def sign(self, result: InferenceResult) -> bytes:
        """A 65-byte signature ``r || s || v`` (v in {0, 1}) of ``result``."""
        message = signing_hash(result.request_id, result.digest, output_hash(result))
        return self._key.sign_recoverable(message, hasher=None)


def sign_result(key: keys.PrivateKey, result: InferenceResult) -> bytes:
    """A 65-byte signature of ``result`` by ``key`` (for one-off signing; see ResultSigner)."""
    return ResultSigner(key).sign(result)


def recover_signer(result: InferenceResult, signature: bytes) -> bytes | None:
    """The address that signed ``result``, or None if the signature is malformed."""
    message = signing_hash(result.request_id, result.digest, output_hash(result))
    try:
        public = keys.Signature(signature).recover_public_key_from_msg_hash(message)
    except (BadSignature, ValidationError, ValueError):
        return None
    return public.to_canonical_address()
