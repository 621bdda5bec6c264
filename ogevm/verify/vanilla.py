"""VANILLA verification: the inference node signs what it computed.

The node signs (secp256k1) ``keccak256(DOMAIN || tx_hash || index (32 bytes) ||
request digest || output hash [|| attachment hash])``, where the output hash is ``keccak256``
of the ABI-encoded ``ModelOutput`` or, for a failed inference, of ``"error:" || reason``,
and the attachment hash is ``keccak256`` of what the record carries beside the result: its
canonical ZKML proof, or its TEE attestation document (VANILLA messages have none). A signature is
accepted only in its low-s form: ``(r, n - s)`` would otherwise be a second valid
signature of the same message, and so a second encoding of the same record.

A node signs a batch of VANILLA results with one signature: the leaves are the results'
messages above (in the batch's order), the tree is binary with ``keccak256(left || right)``
and a 32-byte zero node appended to every level of odd length above the root, so every leaf
sits at the same depth and the bits of its index say, from the bottom, whether it is the
right child at each level. The node signs ``keccak256(BATCH_DOMAIN || root)``; each record
carries the root, its index and its path (the siblings from the bottom up). A batch has at
least two results: a result alone is signed alone, so one record has one valid form.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import coincurve
from eth_keys import keys
from eth_keys.constants import SECPK1_N
from eth_keys.exceptions import BadSignature, ValidationError
from eth_hash.auto import keccak

from ogevm.abi.codec import encode_output
from ogevm.records import BatchPosition, InferenceResult, RequestId

DOMAIN = b"ogevm/inference-result/v1"
BATCH_DOMAIN = b"ogevm/inference-batch/v1"
SIGNATURE_LENGTH = 65
_ZERO_NODE = b"\x00" * 32


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


def leaf_hash(result: InferenceResult) -> bytes:
    """A result's leaf in a batch: the message it would be signed with alone."""
    return signing_hash(result.request_id, result.digest, output_hash(result))


def batch_positions(leaves: Sequence[bytes]) -> list[BatchPosition]:
    """The position of every leaf in the tree over ``leaves`` (at least two, all distinct)."""
    paths: list[list[bytes]] = [[] for _ in leaves]
    level, depth = list(leaves), 0
    while len(level) > 1:
        if len(level) % 2:
            level.append(_ZERO_NODE)
        for index, path in enumerate(paths):
            path.append(level[(index >> depth) ^ 1])
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        depth += 1
    return [BatchPosition(level[0], index, tuple(path)) for index, path in enumerate(paths)]


def path_root(leaf: bytes, index: int, path: Sequence[bytes]) -> bytes:
    """The root that ``path`` leads to from ``leaf`` at ``index``."""
    node = leaf
    for depth, sibling in enumerate(path):
        node = keccak(sibling + node) if index >> depth & 1 else keccak(node + sibling)
    return node


def batch_message(root: bytes) -> bytes:
    """The 32-byte message a node signs for a batch."""
    return keccak(BATCH_DOMAIN + root)


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

    def sign_batch(self, results: Sequence[InferenceResult]) -> tuple[bytes, list[BatchPosition]]:
        """One signature of ``results`` (at least two) and the position of each in the batch."""
        positions = batch_positions([leaf_hash(result) for result in results])
        return self._key.sign_recoverable(batch_message(positions[0].root), hasher=None), positions


def sign_result(key: keys.PrivateKey, result: InferenceResult, attachment: bytes = b"") -> bytes:
    """A 65-byte signature of ``result`` by ``key`` (for one-off signing; see ResultSigner)."""
    return ResultSigner(key).sign(result, attachment)


def recover_signer(result: InferenceResult, signature: bytes, attachment: bytes = b"") -> bytes | None:
    """The address that signed ``result`` (with ``attachment``), or None if the signature is
    malformed or not low-s."""
    return _recover(signing_hash(result.request_id, result.digest, output_hash(result), attachment), signature)


@lru_cache(maxsize=1024)
def recover_batch_signer(root: bytes, signature: bytes) -> bytes | None:
    """The address that signed the batch ``root``, or None (as :func:`recover_signer`).
    Every record of a batch carries the same root and signature: recovered once."""
    return _recover(batch_message(root), signature)


def _recover(message: bytes, signature: bytes) -> bytes | None:
    if not is_low_s(signature):
        return None
    try:
        public = keys.Signature(signature).recover_public_key_from_msg_hash(message)
    except (BadSignature, ValidationError, ValueError):
        return None
    return public.to_canonical_address()
